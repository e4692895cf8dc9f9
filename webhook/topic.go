package webhook

import (
	"container/heap"
	"time"

	"github.com/headcount-io/headcount/tracker"
)

// topicState is one topic's state machine. Every node keeps one per topic it has seen, owner or
// not, so that a node taking a topic over knows its current state.
type topicState struct {
	occupied bool
	since    time.Time // first presence of the current occupied spell
	emptyAt  time.Time // last leave while occupied; zero while it has presences
	cur      tracker.Counts
	peakV    int
	peakU    int

	vacatedAt  time.Time // when the last vacate fired; zero while occupied
	occupiedMS int64     // duration of the last occupied spell
	pruneAt    time.Time // when a vacated state is forgotten

	sentV, sentU int       // the last topic_counts values decided on
	countsDue    time.Time // end of the open debounce window; zero when none

	out outbox
}

// outbox is a topic's place in the Core's outbox. It survives the topic's state changes.
type outbox struct {
	pend    []Event // waiting events, oldest first
	resync  bool    // send the state as it is when the topic's turn comes
	inOrder bool    // the topic is in Core.order
	// mayOccupied and mayVacated say what the receiver may hold as this node's last word on
	// the topic: set by every attempt of a batch (a POST that failed may have been processed),
	// reset to exactly the last event by a success.
	mayOccupied, mayVacated bool
}

// queuedTopic is one entry of Core.order.
type queuedTopic struct {
	topic string
	at    time.Time // when it entered the order
}

// timer kinds.
const (
	timerVacate = iota
	timerCounts
	timerPrune
)

type timer struct {
	at    time.Time
	topic string
	kind  uint8
}

// timerHeap orders the topics' deadlines; stale entries are skipped when they come up.
type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

func (h *timerHeap) add(at time.Time, topic string, kind uint8) {
	heap.Push(h, timer{at: at, topic: topic, kind: kind})
}

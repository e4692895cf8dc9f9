package wsgateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/headcount-io/headcount/tracker"
)

// sub is one joined channel of one socket.
type sub struct {
	c         *conn
	topic     string
	joinRef   optString
	withConns bool
	observe   bool // an observer: nothing tracked (observe.go)
	partial   bool // asked for "partial" in its counts (partial.go)

	// Guarded by c.mu.
	base    Counts    // counts the client holds once every frame the writer has taken is delivered
	target  Counts    // counts it holds after the pending diff too (== base when none is pending)
	pending *outFrame // the queued presence_diff not yet taken by the writer, or nil
	gone    bool      // left, replaced or closed: send nothing more
	// The sub's presence diffs, used in turn so that one is not allocated per change: when
	// one is queued, the other is free, because the writer took it and has finished its batch
	// (it takes its next batch only then). next is the slot of the next diff.
	diffs [2]outFrame
	next  uint8
}

// topicState is the set of local channels joined to one topic.
type topicState struct {
	name string

	mu   sync.Mutex
	subs map[*sub]struct{}
	last Counts // the counts of the last broadcast (or at creation)
	dead bool   // removed from the hub; lookups must retry
}

// hub maps topics to their local channels and turns tracker changes into presence_diff frames.
type hub struct {
	g *Gateway

	mu     sync.Mutex
	topics map[string]*topicState

	subs []*sub // flush's list of a topic's channels, reused (hub goroutine only)
}

func newHub(g *Gateway) *hub {
	return &hub{g: g, topics: make(map[string]*topicState)}
}

// lockTopic returns the topic's state, created if needed, with its mutex held.
func (h *hub) lockTopic(name string) *topicState {
	for {
		h.mu.Lock()
		t := h.topics[name]
		if t == nil {
			t = &topicState{name: name, subs: make(map[*sub]struct{})}
			t.last = h.g.countNow(name)
			h.topics[name] = t
			h.g.metrics.topics.Add(1)
		}
		h.mu.Unlock()
		t.mu.Lock()
		if !t.dead {
			return t
		}
		t.mu.Unlock()
	}
}

// maybeDrop removes a topic that has no local channel left.
func (h *hub) maybeDrop(t *topicState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.subs) == 0 && !t.dead {
		t.dead = true
		delete(h.topics, t.name)
		h.g.metrics.topics.Add(-1)
	}
}

// remove takes s out of its topic (the caller marks it gone under c.mu).
func (h *hub) remove(s *sub) {
	h.mu.Lock()
	t := h.topics[s.topic]
	h.mu.Unlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	delete(t.subs, s)
	empty := len(t.subs) == 0
	t.mu.Unlock()
	if empty {
		h.maybeDrop(t)
	}
}

// sharedDiffs lazily builds the presence_diff of one broadcast, once per serializer and shape.
// The fan-out writers share it: get may be called from several goroutines at once.
type sharedDiffs struct {
	topic    string
	from, to Counts
	h        *hub
	mu       sync.Mutex // serializes the building of a frame
	frames   [vsnCount][shapes]atomic.Pointer[sharedFrame]
}

func (d *sharedDiffs) get(v protoVersion, sh shape) *sharedFrame {
	if f := d.frames[v][sh].Load(); f != nil {
		return f
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if f := d.frames[v][sh].Load(); f != nil {
		return f
	}
	payload := appendDiff(nil, d.from.view(sh), d.to.view(sh), sh)
	frame := appendFrame(nil, v, optString{}, optString{}, d.topic, "presence_diff", payload)
	f := newSharedFrame(frame, v)
	d.frames[v][sh].Store(f)
	d.h.g.metrics.diffEncodes.Add(1)
	return f
}

// flush brings every local channel of topic up to the tracker's current counts. Under the
// topic's mutex it only takes the counts and a list of the channels, so joins and leaves wait
// for that alone; the fan-out writers then queue each channel's diff and write its socket in
// one pass (writers.go), the socket's state still in the cache of the core that queued it.
func (h *hub) flush(name string) {
	h.mu.Lock()
	t := h.topics[name]
	h.mu.Unlock()
	if t == nil {
		return
	}
	t.mu.Lock()
	if t.dead {
		t.mu.Unlock()
		return
	}
	now := h.g.countNow(name)
	subs := h.subs[:0]
	for s := range t.subs {
		subs = append(subs, s)
	}
	shared := &sharedDiffs{topic: name, from: t.last, to: now, h: h}
	t.last = now
	t.mu.Unlock()
	// A channel that joins from here on was told counts at least as new as now (its join
	// reads them under the topic's mutex) and is not in subs; one that leaves is marked gone
	// under its socket's mutex, which pushCounts checks.
	if h.g.writers.push(subs, shared) > 0 {
		h.g.metrics.broadcasts.Add(1)
	}
	clear(subs)
	h.subs = subs
}

// testHookFlushRound, when not nil, is called by the hub goroutine at the start of each
// flush round, steady when the round ends a window with changes gathered (tests only).
var testHookFlushRound func(steady bool)

// run turns tracker change notifications into flushes until stop is closed. A change after a
// quiet window is flushed at once; changes that follow within CoalesceWindow wait for the
// window's end, so each topic gets at most one broadcast per window.
//
// Under a steady stream of changes (a window that ends with changes gathered) the next window
// lasts at least as long as the flush that ended this one took, so the writers spend at most
// half their time on broadcasts: a join storm into a topic of tens of thousands of sockets
// leaves the cores to the joins, and each socket gets a fresh count every two broadcast-times
// rather than one broadcast-time and a window. A change after a quiet window is still sent at
// once, and its window is CoalesceWindow.
func (h *hub) run(s *tracker.Subscription, stop <-chan struct{}) {
	window := h.g.cfg.CoalesceWindow
	dirty := make(map[string]struct{})
	timer := time.NewTimer(window)
	if !timer.Stop() {
		<-timer.C
	}
	armed := false
	partialTick := time.NewTicker(partialCheck)
	defer partialTick.Stop()
	flushDirty := func(steady bool) {
		start := time.Now()
		if testHookFlushRound != nil {
			testHookFlushRound(steady)
		}
		for topic := range dirty {
			delete(dirty, topic)
			h.flush(topic)
		}
		next := window // the window in which further changes are gathered
		if took := time.Since(start); steady && took > next {
			next = took
			h.g.metrics.stretchedWindows.Add(1)
		}
		timer.Reset(next)
		armed = true
	}
	for {
		select {
		case <-stop:
			timer.Stop()
			return
		case <-s.C():
			for _, topic := range s.Topics() {
				dirty[topic] = struct{}{}
				h.g.metrics.topicChanges.Add(1)
			}
			if !armed && len(dirty) > 0 {
				flushDirty(false)
			}
		case <-timer.C:
			armed = false
			if len(dirty) > 0 {
				flushDirty(true)
			}
		case <-partialTick.C:
			if h.g.checkPartial() { // every channel that asked for "partial" must hear of it
				h.mu.Lock()
				for topic := range h.topics {
					dirty[topic] = struct{}{}
				}
				h.mu.Unlock()
				if !armed && len(dirty) > 0 {
					flushDirty(false)
				}
			}
		}
	}
}

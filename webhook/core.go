package webhook

import (
	"container/heap"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/headcount-io/headcount/tracker"
)

// Core is the webhook's decision logic: which events a topic's transitions produce, who owns a
// topic, batching, retries and the bounded queue. It has no goroutines, clock or network: every
// method takes the current time, and the caller sends what Next returns and reports the outcome
// with Done. The same inputs always produce the same outputs (the jitter comes from Seed).
//
// A Core is not safe for concurrent use.
type Core struct {
	cfg     Config
	self    string
	prefix  string
	members []string // sorted, self included

	topics map[string]*topicState
	timers timerHeap
	lost   map[string]time.Time // topic -> when this node stopped owning it

	// The outbox: every topic with something to send is in order once, oldest first, from
	// index head; its events wait in its topicState (pend), or it is marked resync (send its
	// state as it is when the batch forms). queued counts the pend events of all topics,
	// resyncs the topics marked.
	order   []queuedTopic
	head    int
	queued  int
	resyncs int

	inflight *Batch
	formed   time.Time // when the last batch was formed
	sending  bool
	retryAt  time.Time
	resyncAt time.Time

	seq   uint64
	rng   *rand.Rand
	stats Stats
}

// Batch is one delivery: Body is the exact JSON to POST (sign it as is).
type Batch struct {
	// TimeMS is the body's time_ms: when the batch was formed, in Unix milliseconds.
	TimeMS int64
	// Events are the batch's events, in order.
	Events []Event
	// Body is the encoded Payload.
	Body []byte
	// Attempt is 1 for the first try, 2 for the first retry, and so on.
	Attempt int
}

// Stats are a Core's counters since it was created.
type Stats struct {
	// Emitted counts events put on the queue (transitions and re-sent states).
	Emitted uint64
	// Resent counts the events of Emitted that re-send a topic's state (takeover, settle, repair).
	Resent uint64
	// Sent counts events delivered (the receiver answered 2xx).
	Sent uint64
	// Batches counts deliveries that succeeded.
	Batches uint64
	// Retries counts failed attempts that were scheduled again.
	Retries uint64
	// DroppedQueue counts events coalesced because the queue was full: the topic's waiting
	// events were replaced by its state as it is when its turn comes.
	DroppedQueue uint64
	// DroppedRetries counts events dropped with a batch that failed MaxAttempts times.
	DroppedRetries uint64
	// DroppedHandover counts queued events dropped because another member took their topic
	// and the topic has since moved on (the event no longer agrees with its state).
	DroppedHandover uint64
	// Queued is the number of events waiting now, a topic marked to re-send its state counting
	// as one (not counting the batch in flight).
	Queued int
	// Members is the number of members in the Core's view, self included.
	Members int
	// Settling is true while a re-send of the owned topics' state is scheduled (Settle after a
	// member appeared).
	Settling bool
}

// NewCore returns a Core for the decision fields of cfg; self is this node's member name and
// idPrefix starts every event id (make it unique per incarnation). It returns an error wrapping
// ErrConfig when a field is invalid.
func NewCore(cfg Config, self, idPrefix string) (*Core, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return &Core{
		cfg:     cfg,
		self:    self,
		prefix:  idPrefix,
		members: []string{self},
		topics:  make(map[string]*topicState),
		lost:    make(map[string]time.Time),
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}, nil
}

// Stats returns the counters.
func (c *Core) Stats() Stats {
	s := c.stats
	s.Queued = c.queued + c.resyncs
	s.Members = len(c.members)
	s.Settling = !c.resyncAt.IsZero()
	return s
}

// Owner returns the member that sends topic's events in this node's view.
func (c *Core) Owner(topic string) string { return Owner(topic, c.members) }

// Members returns the member set the Core uses, sorted, self included.
func (c *Core) Members() []string { return slices.Clone(c.members) }

// Observe feeds the current counts of topic (read after a change notification). Observing the
// same counts twice changes nothing.
func (c *Core) Observe(now time.Time, topic string, n tracker.Counts) {
	if strings.HasSuffix(topic, "*") {
		return // a roll-up: never tracked, never occupied
	}
	ts := c.topics[topic]
	if n.Connections <= 0 {
		if ts == nil || !ts.occupied {
			return
		}
		ts.cur = tracker.Counts{}
		if ts.emptyAt.IsZero() {
			ts.emptyAt = now
			if c.cfg.VacateGrace == 0 {
				c.vacate(now, topic, ts)
			} else {
				c.timers.add(now.Add(c.cfg.VacateGrace), topic, timerVacate)
			}
		}
		return
	}
	if ts == nil {
		ts = &topicState{}
		c.topics[topic] = ts
	}
	ts.cur = n
	if !ts.occupied {
		*ts = topicState{occupied: true, since: now, cur: n, peakV: n.Viewers, peakU: n.Users, out: ts.out}
		c.emit(now, topic, Event{Name: NameOccupied, Topic: topic}, false)
	} else {
		ts.emptyAt = time.Time{}
		ts.peakV = max(ts.peakV, n.Viewers)
		ts.peakU = max(ts.peakU, n.Users)
	}
	if (n.Viewers != ts.sentV || n.Users != ts.sentU) && ts.countsDue.IsZero() {
		ts.countsDue = now.Add(c.cfg.Debounce)
		c.timers.add(ts.countsDue, topic, timerCounts)
	}
}

// Forget drops topic from the state machine without an event (for tests and embedders that
// remove a topic for good).
func (c *Core) Forget(topic string) {
	if ts := c.topics[topic]; ts != nil {
		c.dropOut(ts)
		delete(c.topics, topic)
	}
}

// dropOut takes ts out of the outbox; its entry in order is skipped when it comes up.
func (c *Core) dropOut(ts *topicState) {
	c.clearPend(ts)
	if ts.out.resync {
		c.resyncs--
	}
	ts.out = outbox{mayOccupied: ts.out.mayOccupied, mayVacated: ts.out.mayVacated}
}

func (c *Core) vacate(now time.Time, topic string, ts *topicState) {
	ts.occupied = false
	ts.vacatedAt = now
	ts.occupiedMS = ts.emptyAt.Sub(ts.since).Milliseconds()
	ts.pruneAt = now.Add(c.cfg.Retain)
	ts.countsDue = time.Time{}
	c.timers.add(ts.pruneAt, topic, timerPrune)
	c.emit(now, topic, Event{Name: NameVacated, Topic: topic, Viewers: ts.peakV, Users: ts.peakU, OccupiedMS: ts.occupiedMS}, false)
}

// SetMembers sets the members this node sees alive (self is always one). Topics this node
// gains have their state sent at once; topics it loses keep their queued events for Handover;
// when a member appeared, every owned topic's state is sent again Settle later.
func (c *Core) SetMembers(now time.Time, names []string) {
	set := append([]string{c.self}, names...)
	slices.Sort(set)
	set = slices.Compact(set)
	if slices.Equal(set, c.members) {
		return
	}
	old := c.members
	c.members = set
	added := false
	for _, m := range set {
		if _, found := slices.BinarySearch(old, m); !found {
			added = true
			break
		}
	}
	for _, topic := range c.sortedTopics() {
		was, is := Owner(topic, old) == c.self, Owner(topic, set) == c.self
		switch {
		case !was && is:
			delete(c.lost, topic)
			c.resend(now, topic)
		case was && !is:
			c.lost[topic] = now
		}
	}
	if added {
		c.resyncAt = now.Add(c.cfg.Settle)
	}
}

// MemberRestarted tells the Core that name, a member it sees, came back as a new incarnation
// under the same name (SetMembers sees no change). The new incarnation starts with an empty
// view: it cannot know what its previous one told the receiver, and may never see a topic that
// emptied while it started. So its topics are handled as if it had left and joined again: the
// runner-up owner of each sends its state now (as on a takeover), and every node sends the
// state of the topics it owns again Settle later (as when a member appears; while it started,
// with a partial view of the members, the new incarnation may have sent events for topics it
// does not own).
func (c *Core) MemberRestarted(now time.Time, name string) {
	if name != c.self {
		without := slices.DeleteFunc(slices.Clone(c.members), func(m string) bool { return m == name })
		for _, topic := range c.sortedTopics() {
			if Owner(topic, c.members) == name && Owner(topic, without) == c.self {
				c.resend(now, topic)
			}
		}
	}
	c.resyncAt = now.Add(c.cfg.Settle)
}

func (c *Core) sortedTopics() []string {
	out := make([]string, 0, len(c.topics))
	for t := range c.topics {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// resend queues topic's current state, whoever owns it (callers check).
func (c *Core) resend(now time.Time, topic string) {
	ts := c.topics[topic]
	if ts == nil {
		return
	}
	if !ts.occupied {
		c.emit(now, topic, Event{Name: NameVacated, Topic: topic, Viewers: ts.peakV, Users: ts.peakU, OccupiedMS: ts.occupiedMS}, true)
		return
	}
	c.emit(now, topic, Event{Name: NameOccupied, Topic: topic}, true)
	if c.cfg.Events.Counts {
		c.stateCounts(topic, ts, func(ev Event) { c.emit(now, topic, ev, true) })
	}
}

// stateCounts sends an occupied topic's counts with its state, or, while it has no presence
// (inside the grace), forgets the last counts decided on, so that the counts it has when a
// presence comes back are sent (the ones decided on may never have arrived).
func (c *Core) stateCounts(topic string, ts *topicState, send func(Event)) {
	if ts.cur.Connections == 0 {
		ts.sentV, ts.sentU = -1, -1
		return
	}
	ts.sentV, ts.sentU = ts.cur.Viewers, ts.cur.Users
	send(Event{Name: NameCounts, Topic: topic, Viewers: ts.cur.Viewers, Users: ts.cur.Users})
}

// emit queues ev if its name is selected and, for a transition, this node owns the topic.
func (c *Core) emit(now time.Time, topic string, ev Event, resent bool) {
	if !c.cfg.Events.want(ev.Name) {
		return
	}
	ts := c.topics[topic]
	if ts == nil {
		return // only Forget removes a topic with events on the way
	}
	if !resent && Owner(topic, c.members) != c.self {
		// Not ours: only a correction of this node's own last word goes (it told the
		// receiver occupied, and sees the topic vacated now, or the reverse), since the
		// owner may never have seen what this node reported.
		if ev.Name == NameCounts || !contradicts(ts, ev.Name) {
			return
		}
		resent = true
	}
	c.stats.Emitted++
	if resent {
		c.stats.Resent++
	}
	if ts.out.resync {
		return // its state is sent when its turn comes, and that includes this event
	}
	if c.queued >= c.cfg.QueueMax {
		// Full: the topic's waiting events and this one coalesce into its state, sent when
		// its turn comes. The bound is on events; a topic waits at most once in order.
		c.stats.DroppedQueue += uint64(len(ts.out.pend)) + 1
		c.clearPend(ts)
		c.markResync(now, topic, ts)
		return
	}
	c.push(now, ts, ev)
	c.enqueue(now, topic, ts)
}

// push gives ev its id and appends it to ts's waiting events.
func (c *Core) push(now time.Time, ts *topicState, ev Event) {
	c.seq++
	ev.ID = c.prefix + "-" + strconv.FormatUint(c.seq, 10)
	ev.created = now
	ts.out.pend = append(ts.out.pend, ev)
	c.queued++
}

// clearPend drops ts's waiting events (the caller counts them where they are dropped).
func (c *Core) clearPend(ts *topicState) {
	c.queued -= len(ts.out.pend)
	clear(ts.out.pend)
	ts.out.pend = ts.out.pend[:0]
}

// contradicts reports whether what the receiver may hold from this node about ts, counting
// the events waiting, is the opposite of name (an occupancy event name).
func contradicts(ts *topicState, name string) bool {
	for i := len(ts.out.pend) - 1; i >= 0; i-- {
		if n := ts.out.pend[i].Name; n != NameCounts {
			return n != name
		}
	}
	if name == NameOccupied {
		return ts.out.mayVacated
	}
	return ts.out.mayOccupied
}

// inFlight reports whether the batch in flight holds an event of topic.
func (c *Core) inFlight(topic string) bool {
	if c.inflight == nil {
		return false
	}
	return slices.ContainsFunc(c.inflight.Events, func(ev Event) bool { return ev.Topic == topic })
}

// enqueue puts topic at the end of the outbox order unless it is there already.
func (c *Core) enqueue(now time.Time, topic string, ts *topicState) {
	if ts.out.inOrder {
		return
	}
	ts.out.inOrder = true
	if c.head > 0 && c.head >= len(c.order)/2 {
		n := copy(c.order, c.order[c.head:])
		clear(c.order[n:])
		c.order, c.head = c.order[:n], 0
	}
	c.order = append(c.order, queuedTopic{topic: topic, at: now})
}

// markResync makes topic send its state as it is when its turn in the outbox comes (after a
// coalescing drop or a batch that failed MaxAttempts times).
func (c *Core) markResync(now time.Time, topic string, ts *topicState) {
	if !ts.out.resync {
		ts.out.resync = true
		c.resyncs++
	}
	c.enqueue(now, topic, ts)
}

// Tick fires the deadlines that have passed: vacates after the grace, debounced counts, the
// settle re-send, and forgetting old vacated topics.
func (c *Core) Tick(now time.Time) {
	for len(c.timers) > 0 && !c.timers[0].at.After(now) {
		t := heap.Pop(&c.timers).(timer)
		ts := c.topics[t.topic]
		if ts == nil {
			continue
		}
		switch t.kind {
		case timerVacate:
			if ts.occupied && !ts.emptyAt.IsZero() && !ts.emptyAt.Add(c.cfg.VacateGrace).After(t.at) {
				c.vacate(now, t.topic, ts)
			}
		case timerCounts:
			if !ts.countsDue.Equal(t.at) {
				continue
			}
			ts.countsDue = time.Time{}
			if ts.occupied && ts.cur.Connections > 0 && (ts.cur.Viewers != ts.sentV || ts.cur.Users != ts.sentU) {
				ts.sentV, ts.sentU = ts.cur.Viewers, ts.cur.Users
				c.emit(now, t.topic, Event{Name: NameCounts, Topic: t.topic, Viewers: ts.cur.Viewers, Users: ts.cur.Users}, false)
			}
		case timerPrune:
			if !ts.occupied && ts.pruneAt.Equal(t.at) && !ts.out.inOrder && !c.inFlight(t.topic) {
				delete(c.topics, t.topic)
			} else if !ts.occupied && ts.pruneAt.Equal(t.at) {
				ts.pruneAt = now.Add(c.cfg.Retain) // still waiting to be sent: try later
				c.timers.add(ts.pruneAt, t.topic, timerPrune)
			}
		}
	}
	if !c.resyncAt.IsZero() && !now.Before(c.resyncAt) {
		c.resyncAt = time.Time{}
		for _, topic := range c.sortedTopics() {
			if Owner(topic, c.members) == c.self {
				c.resend(now, topic)
			}
		}
	}
	for topic, at := range c.lost {
		if now.Sub(at) >= c.cfg.Handover {
			delete(c.lost, topic)
		}
	}
}

// deliverable reports whether this node may still send ev: it owns the topic, or lost it less
// than Handover ago, or ev still agrees with the topic's state as this node sees it (so a
// vacated that was stuck behind a down receiver while a new member took the topic over still
// arrives, while a stale one that the topic has moved past is dropped).
func (c *Core) deliverable(now time.Time, ev *Event) bool {
	if Owner(ev.Topic, c.members) == c.self {
		return true
	}
	if at, ok := c.lost[ev.Topic]; ok && now.Sub(at) < c.cfg.Handover {
		return true
	}
	ts := c.topics[ev.Topic]
	switch ev.Name {
	case NameOccupied:
		return ts != nil && ts.occupied
	case NameVacated:
		return ts == nil || !ts.occupied
	case NameCounts:
		return ts != nil && ts.occupied && ts.cur.Viewers == ev.Viewers && ts.cur.Users == ev.Users
	}
	return false
}

// Next returns the batch to send now, or nil when none is due (one is in flight, a retry waits
// for its backoff, or the queue is empty or still gathering). Report its outcome with Done
// before the next batch is formed.
func (c *Core) Next(now time.Time) *Batch {
	if c.sending {
		return nil
	}
	if b := c.inflight; b != nil {
		if now.Before(c.retryAt) {
			return nil
		}
		kept := b.Events[:0]
		for _, ev := range b.Events {
			if c.deliverable(now, &ev) {
				kept = append(kept, ev)
			} else {
				c.stats.DroppedHandover++
			}
		}
		if len(kept) != len(b.Events) {
			clear(b.Events[len(kept):])
			b.Events = kept
			b.Body = encode(b.TimeMS, kept)
		}
		if len(kept) > 0 {
			c.sending = true
			return b
		}
		c.inflight = nil
	}
	waiting := c.queued + c.resyncs
	if waiting == 0 || (waiting < c.cfg.BatchMax && now.Before(c.batchDue())) {
		return nil
	}
	b := &Batch{TimeMS: now.UnixMilli(), Attempt: 1}
	for c.head < len(c.order) && len(b.Events) < c.cfg.BatchMax {
		q := c.order[c.head]
		ts := c.topics[q.topic]
		if ts == nil || !ts.out.inOrder {
			c.order[c.head] = queuedTopic{}
			c.head++ // forgotten, or a stale entry
			continue
		}
		if ts.out.resync {
			ts.out.resync = false
			c.resyncs--
			c.stateEvents(now, q.topic, ts)
		}
		n := 0
		for _, ev := range ts.out.pend {
			if len(b.Events) == c.cfg.BatchMax {
				break
			}
			n++
			if c.deliverable(now, &ev) {
				b.Events = append(b.Events, ev)
				ts.out.mayOccupied = ts.out.mayOccupied || ev.Name == NameOccupied
				ts.out.mayVacated = ts.out.mayVacated || ev.Name == NameVacated
			} else {
				c.stats.DroppedHandover++
			}
		}
		c.queued -= n
		rest := copy(ts.out.pend, ts.out.pend[n:])
		clear(ts.out.pend[rest:])
		ts.out.pend = ts.out.pend[:rest]
		if rest > 0 {
			break // the batch is full; the topic keeps its place
		}
		ts.out.inOrder = false
		c.order[c.head] = queuedTopic{}
		c.head++
	}
	if c.head == len(c.order) {
		c.order, c.head = c.order[:0], 0
	}
	if len(b.Events) == 0 {
		return nil
	}
	b.Body = encode(b.TimeMS, b.Events)
	c.inflight, c.sending, c.formed = b, true, now
	return b
}

// stateEvents replaces topic's waiting events with its state as it is now, when this node
// should send it: as the owner (or in the Handover after losing the topic), or to correct its
// own last word when that no longer agrees with the topic's state as it sees it (a vacated
// that was coalesced away after a member took the topic over). The replaced events were
// counted when they were coalesced.
func (c *Core) stateEvents(now time.Time, topic string, ts *topicState) {
	c.clearPend(ts)
	owner := Owner(topic, c.members) == c.self
	if at, ok := c.lost[topic]; ok && now.Sub(at) < c.cfg.Handover {
		owner = true
	}
	add := func(ev Event) {
		if !c.cfg.Events.want(ev.Name) {
			return
		}
		c.push(now, ts, ev)
		c.stats.Emitted++
		c.stats.Resent++
	}
	switch {
	case !ts.occupied && (owner || ts.out.mayOccupied):
		add(Event{Name: NameVacated, Topic: topic, Viewers: ts.peakV, Users: ts.peakU, OccupiedMS: ts.occupiedMS})
	case ts.occupied && (owner || ts.out.mayVacated):
		add(Event{Name: NameOccupied, Topic: topic})
		if owner && c.cfg.Events.Counts {
			c.stateCounts(topic, ts, add)
		}
	}
}

// batchDue is when a partial batch may leave: BatchWait after its oldest event, or at once
// after a quiet spell (BatchWait since the previous batch), so a lone event is not delayed.
func (c *Core) batchDue() time.Time {
	due := c.oldest()
	if due.IsZero() {
		return due
	}
	due = due.Add(c.cfg.BatchWait)
	if quiet := c.formed.Add(c.cfg.BatchWait); quiet.Before(due) {
		return quiet
	}
	return due
}

// oldest is when the first topic waiting in the outbox entered it (zero for none); it skips
// stale entries.
func (c *Core) oldest() time.Time {
	for c.head < len(c.order) {
		if ts := c.topics[c.order[c.head].topic]; ts != nil && ts.out.inOrder {
			break
		}
		c.order[c.head] = queuedTopic{}
		c.head++
	}
	if c.head == len(c.order) {
		return time.Time{}
	}
	return c.order[c.head].at
}

// Done reports the outcome of the batch Next returned: ok when the receiver answered 2xx. A
// failed batch is tried again after a backoff, or dropped after MaxAttempts (its topics' state
// is then sent again later). It returns the events delivered, nil on failure.
func (c *Core) Done(now time.Time, ok bool) []Event {
	b := c.inflight
	if b == nil || !c.sending {
		return nil
	}
	c.sending = false
	if ok {
		c.inflight = nil
		c.stats.Sent += uint64(len(b.Events))
		c.stats.Batches++
		for _, ev := range b.Events { // the receiver holds these now
			if ts := c.topics[ev.Topic]; ts != nil && ev.Name != NameCounts {
				ts.out.mayOccupied, ts.out.mayVacated = ev.Name == NameOccupied, ev.Name == NameVacated
			}
		}
		return b.Events
	}
	if b.Attempt >= c.cfg.MaxAttempts {
		c.inflight = nil
		c.stats.DroppedRetries += uint64(len(b.Events))
		for _, ev := range b.Events {
			if ts := c.topics[ev.Topic]; ts != nil {
				c.markResync(now, ev.Topic, ts)
			}
		}
		return nil
	}
	c.retryAt = now.Add(c.backoff(b.Attempt))
	b.Attempt++
	c.stats.Retries++
	return nil
}

// backoff is the wait after the attempt-th failure: between half and all of
// min(RetryMin*2^(attempt-1), RetryMax).
func (c *Core) backoff(attempt int) time.Duration {
	d := c.cfg.RetryMax
	if attempt-1 < 32 {
		if x := c.cfg.RetryMin << (attempt - 1); x > 0 && x < d {
			d = x
		}
	}
	half := d / 2
	return half + time.Duration(c.rng.Int64N(int64(d-half)+1))
}

// Deadline returns when Tick or Next next has something to do, or the zero time when only new
// input (Observe, SetMembers, Done) can create work.
func (c *Core) Deadline() time.Time {
	var d time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if len(c.timers) > 0 {
		earlier(c.timers[0].at)
	}
	earlier(c.resyncAt)
	switch {
	case c.sending:
	case c.inflight != nil:
		earlier(c.retryAt)
	case c.queued+c.resyncs >= c.cfg.BatchMax:
		earlier(c.oldest()) // a full batch goes at once
	case c.queued+c.resyncs > 0:
		earlier(c.batchDue())
	}
	return d
}

func encode(timeMS int64, events []Event) []byte {
	b, err := json.Marshal(Payload{TimeMS: timeMS, Events: events})
	if err != nil {
		panic("webhook: encoding a batch: " + err.Error()) // only known names are ever queued
	}
	return b
}

package tracker

import "github.com/headcount-io/headcount/crdt"

// topicState is one topic's counters and visible entries, kept
// incrementally from every change.
type topicState struct {
	name    string // the topic, as the key of Tracker.topics: the state's interned copy
	viewers int
	conns   int
	local   int              // presences owned by this node, for the caps (limits.go)
	users   map[string]int32 // user id -> visible connections
	entries crdt.EntrySet
	ranks   []*rankItem // one per roll-up covering the topic (rollup.go)
}

func (t *Tracker) join(e *crdt.Entry) { t.joinIn(t.topics[e.Topic], e) }

// joinIn counts e visible in its topic, whose state is ts (nil when the
// topic has none yet), and returns the topic's state.
func (t *Tracker) joinIn(ts *topicState, e *crdt.Entry) *topicState {
	if ts == nil {
		ts = &topicState{name: e.Topic}
		if len(t.rollups) > 0 {
			ts.ranks = t.rollupsOf(e.Topic, ts)
		}
		t.topics[e.Topic] = ts
	}
	if !ts.entries.Add(e) {
		return ts
	}
	ts.conns++
	t.presences++
	if e.User == "" {
		ts.viewers++
	} else {
		if ts.users == nil {
			ts.users = make(map[string]int32)
		}
		ts.users[e.User]++
	}
	t.touch(e.Topic)
	if len(ts.ranks) > 0 {
		t.rollupJoin(ts, e)
	}
	return ts
}

func (t *Tracker) leave(e *crdt.Entry) { t.leaveFrom(t.topics[e.Topic], e) }

// leaveFrom counts e no longer visible in its topic, whose state is ts.
func (t *Tracker) leaveFrom(ts *topicState, e *crdt.Entry) {
	if ts == nil || !ts.entries.Remove(e) {
		return
	}
	ts.conns--
	t.presences--
	if e.User == "" {
		ts.viewers--
	} else if n := ts.users[e.User] - 1; n <= 0 {
		delete(ts.users, e.User)
	} else {
		ts.users[e.User] = n
	}
	t.touch(e.Topic)
	if len(ts.ranks) > 0 {
		t.rollupLeave(ts, e)
	}
	if ts.conns == 0 {
		delete(t.topics, e.Topic)
		t.state.ReleaseTopic(e.Topic)
	}
}

// apply feeds a change into the counters: joins first, so that an entry
// that joined and left in one change nets out.
func (t *Tracker) apply(ch crdt.Change) {
	for _, e := range ch.Joins {
		t.join(e)
	}
	for _, e := range ch.Leaves {
		t.leave(e)
	}
}

package tracker

import "github.com/headcount-io/headcount/crdt"

// topicState is one topic's counters and visible entries, kept
// incrementally from every change.
type topicState struct {
	viewers int
	conns   int
	users   map[string]int32 // user id -> visible connections
	entries map[*crdt.Entry]struct{}
	ranks   []*rankItem // one per roll-up covering the topic (rollup.go)
}

func (t *Tracker) join(e *crdt.Entry) {
	ts := t.topics[e.Topic]
	if ts == nil {
		ts = &topicState{entries: make(map[*crdt.Entry]struct{})}
		if len(t.rollups) > 0 {
			ts.ranks = t.rollupsOf(e.Topic, ts)
		}
		t.topics[e.Topic] = ts
	} else if _, dup := ts.entries[e]; dup {
		return
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
	ts.entries[e] = struct{}{}
	t.touch(e.Topic)
	if len(ts.ranks) > 0 {
		t.rollupJoin(ts, e)
	}
}

func (t *Tracker) leave(e *crdt.Entry) {
	ts := t.topics[e.Topic]
	if ts == nil {
		return
	}
	if _, ok := ts.entries[e]; !ok {
		return
	}
	delete(ts.entries, e)
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

package tracker

import (
	"fmt"

	"github.com/headcount-io/headcount/crdt"
)

// Verify checks that the incremental counters agree with a full rescan of
// the visible presences. It is O(presences) and meant for tests and
// debugging; it returns the first disagreement found.
func (t *Tracker) Verify() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	type counted struct {
		viewers, conns, local int
		users                 map[string]int32
		entries               map[*crdt.Entry]struct{}
	}
	want := make(map[string]*counted)
	n := 0
	var err error
	t.state.Entries(func(e *crdt.Entry) bool {
		n++
		ts := want[e.Topic]
		if ts == nil {
			ts = &counted{users: map[string]int32{}, entries: map[*crdt.Entry]struct{}{}}
			want[e.Topic] = ts
		}
		ts.conns++
		if e.Owner() == t.self {
			ts.local++
		}
		if e.User == "" {
			ts.viewers++
		} else {
			ts.users[e.User]++
		}
		ts.entries[e] = struct{}{}
		return true
	})
	if n != t.presences {
		return fmt.Errorf("tracker: %d visible entries, counter says %d", n, t.presences)
	}
	if len(want) != len(t.topics) {
		return fmt.Errorf("tracker: %d topics visible, %d counted", len(want), len(t.topics))
	}
	localTopics, local := 0, 0
	for _, w := range want {
		if w.local > 0 {
			localTopics++
			local += w.local
		}
	}
	if localTopics != t.local.topics || local != t.local.presences {
		return fmt.Errorf("tracker: %d local presences in %d topics, counter says %d in %d", local, localTopics, t.local.presences, t.local.topics)
	}
	for topic, w := range want {
		g := t.topics[topic]
		if g == nil || g.conns != w.conns || g.local != w.local || g.viewers != w.viewers || len(g.users) != len(w.users) || g.entries.Len() != len(w.entries) {
			return fmt.Errorf("tracker: topic %q counted %+v, visible %+v", topic, g, w)
		}
		for e := range w.entries {
			if !g.entries.Has(e) {
				err = fmt.Errorf("tracker: topic %q misses entry %s/%d", topic, e.Owner(), e.Ref)
			}
		}
	}
	return err
}

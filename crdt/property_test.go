package crdt

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// history drives a few owners through random operations and records every
// message a peer could receive: flushed deltas, relayed merges and
// snapshots taken at random moments.
type history struct {
	owners []*State
	msgs   []Message
	// prefix[owner][seq] is the owner's view right after seq was flushed.
	prefix map[string]map[Seq][]string
}

func ownerView(s *State) []string {
	// The local partition is always visible.
	return view(s)
}

func genHistory(t *rapid.T) *history {
	n := rapid.IntRange(1, 3).Draw(t, "owners")
	h := &history{prefix: make(map[string]map[Seq][]string)}
	for i := range n {
		r := Replica{Name: fmt.Sprintf("o%d", i), Epoch: 1}
		h.owners = append(h.owners, NewState(r, Options{
			LogMaxOps:     rapid.IntRange(1, 8).Draw(t, "logMax"),
			SnapshotChunk: rapid.IntRange(1, 4).Draw(t, "chunk"),
		}))
		h.prefix[r.Name] = map[Seq][]string{0: nil}
	}
	steps := rapid.IntRange(0, 60).Draw(t, "steps")
	for range steps {
		o := h.owners[rapid.IntRange(0, n-1).Draw(t, "owner")]
		switch rapid.IntRange(0, 5).Draw(t, "op") {
		case 0, 1:
			user := rapid.SampledFrom([]string{"", "", "u1", "u2"}).Draw(t, "user")
			topic := rapid.SampledFrom([]string{"t1", "t2"}).Draw(t, "topic")
			o.Add(topic, user, rapid.Uint64Range(1, 9).Draw(t, "conn"), nil)
			h.prefix[o.self.Name][o.local.seq] = ownerView(o)
		case 2:
			var refs []Seq
			for e := range o.local.entries.All() {
				refs = append(refs, e.Ref)
			}
			if len(refs) > 0 {
				o.Remove(rapid.SampledFrom(sortedSeqs(refs)).Draw(t, "ref"))
				h.prefix[o.self.Name][o.local.seq] = ownerView(o)
			}
		case 3:
			for _, d := range o.Flush(rapid.IntRange(0, 3).Draw(t, "maxOps")) {
				h.msgs = append(h.msgs, d)
			}
		case 4:
			since := rapid.Uint64Range(0, o.Seq(o.self)).Draw(t, "since")
			h.msgs = append(h.msgs, o.Since(o.self, since, rapid.IntRange(0, 4).Draw(t, "merge"))...)
		case 5:
			if o.Seq(o.self) > 0 {
				h.msgs = append(h.msgs, o.localSnapshot())
			}
		}
	}
	for _, o := range h.owners {
		for _, d := range o.Flush(0) {
			h.msgs = append(h.msgs, d)
		}
	}
	return h
}

func sortedSeqs(s []Seq) []Seq {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

func (h *history) truth() []string {
	var all []string
	for _, o := range h.owners {
		all = append(all, ownerView(o)...)
	}
	return sortStrings(all)
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

func newReceiver(h *history) *State {
	r := NewState(Replica{Name: "recv", Epoch: 1}, Options{})
	for _, o := range h.owners {
		r.Show(o.self)
	}
	return r
}

// deliver applies a fresh copy of m, as the wire would hand it over.
func deliver(t tester, s *State, m Message) Status {
	t.Helper()
	var from Replica
	switch m := m.(type) {
	case *Delta:
		from = m.Owner
	case *Snapshot:
		from = m.Owner
	}
	_, st := apply(t, s, roundTrip(t, from, m))
	return st
}

// repair brings s up to date from the owners, as anti-entropy would.
func repair(t tester, s *State, h *history) {
	t.Helper()
	for _, o := range h.owners {
		for _, m := range o.Since(o.self, s.Seq(o.self), 0) {
			deliver(t, s, m)
		}
	}
}

// consistentPrefix checks that, for every owner, what s holds is exactly
// the owner's state at the sequence s has reached: no holes, no ghosts.
func consistentPrefix(t *rapid.T, s *State, h *history) {
	for _, o := range h.owners {
		seq := s.Seq(o.self)
		want, ok := h.prefix[o.self.Name][seq]
		if !ok {
			t.Fatalf("receiver at %v seq %d, a sequence the owner never flushed at", o.self, seq)
		}
		var got []string
		for e := range s.parts[o.self.Name].entries.All() {
			got = append(got, fmt.Sprintf("%s|%d|%s|%s|%d|%x", e.Owner(), e.Ref, e.Topic, e.User, e.Conn, e.Meta))
		}
		if fmt.Sprint(sortStrings(got)) != fmt.Sprint(want) {
			t.Fatalf("owner %v at seq %d: got %v, want %v", o.self, seq, got, want)
		}
	}
}

// Delta path == full-state path: in-order deltas, and final snapshots
// alone, give the same state as the owners.
func TestPropertyDeltaPathEqualsStatePath(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := genHistory(t)
		viaDeltas, viaState := newReceiver(h), newReceiver(h)
		for _, m := range h.msgs {
			if d, ok := m.(*Delta); ok {
				deliver(t, viaDeltas, d)
			}
		}
		repair(t, viaDeltas, h)
		for _, o := range h.owners {
			if o.Seq(o.self) > 0 {
				deliver(t, viaState, o.localSnapshot())
			}
		}
		require.Equal(t, h.truth(), view(viaDeltas))
		require.Equal(t, h.truth(), view(viaState))
	})
}

// Any order, with duplicates, leaves every owner's partition at an exact
// prefix of its chain (no holes acting as deletes, no ghosts), and after
// anti-entropy every order gives the same state: the join is commutative.
func TestPropertyOrderIndependence(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := genHistory(t)
		s := newReceiver(h)
		order := rapid.SliceOfN(rapid.IntRange(0, max(len(h.msgs)-1, 0)), 0, 3*len(h.msgs)).Draw(t, "order")
		for _, i := range order {
			if len(h.msgs) == 0 {
				break
			}
			deliver(t, s, h.msgs[i])
			consistentPrefix(t, s, h)
		}
		repair(t, s, h)
		require.Equal(t, h.truth(), view(s))
	})
}

// Idempotence: applying every message again changes nothing.
func TestPropertyIdempotent(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := genHistory(t)
		s := newReceiver(h)
		for _, m := range h.msgs {
			deliver(t, s, m)
		}
		repair(t, s, h)
		before := view(s)
		for _, m := range h.msgs {
			st := deliver(t, s, m)
			require.Contains(t, []Status{Stale, Ignored}, st)
		}
		require.Equal(t, before, view(s))
	})
}

// join merges src into dst the way two replicas exchange state: for every
// owner src holds, what dst lacks of it.
func join(t tester, dst, src *State) {
	t.Helper()
	for _, p := range src.Partitions() {
		if p.Owner.Name == dst.self.Name {
			continue
		}
		dst.Show(p.Owner)
		for _, m := range src.Since(p.Owner, dst.Seq(p.Owner), 0) {
			deliver(t, dst, m)
		}
	}
}

func clone(t tester, s *State, name string) *State {
	t.Helper()
	c := NewState(Replica{Name: name, Epoch: 1}, Options{})
	join(t, c, s)
	return c
}

// Lattice laws on replica states built from random subsets of messages:
// x ⊔ y == y ⊔ x, (x ⊔ y) ⊔ z == x ⊔ (y ⊔ z), x ⊔ x == x.
func TestPropertyJoinLaws(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		h := genHistory(t)
		mk := func(label string) *State {
			s := newReceiver(h)
			for i, m := range h.msgs {
				if rapid.Bool().Draw(t, fmt.Sprintf("%s%d", label, i)) {
					deliver(t, s, m)
				}
			}
			return s
		}
		x, y, z := mk("x"), mk("y"), mk("z")

		xy := clone(t, x, "xy")
		join(t, xy, y)
		yx := clone(t, y, "yx")
		join(t, yx, x)
		require.Equal(t, view(xy), view(yx), "commutative")

		left := clone(t, xy, "l")
		join(t, left, z)
		yz := clone(t, y, "yz")
		join(t, yz, z)
		right := clone(t, x, "r")
		join(t, right, yz)
		require.Equal(t, view(left), view(right), "associative")

		xx := clone(t, x, "xx")
		join(t, xx, x)
		require.Equal(t, view(clone(t, x, "x2")), view(xx), "idempotent")
	})
}

package crdt

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLocalAddRemoveFlush(t *testing.T) {
	a := NewState(rA, Options{})
	e1 := a.Add("t", "", 1, nil)
	e2 := a.Add("t", "u", 2, []byte("m"))
	require.Equal(t, Seq(1), e1.Ref)
	require.Equal(t, Seq(2), e2.Ref)
	require.Equal(t, rA, e1.Owner())
	require.Equal(t, Seq(0), a.Seq(rA), "unflushed ops are not visible to peers")
	require.Same(t, e1, a.Remove(1))
	require.Nil(t, a.Remove(1), "second remove finds nothing")
	require.Equal(t, 3, a.Buffered())
	ds := a.Flush(2)
	require.Len(t, ds, 2)
	require.Equal(t, Seq(0), ds[0].From)
	require.Equal(t, Seq(2), ds[0].To)
	require.Equal(t, Seq(2), ds[1].From)
	require.Equal(t, Seq(3), ds[1].To)
	require.True(t, ds[1].Ops[0].IsRemove())
	require.Equal(t, Seq(3), a.Seq(rA))
	require.Nil(t, a.Flush(10))
}

func TestDeltaAppliesInOrderAndReportsChange(t *testing.T) {
	a, b := NewState(rA, Options{}), NewState(rB, Options{})
	b.Show(rA)
	a.Add("t", "", 1, nil)
	a.Add("t", "u", 2, nil)
	d1 := a.Flush(0)[0]
	a.Remove(1)
	d2 := a.Flush(0)[0]

	ch, st := apply(t, b, roundTrip(t, rA, d1))
	require.Equal(t, Applied, st)
	require.Len(t, ch.Joins, 2)
	ch, st = apply(t, b, roundTrip(t, rA, d2))
	require.Equal(t, Applied, st)
	require.Len(t, ch.Leaves, 1)
	require.Equal(t, Seq(1), ch.Leaves[0].Ref)
	require.Equal(t, view(a), view(b))

	_, st = apply(t, b, roundTrip(t, rA, d1))
	require.Equal(t, Stale, st, "a duplicate is stale")
}

func TestGapIsKeptAsideThenFilled(t *testing.T) {
	a, b := NewState(rA, Options{}), NewState(rB, Options{})
	b.Show(rA)
	a.Add("t", "", 1, nil)
	d1 := a.Flush(0)[0]
	a.Add("t", "", 2, nil)
	d2 := a.Flush(0)[0]

	ch, st := apply(t, b, roundTrip(t, rA, d2))
	require.Equal(t, Gap, st)
	require.True(t, ch.Empty())
	require.Equal(t, Seq(0), b.Seq(rA), "the gap asks from 0")
	ch, st = apply(t, b, roundTrip(t, rA, d1))
	require.Equal(t, Applied, st)
	require.Len(t, ch.Joins, 2, "the kept-aside delta is drained")
	require.Equal(t, view(a), view(b))
}

func TestOverlappingDeltaSkipsKnownOps(t *testing.T) {
	a, b := NewState(rA, Options{}), NewState(rB, Options{})
	b.Show(rA)
	a.Add("t", "", 1, nil)
	d1 := a.Flush(0)[0]
	a.Remove(1)
	a.Add("t", "", 2, nil)
	a.Flush(0)
	apply(t, b, roundTrip(t, rA, d1))
	// A relay merges the log into one delta (0, 3]: the add of ref 1 must
	// not come back, the remove and the new add must apply.
	msgs := a.Since(rA, 0, 0)
	require.Len(t, msgs, 1)
	_, st := apply(t, b, roundTrip(t, rA, msgs[0]))
	require.Equal(t, Applied, st)
	require.Equal(t, view(a), view(b))
}

func TestRemoteInputNeverTouchesLocalPartition(t *testing.T) {
	a := NewState(rA, Options{})
	a.Add("t", "", 1, nil)
	a.Flush(0)
	before := view(a)
	forged := &Delta{Owner: rA, From: 0, To: 1, Ops: []Op{{Ref: 1, Entry: &Entry{Ref: 1, Topic: "x"}}}}
	_, st, err := a.ApplyDelta(forged)
	require.NoError(t, err)
	require.Equal(t, Ignored, st)
	_, st, err = a.ApplySnapshot(&Snapshot{Owner: Replica{Name: "a", Epoch: 9}, Seq: 10})
	require.NoError(t, err)
	require.Equal(t, Ignored, st)
	require.Equal(t, before, view(a))
	require.True(t, a.Drop(rA).Empty())
	require.Equal(t, before, view(a))
}

func TestInvalidMessagesAreRejectedWhole(t *testing.T) {
	b := NewState(rB, Options{})
	cases := map[string]Message{
		"backwards range":    &Delta{Owner: rA, From: 5, To: 3},
		"add outside range":  &Delta{Owner: rA, From: 0, To: 1, Ops: []Op{{Ref: 2, Entry: &Entry{Ref: 2, Topic: "t"}}}},
		"ref mismatch":       &Delta{Owner: rA, From: 0, To: 2, Ops: []Op{{Ref: 1, Entry: &Entry{Ref: 2, Topic: "t"}}}},
		"remove after range": &Delta{Owner: rA, From: 0, To: 2, Ops: []Op{{Ref: 2}}},
		"snapshot too new":   &Snapshot{Owner: rA, Seq: 1, Entries: []*Entry{{Ref: 2, Topic: "t"}}},
		"snapshot dup":       &Snapshot{Owner: rA, Seq: 3, Entries: []*Entry{{Ref: 2, Topic: "t"}, {Ref: 2, Topic: "u"}}},
		"snapshot zero ref":  &Snapshot{Owner: rA, Seq: 3, Entries: []*Entry{{Ref: 0, Topic: "t"}}},
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			var err error
			switch m := m.(type) {
			case *Delta:
				_, _, err = b.ApplyDelta(m)
			case *Snapshot:
				_, _, err = b.ApplySnapshot(m)
			}
			require.True(t, errors.Is(err, ErrInvalid), "err = %v", err)
			require.Empty(t, b.Partitions()[0:0])
			require.Equal(t, Seq(0), b.Seq(rA))
		})
	}
}

func TestHideShowDrop(t *testing.T) {
	a, b := NewState(rA, Options{}), NewState(rB, Options{})
	a.Add("t", "", 1, nil)
	d := a.Flush(0)[0]
	ch, _ := apply(t, b, roundTrip(t, rA, d))
	require.True(t, ch.Empty(), "a replica not yet seen up stays hidden")
	ch = b.Show(rA)
	require.Len(t, ch.Joins, 1)
	require.True(t, b.Show(rA).Empty(), "show is idempotent")
	ch = b.Hide(rA)
	require.Len(t, ch.Leaves, 1)
	require.True(t, b.Hide(rA).Empty(), "hide is idempotent")
	// Input keeps being applied while hidden, silently.
	a.Add("t", "", 2, nil)
	ch, st := apply(t, b, roundTrip(t, rA, a.Flush(0)[0]))
	require.Equal(t, Applied, st)
	require.True(t, ch.Empty())
	require.Len(t, b.Show(rA).Joins, 2)
	require.Len(t, b.Drop(rA).Leaves, 2)
	require.True(t, b.IsDead(rA))
	require.Empty(t, view(b))
}

// Data never supersedes an incarnation (an impostor with the same name and another epoch must
// change nothing); the membership layer does, with Drop then Show, whatever the epochs' order.
func TestDataNeverSupersedesAnIncarnation(t *testing.T) {
	a, b := NewState(rA, Options{}), NewState(rB, Options{})
	b.Show(rA)
	a.Add("t", "", 1, nil)
	apply(t, b, roundTrip(t, rA, a.Flush(0)[0]))
	for _, epoch := range []uint64{0, 2, 1 << 62} { // lower and higher epochs alike
		imp := NewState(Replica{Name: "a", Epoch: epoch}, Options{})
		imp.Add("t", "", 7, nil)
		ch, st := apply(t, b, roundTrip(t, imp.Self(), imp.Flush(0)[0]))
		require.Equal(t, Ignored, st)
		require.True(t, ch.Empty())
		_, st = apply(t, b, roundTrip(t, imp.Self(), &Snapshot{Owner: imp.Self(), Seq: 9}))
		require.Equal(t, Ignored, st)
		_, st = apply(t, b, roundTrip(t, imp.Self(), &Snapshot{Owner: imp.Self(), Seq: 9, Part: 0, Parts: 2}))
		require.Equal(t, Ignored, st)
		_, behind := b.Behind(DigestItem{Owner: imp.Self(), Seq: 5})
		require.False(t, behind)
		require.False(t, b.IsDead(rA))
		require.Equal(t, view(a), view(b))
	}
	// Membership announces a restart with a LOWER epoch (the clock stepped back): it is current.
	a0 := NewState(Replica{Name: "a", Epoch: 0}, Options{})
	require.Len(t, b.Drop(rA).Leaves, 1, "the old incarnation's presences leave at once")
	require.Empty(t, b.Show(a0.Self()).Joins)
	a0.Add("t", "", 3, nil)
	_, st := apply(t, b, roundTrip(t, a0.Self(), a0.Flush(0)[0]))
	require.Equal(t, Applied, st)
	require.Equal(t, view(a0), view(b))
	// A late message of the dropped incarnation is ignored.
	a.Add("t", "", 4, nil)
	_, st = apply(t, b, roundTrip(t, rA, a.Flush(0)[0]))
	require.Equal(t, Ignored, st)
	require.Equal(t, view(a0), view(b))
}

func TestReviveAfterPermdown(t *testing.T) {
	b := NewState(rB, Options{})
	b.Drop(Replica{Name: "a", Epoch: 1})
	b.Drop(Replica{Name: "a", Epoch: 5})
	require.True(t, b.IsDead(Replica{Name: "a", Epoch: 5}))
	require.False(t, b.IsDead(Replica{Name: "a", Epoch: 4}), "only dropped epochs are dead: epochs have no order")
	b.Revive(Replica{Name: "a", Epoch: 5})
	require.False(t, b.IsDead(Replica{Name: "a", Epoch: 5}))
	require.True(t, b.IsDead(Replica{Name: "a", Epoch: 1}), "other dropped incarnations stay dead")
	for e := range uint64(20) {
		b.Drop(Replica{Name: "a", Epoch: 100 + e})
	}
	require.LessOrEqual(t, len(b.dead["a"]), maxDeadEpochs, "bounded per name")
	require.True(t, b.IsDead(Replica{Name: "a", Epoch: 119}))
	b.ForgetDead("a")
	require.Empty(t, b.DeadNames())
}

func TestSinceUsesLogThenSnapshot(t *testing.T) {
	a := NewState(rA, Options{LogMaxOps: 4})
	for i := range 10 {
		a.Add("t", "", uint64(i), nil)
		a.Flush(0)
	}
	msgs := a.Since(rA, 8, 0)
	require.Len(t, msgs, 1)
	require.IsType(t, &Delta{}, msgs[0])
	require.Equal(t, Seq(8), msgs[0].(*Delta).From)
	msgs = a.Since(rA, 2, 0)
	require.Len(t, msgs, 1)
	require.IsType(t, &Snapshot{}, msgs[0], "the log no longer reaches back to 2")
	require.Len(t, msgs[0].(*Snapshot).Entries, 10)
	require.Nil(t, a.Since(rA, 10, 0), "nothing newer")
	require.Nil(t, a.Since(Replica{Name: "a", Epoch: 9}, 0, 0), "other incarnation")
}

func TestDigestAndBehind(t *testing.T) {
	a, b, c := NewState(rA, Options{}), NewState(rB, Options{}), NewState(rC, Options{})
	a.Add("t", "", 1, nil)
	apply(t, b, roundTrip(t, rA, a.Flush(0)[0]))
	dg := roundTrip(t, rB, b.Digest()).(*Digest)
	require.Len(t, dg.Items, 2)
	var asks []Request
	for _, it := range dg.Items {
		if since, ok := c.Behind(it); ok {
			asks = append(asks, Request{Owner: it.Owner, Since: since})
		}
	}
	require.Equal(t, []Request{{Owner: rA, Since: 0}}, asks, "b's own partition is empty: nothing to ask")
	// c asks b (a relay) for a's chain.
	for _, m := range b.Since(rA, 0, 0) {
		apply(t, c, roundTrip(t, rB, m))
	}
	c.Show(rA)
	require.Equal(t, view(a), view(c))
	_, behind := c.Behind(DigestItem{Owner: rA, Seq: 1})
	require.False(t, behind)
}

// A snapshot of the local partition answered while an update (remove +
// add) is still buffered shows the partition as of the last flush: the old
// entry, not neither.
func TestLocalSnapshotWithBufferedUpdate(t *testing.T) {
	a := NewState(rA, Options{LogMaxOps: 1})
	old := a.Add("t", "u", 1, nil)
	a.Add("t", "", 2, nil)
	a.Flush(0) // the log keeps only the last op: a request since 0 needs a snapshot
	a.Remove(old.Ref)
	a.Add("t", "u", 1, []byte("new"))
	msgs := a.Since(rA, 0, 0)
	require.Len(t, msgs, 1)
	sn := msgs[0].(*Snapshot)
	require.Equal(t, Seq(2), sn.Seq)
	refs := map[Seq]bool{}
	for _, e := range sn.Entries {
		refs[e.Ref] = true
	}
	require.Equal(t, map[Seq]bool{1: true, 2: true}, refs)
}

// A partition larger than SnapshotChunk travels in parts; they apply
// together, in any order, once all have arrived.
func TestSnapshotInParts(t *testing.T) {
	a := NewState(rA, Options{LogMaxOps: 1, SnapshotChunk: 3})
	b := NewState(rB, Options{})
	b.Show(rA)
	for i := range 10 {
		e := a.Add("t", "", uint64(i), nil)
		if i == 4 {
			a.Remove(e.Ref)
		}
	}
	a.Flush(0)
	msgs := a.Since(rA, 0, 0)
	require.Len(t, msgs, 3, "9 entries in parts of 3")
	for i, m := range msgs {
		sn := m.(*Snapshot)
		require.Equal(t, uint32(i), sn.Part)
		require.Equal(t, uint32(3), sn.Parts)
	}
	order := []int{2, 0, 2, 1}
	want := []Status{Partial, Partial, Stale, Applied}
	for i, k := range order {
		ch, st := apply(t, b, roundTrip(t, rA, msgs[k]))
		require.Equal(t, want[i], st, "part %d", k)
		if st == Applied {
			require.Len(t, ch.Joins, 9)
		} else {
			require.True(t, ch.Empty())
		}
	}
	require.Equal(t, view(a), view(b))
	_, st := apply(t, b, roundTrip(t, rA, msgs[0]))
	require.Equal(t, Stale, st, "a part of an applied snapshot is stale")
}

// An unfinished snapshot is replaced by the parts of a newer one; parts of
// the older one that arrive later are stale.
func TestNewerSnapshotReplacesUnfinishedParts(t *testing.T) {
	a := NewState(rA, Options{LogMaxOps: 1, SnapshotChunk: 2})
	b := NewState(rB, Options{})
	b.Show(rA)
	for i := range 4 {
		a.Add("t", "", uint64(i), nil)
	}
	a.Flush(0)
	old := a.Since(rA, 0, 0)
	require.Len(t, old, 2)
	a.Add("t", "", 9, nil)
	a.Flush(0)
	newer := a.Since(rA, 0, 0)
	require.Len(t, newer, 3)

	_, st := apply(t, b, roundTrip(t, rA, old[0]))
	require.Equal(t, Partial, st)
	for _, m := range newer[:2] {
		_, st = apply(t, b, roundTrip(t, rA, m))
		require.Equal(t, Partial, st)
	}
	_, st = apply(t, b, roundTrip(t, rA, old[1]))
	require.Equal(t, Stale, st, "the older snapshot is abandoned")
	_, st = apply(t, b, roundTrip(t, rA, newer[2]))
	require.Equal(t, Applied, st)
	require.Equal(t, view(a), view(b))
}

// Parts whose entries repeat a ref across parts are rejected whole when
// the snapshot is assembled.
func TestSnapshotPartsWithDuplicateRefsAreInvalid(t *testing.T) {
	b := NewState(rB, Options{})
	e := func() []*Entry { return []*Entry{{Ref: 1, Topic: "t"}} }
	_, st, err := b.ApplySnapshot(&Snapshot{Owner: rA, Seq: 2, Entries: e(), Part: 0, Parts: 2})
	require.NoError(t, err)
	require.Equal(t, Partial, st)
	_, _, err = b.ApplySnapshot(&Snapshot{Owner: rA, Seq: 2, Entries: e(), Part: 1, Parts: 2})
	require.ErrorIs(t, err, ErrInvalid)
	require.Equal(t, Seq(0), b.Seq(rA))
}

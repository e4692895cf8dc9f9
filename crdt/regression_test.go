package crdt

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Phoenix.Tracker #148: a stale full state merged element by element into a
// newer partial state resurrected removed entries. Here a snapshot older
// than the partition is rejected whole.
func TestPhoenix148StaleSnapshotAfterNewerDelta(t *testing.T) {
	a, b := NewState(rA, Options{}), NewState(rB, Options{})
	b.Show(rA)
	a.Add("t", "", 1, nil)
	a.Add("t", "", 2, nil)
	a.Flush(0)
	stale := a.Since(rA, 0, 0)[0] // (0, 2]
	staleSnap := &Snapshot{Owner: rA, Seq: 2, Entries: []*Entry{{Ref: 1, Topic: "t", Conn: 1}, {Ref: 2, Topic: "t", Conn: 2}}}
	a.Remove(1)
	a.Flush(0)
	for _, m := range a.Since(rA, 0, 0) {
		apply(t, b, roundTrip(t, rA, m))
	}
	want := view(a)
	require.Len(t, want, 1)

	_, st := apply(t, b, roundTrip(t, rA, staleSnap))
	require.Equal(t, Stale, st)
	_, st = apply(t, b, roundTrip(t, rA, stale))
	require.Equal(t, Stale, st)
	require.Equal(t, want, view(b), "the removed entry must not come back")
}

// delta_crdt_ex #65: a partial sync implied "seen everything up to X" and
// deleted live entries. A relay's snapshot is an exact prefix of the owner's
// chain, so it can only be older (ignored) or newer (replaces exactly).
func TestDeltaCrdtEx65PartialSyncKeepsLiveEntries(t *testing.T) {
	a, b, relay := NewState(rA, Options{}), NewState(rB, Options{}), NewState(rC, Options{})
	b.Show(rA)
	for i := range 4 {
		a.Add("t", "", uint64(i), nil)
		d := a.Flush(0)[0]
		if i < 2 {
			apply(t, relay, roundTrip(t, rA, d))
		}
		apply(t, b, roundTrip(t, rA, d))
	}
	partial := relay.Since(rA, 0, 0)
	require.NotEmpty(t, partial)
	for _, m := range partial {
		_, st := apply(t, b, roundTrip(t, rC, m))
		require.Equal(t, Stale, st)
	}
	require.Len(t, view(b), 4, "no live entry deleted by a partial sync")
	require.Equal(t, view(a), view(b))
}

// Akka #22188: out-of-order ORSet deltas left holes that acted as deletes.
// Here a delta ahead of a gap is kept aside, never applied over the hole.
func TestAkka22188OutOfOrderDeltasAreNotDeletes(t *testing.T) {
	a, b := NewState(rA, Options{}), NewState(rB, Options{})
	b.Show(rA)
	var ds []*Delta
	a.Add("t", "", 1, nil)
	ds = append(ds, a.Flush(0)...)
	a.Add("t", "", 2, nil)
	ds = append(ds, a.Flush(0)...)
	a.Remove(2)
	a.Add("t", "", 3, nil)
	ds = append(ds, a.Flush(0)...)

	_, st := apply(t, b, roundTrip(t, rA, ds[2]))
	require.Equal(t, Gap, st)
	require.Empty(t, view(b), "nothing applied across the hole")
	_, st = apply(t, b, roundTrip(t, rA, ds[1]))
	require.Equal(t, Gap, st)
	_, st = apply(t, b, roundTrip(t, rA, ds[0]))
	require.Equal(t, Applied, st)
	require.Equal(t, view(a), view(b))
	require.Len(t, view(b), 2)
}

// Horde #90: deltas were garbage-collected before a slow peer caught up, and
// the peer never converged. Here a peer behind the bounded log gets a
// snapshot instead.
func TestHorde90LogTrimmedBeforePeerCaughtUpIsRepairedBySnapshot(t *testing.T) {
	a, b := NewState(rA, Options{LogMaxOps: 3, LogMaxBytes: 1 << 20}), NewState(rB, Options{})
	b.Show(rA)
	for i := range 20 {
		e := a.Add("t", "", uint64(i), nil)
		if i%3 == 0 {
			a.Remove(e.Ref)
		}
		a.Flush(0)
	}
	msgs := a.Since(rA, b.Seq(rA), 0)
	require.Len(t, msgs, 1)
	require.IsType(t, &Snapshot{}, msgs[0])
	_, st := apply(t, b, roundTrip(t, rA, msgs[0]))
	require.Equal(t, Applied, st)
	require.Equal(t, view(a), view(b))
	require.Equal(t, a.Seq(rA), b.Seq(rA))
}

// Phoenix.Tracker #179: refs of permdowned replicas were never dropped and
// the node died after a week. Dead incarnations are remembered per name
// (one number each) and can be forgotten.
func TestPhoenix179PermdownedReplicasDoNotAccumulate(t *testing.T) {
	b := NewState(rB, Options{})
	for epoch := uint64(1); epoch <= 1000; epoch++ {
		r := Replica{Name: "a", Epoch: epoch}
		b.Show(r)
		b.Drop(r)
	}
	require.Equal(t, []string{"a"}, b.DeadNames(), "one entry per name, not per incarnation")
	require.Len(t, b.Partitions(), 1, "only the local partition remains")
	b.ForgetDead("a")
	require.Empty(t, b.DeadNames())
}

// Found by the simulator (seed 278): a relay logged an overlapping delta
// as received, so its merged answer (0, 5] carried the add of ref 3 twice;
// the second add replaced the first entry without a leave and the
// receiver's counters kept a ghost. Logs now keep only the ops that took
// effect, and a delta whose adds are not strictly increasing is invalid.
func TestRelayOverlapDoesNotDuplicateAdds(t *testing.T) {
	a, relay, b := NewState(rA, Options{}), NewState(rC, Options{}), NewState(rB, Options{})
	relay.Show(rA)
	b.Show(rA)
	a.Add("t", "", 1, nil)
	a.Add("t", "", 2, nil)
	d1 := a.Flush(0)[0] // (0, 2]
	a.Add("t", "", 3, nil)
	a.Flush(0)
	apply(t, relay, roundTrip(t, rA, d1))
	for _, m := range a.Since(rA, 0, 0) { // (0, 3] overlaps what relay has
		apply(t, relay, roundTrip(t, rA, m))
	}
	msgs := relay.Since(rA, 0, 0)
	require.Len(t, msgs, 1)
	d := msgs[0].(*Delta)
	require.Len(t, d.Ops, 3, "each add once")
	apply(t, b, roundTrip(t, rC, d))
	require.Equal(t, view(a), view(b))

	dupAdds := &Delta{Owner: rA, From: 3, To: 5, Ops: []Op{{Ref: 5, Entry: &Entry{Ref: 5, Topic: "t"}}, {Ref: 5, Entry: &Entry{Ref: 5, Topic: "t"}}}}
	_, _, err := b.ApplyDelta(dupAdds)
	require.ErrorIs(t, err, ErrInvalid)
}

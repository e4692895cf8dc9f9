package tracker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// Issue 9 fault 1: a node restarted after its clock stepped back has a LOWER epoch. Membership
// announces it, so it is the current incarnation: the old one's presences go at once and the new
// one's show, and the old one's late data is ignored.
func TestRestartAfterClockStepBackIsNewest(t *testing.T) {
	a1, b := mkTracker(t, "a", 1_000_000), mkTracker(t, "b", 1)
	r := newRouter(t, a1, b)
	r.MeshUp()
	track(t, a1, 1, "x", "alice")
	r.Step(time.Millisecond)
	require.Equal(t, counts(0, 1, 1), b.Count("x"))

	a2 := mkTracker(t, "a", 999_000) // the clock stepped back before the restart
	r.Put(a2)
	track(t, a2, 1, "x", "")
	r.MeshUp()
	r.Step(time.Millisecond)
	require.Equal(t, counts(1, 0, 1), b.Count("x"), "the new incarnation is visible, the old one gone")
	require.Equal(t, a2.Self(), replicaInfo(t, b, "a").Replica)

	late := &crdt.Delta{Owner: a1.Self(), From: 1, To: 2, Ops: []crdt.Op{{Ref: 2, Entry: &crdt.Entry{Ref: 2, Topic: "x", Conn: 5}}}}
	require.Empty(t, b.Handle(a1.Self(), late))
	require.Equal(t, counts(1, 0, 1), b.Count("x"))
}

// Issue 9 fault 2: a second process with a live node's name (memberlist refused it) sends data.
// Whatever its epoch, higher or lower, its deltas, snapshots, digests and goodbyes change nothing.
func TestImpostorWithALiveNodesNameChangesNothing(t *testing.T) {
	a, b := mkTracker(t, "a", 100), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	track(t, a, 1, "x", "alice")
	track(t, a, 2, "x", "")
	r.Step(time.Millisecond)
	want := counts(1, 1, 2)
	require.Equal(t, want, b.Count("x"))
	for _, epoch := range []uint64{101, 1 << 60, 99, 0} {
		imp := mkTracker(t, "a", epoch)
		track(t, imp, 1, "y", "")
		d := imp.Tick(r.Now())
		for _, o := range d {
			r.Send(imp, []tracker.Outbound{{Target: tracker.ToOne, To: b.Self(), Msg: o.Msg}})
		}
		msgs := []crdt.Message{
			&crdt.Snapshot{Owner: imp.Self(), Seq: 5},
			&crdt.Digest{Items: []crdt.DigestItem{{Owner: imp.Self(), Seq: 7}}},
			&crdt.Goodbye{Replica: imp.Self()},
		}
		for _, m := range msgs {
			r.Send(imp, []tracker.Outbound{{Target: tracker.ToOne, To: b.Self(), Msg: m}})
		}
		r.Deliver()
		r.Step(time.Millisecond)
		require.Equal(t, want, b.Count("x"), "epoch %d", epoch)
		require.Equal(t, tracker.Counts{}, b.Count("y"))
		require.Equal(t, a.Self(), replicaInfo(t, b, "a").Replica)
		require.True(t, replicaInfo(t, b, "a").Up)
	}
	// The real node keeps replicating.
	track(t, a, 3, "x", "")
	r.Step(time.Millisecond)
	require.Equal(t, counts(2, 1, 3), b.Count("x"))
}

// Issue 10: without a key anyone can send a goodbye "from" a live node. It hides that node's
// presences only until GoodbyeGrace passes without membership confirming the leave; then they are
// shown again. An honest goodbye confirmed by membership drops them.
func TestSpoofedGoodbyeIsUndoneWhileMembershipSeesTheNode(t *testing.T) {
	a, b, spoofer := mkTracker(t, "a", 1), mkTracker(t, "b", 1), mkTracker(t, "s", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	track(t, a, 1, "x", "alice")
	r.Step(time.Millisecond)
	want := counts(0, 1, 1)
	require.Equal(t, want, b.Count("x"))

	r.Put(spoofer)
	r.Inject(a.Self(), b.Self(), &crdt.Goodbye{Replica: a.Self()})
	r.Deliver()
	require.Equal(t, tracker.Counts{}, b.Count("x"), "a goodbye hides at once")
	grace := b.Config().GoodbyeGrace
	for d := time.Duration(0); d <= grace+time.Second; d += 100 * time.Millisecond {
		r.Step(100 * time.Millisecond)
	}
	require.Equal(t, want, b.Count("x"), "membership never confirmed the goodbye: shown again")
	require.Equal(t, uint64(1), b.Stats().GoodbyesUndone)

	// A real leave: goodbye, then membership reports it.
	r.Send(a, a.Leave())
	r.Deliver()
	b.ReplicaLeft(a.Self())
	r.Step(grace + time.Second)
	require.Equal(t, tracker.Counts{}, b.Count("x"))
	require.False(t, knows(b, "a"))
}

func mustMarshal(t *testing.T, from crdt.Replica, m crdt.Message) []byte {
	t.Helper()
	b, err := crdt.Marshal(from, m)
	require.NoError(t, err)
	return b
}

// Issue 10: a forged snapshot or delta with a sequence far beyond anything the owner could have
// produced since it was last heard of is refused; it used to freeze the partition for good.
func TestImplausibleSequenceJumpIsRefused(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	track(t, a, 1, "x", "alice")
	r.Step(time.Millisecond)
	want := counts(0, 1, 1)
	require.Equal(t, want, b.Count("x"))
	inv := b.Stats().Invalid
	forged := []crdt.Message{
		&crdt.Snapshot{Owner: a.Self(), Seq: 1 << 40},
		&crdt.Delta{Owner: a.Self(), From: 1, To: 1 << 40, Ops: []crdt.Op{{Ref: 1}}},
	}
	for _, m := range forged {
		require.Empty(t, b.Handle(a.Self(), m))
	}
	require.Equal(t, inv+2, b.Stats().Invalid)
	require.Equal(t, want, b.Count("x"))
	// a's real data still applies.
	track(t, a, 2, "x", "")
	r.Step(time.Millisecond)
	require.Equal(t, counts(1, 1, 2), b.Count("x"))
}

// A catch-up request costs ~40 bytes and can draw a whole partition: answers are rate-limited per
// requester and owner.
func TestCatchUpAnswersAreRateLimited(t *testing.T) {
	a, b, c := mkTracker(t, "a", 1), mkTracker(t, "b", 1), mkTracker(t, "c", 1)
	r := newRouter(t, a, b, c)
	r.MeshUp()
	for i := range 50 {
		track(t, a, tracker.Owner(i+1), "x", "")
	}
	r.Step(time.Millisecond)
	req := &crdt.Request{Owner: a.Self(), Since: 0}
	require.NotEmpty(t, b.Handle(c.Self(), req))
	for range 100 {
		require.Empty(t, b.Handle(c.Self(), req), "flood refused")
	}
	require.Equal(t, uint64(100), b.Stats().RequestsRefused)
	r.Step(b.Config().RequestRetry)
	require.NotEmpty(t, b.Handle(c.Self(), req), "answered again after the window")
}

// Regression (found by gossip's TestHostileGossipWithoutKeyShowsTheRisk): a replica announced and
// heard of before the tracker's first Tick had no time base for the plausibility bound, which was
// then taken as 24 h of operations (2^24 per second), so a forged jump to 2^40 was accepted and
// froze the partition until the owner's next real operation.
func TestSequenceJumpRefusedWhenHeardOfBeforeTheFirstTick(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	deliver := func(outs []tracker.Outbound) {
		for _, o := range outs {
			from, m, err := crdt.Unmarshal(mustMarshal(t, a.Self(), o.Msg))
			require.NoError(t, err)
			b.Handle(from, m)
		}
	}
	b.ReplicaUp(a.Self()) // before b's first Tick
	track(t, a, 1, "x", "alice")
	deliver(a.Tick(epochT0))
	require.Equal(t, counts(0, 1, 1), b.Count("x"))
	b.Tick(epochT0.Add(time.Second))
	b.Tick(epochT0.Add(2 * time.Second))
	inv := b.Stats().Invalid
	const top = crdt.Seq(1) << 40
	require.Empty(t, b.Handle(a.Self(), &crdt.Delta{Owner: a.Self(), From: top - 1, To: top, Ops: []crdt.Op{{Ref: 1}}}))
	require.Equal(t, inv+1, b.Stats().Invalid, "the jump is refused")
	track(t, a, 2, "x", "")
	deliver(a.Tick(epochT0.Add(3 * time.Second)))
	require.Equal(t, counts(1, 1, 2), b.Count("x"), "a's real data still applies")
}

package tracker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// Membership: replicas up, down, left, new epochs, permdown and dead incarnations.

func TestReplicaUpBootstrapsLateNode(t *testing.T) {
	small := func(c *tracker.Config) { c.LogMaxOps = 8 } // logs trimmed: catch-up needs snapshots
	a, b := mkTracker(t, "a", 1, small), mkTracker(t, "b", 1, small)
	r := newRouter(t, a, b)
	r.MeshUp()
	for i := range 100 {
		track(t, a, tracker.Owner(i), "x", "")
	}
	for i := range 30 {
		track(t, b, tracker.Owner(i), "x", fmt.Sprintf("user%d", i%20))
	}
	r.Step(time.Millisecond)
	require.Equal(t, counts(100, 20, 130), a.Count("x"))
	require.Equal(t, counts(100, 20, 130), b.Count("x"))

	c := mkTracker(t, "c", 1, small)
	track(t, c, 1, "x", "user0")
	require.Len(t, c.Tick(r.Now()), 2, "c flushes its delta and a digest to nobody")
	r.Put(c)
	r.MeshUp()
	// Membership alone brings c up to date: a request each way, answered
	// with snapshots.
	require.Equal(t, counts(100, 20, 131), c.Count("x"))
	require.Equal(t, counts(100, 20, 131), a.Count("x"))
	require.Equal(t, counts(100, 20, 131), b.Count("x"))
	require.Positive(t, a.Stats().SnapshotsSent)
	require.Positive(t, c.Stats().SnapshotsApplied)
	require.Positive(t, c.Stats().Requests)
	require.Positive(t, r.Sent["*crdt.Request"])
	require.Positive(t, r.Sent["*crdt.Snapshot"])
}

func TestReplicaUpBootstrapsFromLog(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	for i := range 10 {
		track(t, a, tracker.Owner(i), "x", "")
	}
	r.Step(time.Millisecond) // flushed into a's log; b does not know a yet
	require.Equal(t, tracker.Counts{}, b.Count("x"))
	r.MeshUp()
	require.Equal(t, counts(10, 0, 10), b.Count("x"))
	require.Zero(t, a.Stats().SnapshotsSent, "a recent log answers without a snapshot")
}

func TestReplicaDownHidesUpShows(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	for i := range 5 {
		track(t, a, tracker.Owner(i), "x", "")
	}
	r.Step(time.Millisecond)
	require.Equal(t, counts(5, 0, 5), b.Count("x"))

	b.ReplicaDown(a.Self())
	require.Equal(t, tracker.Counts{}, b.Count("x"), "a down replica is not counted")
	info := replicaInfo(t, b, "a")
	require.False(t, info.Up)
	require.Equal(t, 5, info.Presences, "but its presences are kept")
	require.Equal(t, 1, b.Stats().Down)

	// Data from a down replica keeps being applied while hidden.
	track(t, a, 5, "x", "")
	r.Step(time.Millisecond)
	require.Equal(t, tracker.Counts{}, b.Count("x"))

	r.Up(b, a)
	require.Equal(t, counts(6, 0, 6), b.Count("x"))
	require.True(t, replicaInfo(t, b, "a").Up)
	require.Equal(t, 0, b.Stats().Down)
	require.Zero(t, b.Stats().Permdowns)
}

func replicaInfo(t *testing.T, tr *tracker.Tracker, name string) tracker.ReplicaInfo {
	t.Helper()
	for _, ri := range tr.Replicas() {
		if ri.Replica.Name == name {
			return ri
		}
	}
	t.Fatalf("%s does not know replica %s", tr.Self().Name, name)
	return tracker.ReplicaInfo{}
}

func knows(tr *tracker.Tracker, name string) bool {
	for _, ri := range tr.Replicas() {
		if ri.Replica.Name == name {
			return true
		}
	}
	return false
}

func TestReplicaLeftAndGoodbyeDropAtOnce(t *testing.T) {
	for _, how := range []string{"ReplicaLeft", "Goodbye"} {
		t.Run(how, func(t *testing.T) {
			a, b, c := mkTracker(t, "a", 1), mkTracker(t, "b", 1), mkTracker(t, "c", 1)
			r := newRouter(t, a, b, c)
			r.MeshUp()
			track(t, a, 1, "x", "alice")
			track(t, b, 1, "x", "")
			r.Step(time.Millisecond)
			r.settle("x", counts(1, 1, 2))

			switch how {
			case "ReplicaLeft":
				b.ReplicaLeft(a.Self())
				c.ReplicaLeft(a.Self())
			case "Goodbye":
				r.Send(a, a.Leave())
				r.Deliver() // no Tick: the goodbye alone hides a at once
				for _, tr := range []*tracker.Tracker{b, c} {
					require.Equal(t, counts(1, 0, 1), tr.Count("x"), "on %s", tr.Self().Name)
				}
				// membership confirms the leave: a is dropped
				b.ReplicaLeft(a.Self())
				c.ReplicaDown(a.Self()) // a failure after a goodbye is a leave too
			}
			for _, tr := range []*tracker.Tracker{b, c} {
				require.Equal(t, counts(1, 0, 1), tr.Count("x"), "on %s", tr.Self().Name)
				require.False(t, knows(tr, "a"))
				require.Equal(t, 1, tr.Stats().Dead)
			}

			// A late message from the gone replica changes nothing.
			late := &crdt.Delta{Owner: a.Self(), From: 1, To: 2, Ops: []crdt.Op{{Ref: 2, Entry: &crdt.Entry{Ref: 2, Topic: "x", Conn: 9}}}}
			ign := b.Stats().Ignored
			r.Send(a, []tracker.Outbound{{Target: tracker.ToOne, To: b.Self(), Msg: late}})
			r.Deliver()
			require.Equal(t, counts(1, 0, 1), b.Count("x"))
			require.Equal(t, ign+1, b.Stats().Ignored)
		})
	}
}

func TestGoodbyeFromAThirdPartyIsIgnored(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	c := mkTracker(t, "c", 1)
	r := newRouter(t, a, b, c)
	r.MeshUp()
	track(t, a, 1, "x", "")
	r.Step(time.Millisecond)
	// c cannot say goodbye on a's behalf.
	r.Send(c, []tracker.Outbound{{Target: tracker.ToOne, To: b.Self(), Msg: &crdt.Goodbye{Replica: a.Self()}}})
	r.Deliver()
	require.Equal(t, counts(1, 0, 1), b.Count("x"))
}

func TestNewEpochDropsOldIncarnation(t *testing.T) {
	t.Run("membership", func(t *testing.T) {
		a1, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
		r := newRouter(t, a1, b)
		r.MeshUp()
		track(t, a1, 1, "x", "alice")
		track(t, a1, 2, "x", "")
		r.Step(time.Millisecond)
		require.Equal(t, counts(1, 1, 2), b.Count("x"))

		// a crashes and restarts: b hears of the new epoch from membership
		// before any data, and drops the old presences at once.
		a2 := mkTracker(t, "a", 2)
		r.Put(a2)
		b.ReplicaUp(a2.Self()) // replies dropped: a2 is not listening yet
		require.Equal(t, tracker.Counts{}, b.Count("x"))
		require.Equal(t, a2.Self(), replicaInfo(t, b, "a").Replica)

		// A late delta of the old incarnation is ignored.
		late := &crdt.Delta{Owner: a1.Self(), From: 2, To: 3, Ops: []crdt.Op{{Ref: 3, Entry: &crdt.Entry{Ref: 3, Topic: "x", Conn: 3}}}}
		ign := b.Stats().Ignored
		require.Empty(t, b.Handle(a1.Self(), late))
		require.Equal(t, ign+1, b.Stats().Ignored)
		require.Equal(t, tracker.Counts{}, b.Count("x"))

		// The new incarnation's data shows as usual, and an old
		// incarnation's membership event does not bring it back.
		r.MeshUp()
		track(t, a2, 1, "x", "")
		r.Step(time.Millisecond)
		require.Equal(t, counts(1, 0, 1), b.Count("x"))
		b.ReplicaDown(a1.Self()) // about an incarnation that is not current: ignored
		require.Equal(t, counts(1, 0, 1), b.Count("x"))
		require.True(t, replicaInfo(t, b, "a").Up)
	})
	t.Run("data", func(t *testing.T) {
		a1, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
		r := newRouter(t, a1, b)
		r.MeshUp()
		track(t, a1, 1, "x", "")
		r.Step(time.Millisecond)
		require.Equal(t, counts(1, 0, 1), b.Count("x"))
		// Data of another epoch arrives before membership says anything:
		// it changes nothing (membership decides incarnations).
		a2 := mkTracker(t, "a", 2)
		r.Put(a2)
		track(t, a2, 1, "y", "")
		r.Send(a2, a2.Tick(r.Now().Add(time.Millisecond)))
		r.Deliver()
		require.Equal(t, counts(1, 0, 1), b.Count("x"))
		require.Equal(t, tracker.Counts{}, b.Count("y"))
		// Membership announces it: now it supersedes.
		r.Up(b, a2)
		require.Equal(t, tracker.Counts{}, b.Count("x"))
		require.Equal(t, counts(1, 0, 1), b.Count("y"))
	})
}

func TestPermdownAfterPeriod(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	period := b.Config().PermdownPeriod
	r := newRouter(t, a, b)
	r.MeshUp()
	track(t, a, 1, "x", "")
	r.Step(time.Millisecond)
	require.Equal(t, counts(1, 0, 1), b.Count("x"))

	b.ReplicaDown(a.Self())
	down := epochT0.Add(time.Second)
	b.Tick(down) // starts the permdown timer
	b.Tick(down.Add(period - time.Nanosecond))
	require.True(t, knows(b, "a"), "kept until the period is over")
	require.Equal(t, 1, replicaInfo(t, b, "a").Presences)
	require.Zero(t, b.Stats().Permdowns)

	b.Tick(down.Add(period))
	require.False(t, knows(b, "a"), "dropped when the period is over")
	st := b.Stats()
	require.Equal(t, uint64(1), st.Permdowns)
	require.Equal(t, 1, st.Dead)
	require.Equal(t, 0, st.Replicas)
	require.Equal(t, tracker.Counts{}, b.Count("x"))

	// Late data from the dropped incarnation is ignored...
	late := &crdt.Delta{Owner: a.Self(), From: 1, To: 2, Ops: []crdt.Op{{Ref: 2, Entry: &crdt.Entry{Ref: 2, Topic: "x", Conn: 2}}}}
	b.Handle(a.Self(), late)
	require.False(t, knows(b, "a"))
	require.Equal(t, tracker.Counts{}, b.Count("x"))

	// ...until membership sees it alive again (a partition that outlasted
	// the period heals): it is revived and its data fetched again.
	r.SetNow(down.Add(period))
	r.Up(b, a)
	r.settle("x", counts(1, 0, 1))
}

func TestDownReplicaComingBackBeforePermdownIsNotDropped(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	period := b.Config().PermdownPeriod
	r := newRouter(t, a, b)
	r.MeshUp()
	track(t, a, 1, "x", "")
	r.Step(time.Millisecond)
	b.ReplicaDown(a.Self())
	b.Tick(epochT0.Add(time.Second))
	r.SetNow(epochT0.Add(time.Second + period/2))
	r.Up(b, a)
	b.Tick(epochT0.Add(time.Second + 2*period))
	require.Equal(t, counts(1, 0, 1), b.Count("x"))
	require.Zero(t, b.Stats().Permdowns)

	// A second down restarts the timer from its own start.
	b.ReplicaDown(a.Self())
	t2 := epochT0.Add(time.Second + 3*period)
	b.Tick(t2)
	b.Tick(t2.Add(period - time.Nanosecond))
	require.True(t, knows(b, "a"))
	b.Tick(t2.Add(period))
	require.False(t, knows(b, "a"))
}

// TestPhoenix179DeadIncarnationsForgotten: many restarts of many names must
// not grow the remembered replicas without bound; dead incarnations are
// forgotten after DeadRetention.
func TestPhoenix179DeadIncarnationsForgotten(t *testing.T) {
	b := mkTracker(t, "b", 1)
	retention := b.Config().DeadRetention
	now := epochT0
	const names, restarts = 50, 20
	for e := uint64(1); e <= restarts; e++ {
		for n := range names {
			r := crdt.Replica{Name: fmt.Sprintf("n%d", n), Epoch: e}
			b.ReplicaUp(r) // a new epoch drops the previous one at once
			d := &crdt.Delta{Owner: r, From: 0, To: 1, Ops: []crdt.Op{{Ref: 1, Entry: &crdt.Entry{Ref: 1, Topic: "x", Conn: 1}}}}
			b.Handle(r, d)
		}
		now = now.Add(time.Second)
		b.Tick(now)
		st := b.Stats()
		require.LessOrEqual(t, st.Replicas, names, "restart %d", e)
		require.LessOrEqual(t, st.Dead, names, "restart %d", e)
		require.Equal(t, counts(names, 0, names), b.Count("x"), "only the newest incarnations count")
	}
	// Every name leaves for good; after DeadRetention nothing is left.
	for n := range names {
		b.ReplicaLeft(crdt.Replica{Name: fmt.Sprintf("n%d", n), Epoch: restarts})
	}
	b.Tick(now.Add(time.Second))
	require.Equal(t, names, b.Stats().Dead)
	require.Equal(t, 0, b.Stats().Replicas)
	b.Tick(now.Add(time.Second + retention))
	st := b.Stats()
	require.Equal(t, 0, st.Dead, "dead incarnations forgotten after DeadRetention")
	require.Equal(t, 0, st.Replicas)
	require.Equal(t, tracker.Counts{}, b.Count("x"))
	require.Len(t, b.Replicas(), 1, "only b itself")
}

func TestPermdownedReplicasForgottenAfterRetention(t *testing.T) {
	b := mkTracker(t, "b", 1)
	cfg := b.Config()
	now := epochT0
	for n := range 100 {
		r := crdt.Replica{Name: fmt.Sprintf("n%d", n), Epoch: 1}
		b.ReplicaUp(r)
		b.ReplicaDown(r)
	}
	b.Tick(now)
	require.Equal(t, 100, b.Stats().Down)
	now = now.Add(cfg.PermdownPeriod)
	b.Tick(now)
	st := b.Stats()
	require.Equal(t, uint64(100), st.Permdowns)
	require.Equal(t, 0, st.Replicas)
	require.Equal(t, 100, st.Dead)
	b.Tick(now.Add(cfg.DeadRetention))
	require.Equal(t, 0, b.Stats().Dead)
}

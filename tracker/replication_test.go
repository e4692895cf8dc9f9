package tracker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// Replication: deltas on Tick, batching, gap repair by digests and requests, bad input.

func TestDeltasFlowOnTick(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	r.Step(time.Millisecond) // first digests out of the way

	// Pending signals the driver, but nothing is sent before Tick.
	select {
	case <-a.Pending():
		t.Fatal("Pending signalled with nothing pending")
	default:
	}
	track(t, a, 1, "x", "alice")
	track(t, a, 2, "x", "")
	select {
	case <-a.Pending():
	default:
		t.Fatal("Pending not signalled after Track")
	}
	require.Equal(t, tracker.Counts{}, b.Count("x"), "nothing before Tick")

	outs := a.Tick(r.Now().Add(time.Millisecond))
	require.Len(t, outs, 1, "one batch, no digest yet")
	require.Equal(t, tracker.ToAll, outs[0].Target)
	d, ok := outs[0].Msg.(*crdt.Delta)
	require.True(t, ok)
	require.Len(t, d.Ops, 2)
	r.Send(a, outs)
	r.Deliver()
	require.Equal(t, counts(1, 1, 2), b.Count("x"))

	ref, err := a.Update(1, "x", []byte("hi"))
	require.NoError(t, err)
	r.Step(time.Millisecond)
	var got []tracker.Presence
	for _, p := range b.List("x") {
		if p.User == "alice" {
			got = append(got, p)
		}
	}
	require.Len(t, got, 1)
	require.Equal(t, ref, got[0].Ref)
	require.Equal(t, []byte("hi"), got[0].Meta)

	require.NoError(t, a.Untrack(2, "x"))
	require.Equal(t, 1, a.UntrackOwner(1))
	r.Step(time.Millisecond)
	require.Equal(t, tracker.Counts{}, b.Count("x"))
	require.Equal(t, 0, b.Stats().Presences)
	require.GreaterOrEqual(t, a.Stats().DeltasSent, uint64(3))
	require.GreaterOrEqual(t, b.Stats().DeltasApplied, uint64(3))

	// A quiet Tick sends no delta.
	for _, o := range a.Tick(r.Now().Add(time.Millisecond)) {
		_, isDelta := o.Msg.(*crdt.Delta)
		require.False(t, isDelta)
	}
}

func TestMaxDeltaOpsSplitsBatches(t *testing.T) {
	a := mkTracker(t, "a", 1, func(c *tracker.Config) { c.MaxDeltaOps = 10 })
	b := mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	for i := range 95 {
		track(t, a, tracker.Owner(i), "x", "")
	}
	outs := a.Tick(epochT0.Add(time.Millisecond))
	deltas := 0
	for _, o := range outs {
		if d, ok := o.Msg.(*crdt.Delta); ok {
			deltas++
			require.LessOrEqual(t, len(d.Ops), 10)
		}
	}
	require.Equal(t, 10, deltas)
	r.Send(a, outs)
	r.Deliver()
	require.Equal(t, counts(95, 0, 95), b.Count("x"))
}

func TestDigestRepairsGapFromThirdNode(t *testing.T) {
	a, b, c := mkTracker(t, "a", 1), mkTracker(t, "b", 1), mkTracker(t, "c", 1)
	r := newRouter(t, a, b, c)
	r.MeshUp()
	r.Step(time.Millisecond)
	// Nothing from a reaches c, but membership still sees a alive.
	r.Cut("a", "c", true)
	for i := range 20 {
		track(t, a, tracker.Owner(i), "x", fmt.Sprintf("u%d", i%7))
	}
	r.Step(time.Millisecond)
	require.Equal(t, counts(0, 7, 20), b.Count("x"))
	require.Equal(t, tracker.Counts{}, c.Count("x"))

	// b's digests tell c what it lacks; c asks b, which relays a's data.
	r.settle("x", counts(0, 7, 20))
	require.Positive(t, c.Stats().Requests)
	require.Positive(t, c.Stats().DeltasApplied+c.Stats().SnapshotsApplied)

	// Removals are repaired the same way.
	require.Equal(t, 1, a.UntrackOwner(0))
	r.Step(time.Millisecond)
	r.settle("x", counts(0, 7, 19))
}

func TestGapInDeltasIsRepaired(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	r.Step(time.Millisecond)
	track(t, a, 1, "x", "")
	r.Cut("a", "b", true)
	r.Step(time.Millisecond) // this delta is lost
	r.Cut("a", "b", false)
	track(t, a, 2, "x", "")
	r.Step(time.Millisecond) // this one arrives ahead of a gap
	require.Equal(t, counts(2, 0, 2), b.Count("x"), "the gap was asked for and filled at once")
	require.Positive(t, b.Stats().Gaps)
	require.Positive(t, b.Stats().Requests)
}

func TestDuplicatedAndReorderedDeltas(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	r.Step(time.Millisecond)
	delta := func(now time.Time) crdt.Message {
		for _, o := range a.Tick(now) {
			if d, ok := o.Msg.(*crdt.Delta); ok {
				return d
			}
		}
		t.Fatal("no delta")
		return nil
	}
	track(t, a, 1, "x", "")
	track(t, a, 2, "x", "alice")
	d1 := delta(r.Now().Add(time.Millisecond))
	require.NoError(t, a.Untrack(1, "x"))
	track(t, a, 3, "x", "bob")
	d2 := delta(r.Now().Add(2 * time.Millisecond))
	wire := func(m crdt.Message) crdt.Message {
		buf, err := crdt.Marshal(a.Self(), m)
		require.NoError(t, err)
		_, out, err := crdt.Unmarshal(buf)
		require.NoError(t, err)
		return out
	}

	// The second delta first: kept aside, not applied as deletes.
	outs := b.Handle(a.Self(), wire(d2))
	require.Len(t, outs, 1, "the gap is asked for")
	req, ok := outs[0].Msg.(*crdt.Request)
	require.True(t, ok)
	require.Equal(t, crdt.Request{Owner: a.Self(), Since: 0}, *req)
	require.Equal(t, tracker.Counts{}, b.Count("x"))
	require.Equal(t, uint64(1), b.Stats().Gaps)

	// The first one fills the gap and the kept delta follows.
	b.Handle(a.Self(), wire(d1))
	require.Equal(t, counts(0, 2, 2), b.Count("x"))

	// Duplicates change nothing.
	b.Handle(a.Self(), wire(d1))
	b.Handle(a.Self(), wire(d2))
	require.Equal(t, counts(0, 2, 2), b.Count("x"))
	require.Equal(t, uint64(2), b.Stats().Stale)
	require.Zero(t, b.Stats().Invalid)
}

func TestMalformedMessagesCountedAndIgnored(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	track(t, a, 1, "x", "alice")
	track(t, a, 2, "x", "")
	r.Step(time.Millisecond)
	want := counts(1, 1, 2)
	require.Equal(t, want, b.Count("x"))
	ra := a.Self()
	add := func(ref crdt.Seq) crdt.Op {
		return crdt.Op{Ref: ref, Entry: &crdt.Entry{Ref: ref, Topic: "x", Conn: 100 + ref}}
	}
	cases := []struct {
		name string
		msg  crdt.Message
	}{
		{"delta range backwards", &crdt.Delta{Owner: ra, From: 5, To: 3}},
		{"delta add before range", &crdt.Delta{Owner: ra, From: 2, To: 4, Ops: []crdt.Op{add(2)}}},
		{"delta add after range", &crdt.Delta{Owner: ra, From: 2, To: 4, Ops: []crdt.Op{add(5)}}},
		{"delta remove not before end", &crdt.Delta{Owner: ra, From: 2, To: 4, Ops: []crdt.Op{add(3), {Ref: 4}}}},
		{"snapshot entry after its seq", &crdt.Snapshot{Owner: ra, Seq: 3, Entries: []*crdt.Entry{{Ref: 1, Topic: "x"}, {Ref: 4, Topic: "x"}}}},
		{"snapshot entry ref 0", &crdt.Snapshot{Owner: ra, Seq: 3, Entries: []*crdt.Entry{{Ref: 0, Topic: "x"}}}},
		{"snapshot duplicate ref", &crdt.Snapshot{Owner: ra, Seq: 3, Entries: []*crdt.Entry{{Ref: 3, Topic: "x"}, {Ref: 3, Topic: "y"}}}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r.Send(a, []tracker.Outbound{{Target: tracker.ToOne, To: b.Self(), Msg: c.msg}})
			r.Deliver()
			st := b.Stats()
			require.Equal(t, uint64(i+1), st.Invalid)
			require.Equal(t, want, b.Count("x"))
			require.Equal(t, tracker.Counts{}, b.Count("y"))
			require.Equal(t, 2, replicaInfo(t, b, "a").Presences)
			require.Equal(t, a.Self(), replicaInfo(t, b, "a").Replica)
		})
	}
	// An op whose ref differs from its entry's cannot be encoded; it is
	// refused when handed over in memory.
	mismatch := &crdt.Delta{Owner: ra, From: 2, To: 4, Ops: []crdt.Op{{Ref: 3, Entry: &crdt.Entry{Ref: 4, Topic: "x"}}}}
	require.Empty(t, b.Handle(ra, mismatch))
	require.Equal(t, uint64(len(cases)+1), b.Stats().Invalid)
	require.Equal(t, want, b.Count("x"))

	// The stream goes on as if nothing happened.
	track(t, a, 3, "x", "")
	r.Step(time.Millisecond)
	require.Equal(t, counts(2, 1, 3), b.Count("x"))
}

// TestDuplicateAddRefInDeltaIsInvalid pins a bug: crdt's checkDelta does not
// reject a delta that adds the same ref twice (ErrInvalid's doc lists
// duplicate refs, and ApplySnapshot does check them). Both entries join the
// tracker's counters while the partition keeps only the second, so the
// first becomes a ghost that no remove or drop ever takes out of Count.
func TestDuplicateAddRefInDeltaIsInvalid(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	ra := a.Self()
	bad := &crdt.Delta{Owner: ra, From: 0, To: 1, Ops: []crdt.Op{
		{Ref: 1, Entry: &crdt.Entry{Ref: 1, Topic: "x", Conn: 1}},
		{Ref: 1, Entry: &crdt.Entry{Ref: 1, Topic: "x", Conn: 2}},
	}}
	r.Send(a, []tracker.Outbound{{Target: tracker.ToOne, To: b.Self(), Msg: bad}})
	r.Deliver()
	assert.Equal(t, uint64(1), b.Stats().Invalid, "a delta adding one ref twice is malformed")
	assert.Equal(t, tracker.Counts{}, b.Count("x"), "and changes nothing")
	// Whatever happened, dropping a must leave no ghost behind.
	b.ReplicaLeft(ra)
	assert.Equal(t, tracker.Counts{}, b.Count("x"), "ghost presence after its replica left")
	assert.Equal(t, 0, b.Stats().Presences, "ghost presence after its replica left")
}

// TestReplicaDownOfSelfIsIgnored pins a bug: ReplicaDown lacks the
// self-name guard that ReplicaUp and ReplicaLeft have. A membership layer
// reporting this node down makes it count itself as a remote down replica
// (Stats.Replicas and Down), report itself as not Up in Replicas, and
// "permdown" itself after PermdownPeriod.
func TestReplicaDownOfSelfIsIgnored(t *testing.T) {
	a := mkTracker(t, "a", 1)
	track(t, a, 1, "x", "")
	a.ReplicaDown(a.Self())
	require.Equal(t, counts(1, 0, 1), a.Count("x"))
	st := a.Stats()
	assert.Equal(t, 0, st.Replicas, "Stats.Replicas counts remote replicas only")
	assert.Equal(t, 0, st.Down)
	self := replicaInfo(t, a, "a")
	assert.True(t, self.Self)
	assert.True(t, self.Up, "this node is always up in its own view")

	a.Tick(epochT0)
	a.Tick(epochT0.Add(a.Config().PermdownPeriod))
	require.Equal(t, counts(1, 0, 1), a.Count("x"))
	st = a.Stats()
	assert.Zero(t, st.Permdowns, "a node never permdowns itself")
	assert.Zero(t, st.Dead, "nor remembers itself as dead")
}

func TestHandleFromSelfIgnored(t *testing.T) {
	a := mkTracker(t, "a", 1)
	other := crdt.Replica{Name: "a", Epoch: 0} // our own name, another epoch
	d := &crdt.Delta{Owner: other, From: 0, To: 1, Ops: []crdt.Op{{Ref: 1, Entry: &crdt.Entry{Ref: 1, Topic: "x"}}}}
	require.Empty(t, a.Handle(other, d))
	require.Equal(t, uint64(1), a.Stats().Ignored)
	require.Equal(t, tracker.Counts{}, a.Count("x"))
}

func TestRequestAnsweredForAnyOwner(t *testing.T) {
	a, b, c := mkTracker(t, "a", 1), mkTracker(t, "b", 1), mkTracker(t, "c", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	track(t, a, 1, "x", "")
	r.Step(time.Millisecond)
	// b answers a request for a's chain (relay), from its own copy.
	outs := b.Handle(c.Self(), &crdt.Request{Owner: a.Self(), Since: 0})
	require.NotEmpty(t, outs)
	for _, o := range outs {
		require.Equal(t, tracker.ToOne, o.Target)
		require.Equal(t, c.Self(), o.To)
	}
	// Nothing newer: no answer.
	require.Empty(t, b.Handle(c.Self(), &crdt.Request{Owner: a.Self(), Since: 1}))
}

// TestNoSnapshotRequestWhileDataFlows pins the fix of the snapshot storm in a 100k burst
// (issue 15): a small delta sent by datagram overtook the big ones still queued on the stream,
// or a digest counted what the owner had flushed but not yet delivered, and the receiver asked at
// once; by the time the owner answered, its log no longer reached back, so each such request
// drew a snapshot of the whole partition that the in-flight deltas made stale on arrival. Now a
// request that would draw a snapshot (more than LogMaxOps/2 behind) waits while the owner's data
// keeps advancing the receiver's sequence, and goes out once it has stopped for RequestRetry/2
// (LocalConfig: 150 ms). A small gap is still asked for at once.
func TestNoSnapshotRequestWhileDataFlows(t *testing.T) {
	logOps := func(c *tracker.Config) { c.LogMaxOps = 4 } // half: 2 ops
	a, b, c := mkTracker(t, "a", 1, logOps), mkTracker(t, "b", 1, logOps), mkTracker(t, "c", 1, logOps)
	r := newRouter(t, a, b, c)
	r.MeshUp()
	r.Step(400 * time.Millisecond) // past the start's catch-up requests and their RequestRetry
	now := r.Now()
	owner := tracker.Owner(0)
	next := func(tracks int) crdt.Message { // a's next delta, through the wire codec
		t.Helper()
		for range tracks {
			owner++
			track(t, a, owner, "x", "")
		}
		now = now.Add(time.Millisecond)
		for _, o := range a.Tick(now) {
			if d, ok := o.Msg.(*crdt.Delta); ok {
				buf, err := crdt.Marshal(a.Self(), d)
				require.NoError(t, err)
				_, m, err := crdt.Unmarshal(buf)
				require.NoError(t, err)
				return m
			}
		}
		t.Fatal("no delta")
		return nil
	}
	copyOf := func(m crdt.Message) crdt.Message { // Handle takes ownership: one copy each
		buf, err := crdt.Marshal(a.Self(), m)
		require.NoError(t, err)
		_, out, err := crdt.Unmarshal(buf)
		require.NoError(t, err)
		return out
	}
	requests := func(outs []tracker.Outbound) (n int, since crdt.Seq) {
		for _, o := range outs {
			if q, ok := o.Msg.(*crdt.Request); ok {
				n, since = n+1, q.Since
			}
		}
		return n, since
	}
	digest := func(seq crdt.Seq) crdt.Message {
		return &crdt.Digest{Items: []crdt.DigestItem{{Owner: a.Self(), Seq: seq}}}
	}
	d1, d2, d3, d47 := next(1), next(1), next(1), next(4) // (0,1], (1,2], (2,3], (3,7]
	b.Tick(now)
	c.Tick(now)
	b.Handle(a.Self(), copyOf(d1)) // a's data is flowing to both
	c.Handle(a.Self(), copyOf(d1))
	reqB := b.Stats().Requests

	// A small gap is asked for at once: a lost datagram, which the log can answer.
	n, since := requests(c.Handle(a.Self(), copyOf(d3)))
	require.Equal(t, 1, n, "a gap of 2 ops is asked for at once")
	require.Equal(t, crdt.Seq(1), since)

	// A big one while data flows is not: d47 overtook d2 and d3, which are in flight.
	n, _ = requests(b.Handle(a.Self(), copyOf(d47)))
	require.Zero(t, n, "a gap that only a snapshot could fill waits while data flows")
	require.Equal(t, uint64(1), b.Stats().Gaps)
	n, _ = requests(b.Handle(a.Self(), digest(7)))
	require.Zero(t, n, "and so does a digest")
	b.Handle(a.Self(), copyOf(d2))
	b.Handle(a.Self(), copyOf(d3))
	require.Equal(t, counts(7, 0, 7), b.Count("x"), "the kept delta followed")
	require.Equal(t, reqB, b.Stats().Requests, "nothing was asked")

	// (7,12] is lost for good and nothing follows it: only digests reveal it. While d3's
	// arrival is recent, they ask nothing...
	next(5)
	b.Tick(now.Add(100 * time.Millisecond))
	n, _ = requests(b.Handle(a.Self(), digest(12)))
	require.Zero(t, n)
	// ... once the data has stopped for RequestRetry/2, a digest asks.
	b.Tick(now.Add(160 * time.Millisecond))
	n, since = requests(b.Handle(a.Self(), digest(12)))
	require.Equal(t, 1, n, "a digest after the flow stopped asks")
	require.Equal(t, crdt.Seq(7), since)

	// That request is lost too; past RequestRetry, a later delta's gap asks at once.
	d13 := next(1)
	b.Tick(now.Add(500 * time.Millisecond))
	n, since = requests(b.Handle(a.Self(), copyOf(d13)))
	require.Equal(t, 1, n, "a gap after the flow stopped asks")
	require.Equal(t, crdt.Seq(7), since)
}

package tracker_test

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/internal/testlog"
	"github.com/headcount-io/headcount/tracker"
)

// epochT0 is the fake wall clock every test starts from.
var epochT0 = time.Unix(1_700_000_000, 0)

// mkTracker returns a tracker named name with the given epoch and
// LocalConfig settings, changed by mods.
func mkTracker(t testing.TB, name string, epoch uint64, mods ...func(*tracker.Config)) *tracker.Tracker {
	t.Helper()
	cfg := tracker.LocalConfig()
	cfg.Name = name
	cfg.Epoch = epoch
	cfg.Logger = testlog.New(t, slog.LevelDebug)
	for _, m := range mods {
		m(&cfg)
	}
	tr, err := tracker.New(cfg)
	require.NoError(t, err)
	return tr
}

// tinyRouter links trackers in memory. Every message goes through
// crdt.Marshal and crdt.Unmarshal, as on a real wire, and is delivered in
// FIFO order. Links can be cut one way. ToAll and ToSome go to every other
// registered node.
type tinyRouter struct {
	t     *testing.T
	nodes map[string]*tracker.Tracker
	cut   map[[2]string]bool // from name -> to name
	queue []envelope
	now   time.Time
	sent  map[string]int // messages enqueued, by Go type
}

type envelope struct {
	from crdt.Replica
	to   crdt.Replica // zero Epoch: the current incarnation of to.Name
	data []byte
}

func newRouter(t *testing.T, trs ...*tracker.Tracker) *tinyRouter {
	r := &tinyRouter{t: t, nodes: map[string]*tracker.Tracker{}, cut: map[[2]string]bool{}, now: epochT0, sent: map[string]int{}}
	for _, tr := range trs {
		r.nodes[tr.Self().Name] = tr
	}
	return r
}

func (r *tinyRouter) names() []string {
	out := make([]string, 0, len(r.nodes))
	for n := range r.nodes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// send encodes outs, sent by from, and queues them.
func (r *tinyRouter) send(from *tracker.Tracker, outs []tracker.Outbound) {
	r.t.Helper()
	for _, o := range outs {
		b, err := crdt.Marshal(from.Self(), o.Msg)
		require.NoError(r.t, err)
		r.sent[fmt.Sprintf("%T", o.Msg)]++
		switch o.Target {
		case tracker.ToAll, tracker.ToSome:
			for _, n := range r.names() {
				if n != from.Self().Name {
					r.queue = append(r.queue, envelope{from: from.Self(), to: crdt.Replica{Name: n}, data: b})
				}
			}
		case tracker.ToOne:
			r.queue = append(r.queue, envelope{from: from.Self(), to: o.To, data: b})
		default:
			r.t.Fatalf("unknown target %d", o.Target)
		}
	}
}

// deliver hands every queued message (and every reply) to its receiver.
func (r *tinyRouter) deliver() {
	r.t.Helper()
	for n := 0; len(r.queue) > 0; n++ {
		require.Less(r.t, n, 1_000_000, "messages never stop")
		env := r.queue[0]
		r.queue = r.queue[1:]
		dst := r.nodes[env.to.Name]
		if dst == nil || r.cut[[2]string{env.from.Name, env.to.Name}] {
			continue
		}
		if env.to.Epoch != 0 && dst.Self() != env.to {
			continue // addressed to an incarnation that is gone
		}
		from, m, err := crdt.Unmarshal(env.data)
		require.NoError(r.t, err)
		require.Equal(r.t, env.from, from)
		// A node never sends a peer that peer's own entries.
		switch m := m.(type) {
		case *crdt.Delta:
			require.NotEqual(r.t, dst.Self(), m.Owner, "%s sent %s its own delta", from, dst.Self())
		case *crdt.Snapshot:
			require.NotEqual(r.t, dst.Self(), m.Owner, "%s sent %s its own snapshot", from, dst.Self())
		}
		r.send(dst, dst.Handle(from, m))
	}
}

// up tells a that b is alive and delivers the consequences.
func (r *tinyRouter) up(a, b *tracker.Tracker) {
	r.t.Helper()
	r.send(a, a.ReplicaUp(b.Self()))
	r.deliver()
}

// meshUp tells every node that every other node is alive.
func (r *tinyRouter) meshUp() {
	r.t.Helper()
	for _, a := range r.names() {
		for _, b := range r.names() {
			if a != b {
				r.up(r.nodes[a], r.nodes[b])
			}
		}
	}
}

// tick advances the fake clock by d, ticks every node and delivers.
func (r *tinyRouter) tick(d time.Duration) {
	r.t.Helper()
	r.now = r.now.Add(d)
	for _, n := range r.names() {
		r.send(r.nodes[n], r.nodes[n].Tick(r.now))
	}
	r.deliver()
}

// settle ticks until every node sees want in topic, within a bound of
// fake time; it fails the test otherwise.
func (r *tinyRouter) settle(topic string, want tracker.Counts) {
	r.t.Helper()
	for i := 0; i < 200; i++ {
		ok := true
		for _, n := range r.nodes {
			if n.Count(topic) != want {
				ok = false
			}
		}
		if ok {
			return
		}
		r.tick(50 * time.Millisecond)
	}
	for _, n := range r.names() {
		require.Equal(r.t, want, r.nodes[n].Count(topic), "node %s, topic %s", n, topic)
	}
}

func track(t testing.TB, tr *tracker.Tracker, o tracker.Owner, topic, user string) tracker.Ref {
	t.Helper()
	ref, err := tr.Track(o, topic, user, nil)
	require.NoError(t, err)
	return ref
}

func counts(viewers, users, conns int) tracker.Counts {
	return tracker.Counts{Viewers: viewers, Users: users, Connections: conns}
}

// woken reports whether the subscription's channel holds a wake-up,
// consuming it.
func woken(s *tracker.Subscription) bool {
	select {
	case <-s.C():
		return true
	default:
		return false
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// ---- local API ----

func TestTrackErrors(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	cfg := tr.Config()
	track(t, tr, 1, "room", "alice")
	cases := []struct {
		name string
		do   func() error
		want error
	}{
		{"empty topic", func() error { _, err := tr.Track(2, "", "", nil); return err }, tracker.ErrInvalidTopic},
		{"topic too long", func() error {
			_, err := tr.Track(2, strings.Repeat("t", cfg.MaxTopicLen+1), "", nil)
			return err
		}, tracker.ErrInvalidTopic},
		{"user too long", func() error {
			_, err := tr.Track(2, "room", strings.Repeat("u", cfg.MaxUserLen+1), nil)
			return err
		}, tracker.ErrInvalidUser},
		{"meta too large", func() error {
			_, err := tr.Track(2, "room", "", make([]byte, cfg.MaxMetaLen+1))
			return err
		}, tracker.ErrMetaTooLarge},
		{"already tracked", func() error { _, err := tr.Track(1, "room", "bob", nil); return err }, tracker.ErrAlreadyTracked},
		{"update unknown owner", func() error { _, err := tr.Update(9, "room", nil); return err }, tracker.ErrNoPresence},
		{"update other topic", func() error { _, err := tr.Update(1, "hall", nil); return err }, tracker.ErrNoPresence},
		{"update meta too large", func() error {
			_, err := tr.Update(1, "room", make([]byte, cfg.MaxMetaLen+1))
			return err
		}, tracker.ErrMetaTooLarge},
		{"untrack unknown owner", func() error { return tr.Untrack(9, "room") }, tracker.ErrNoPresence},
		{"untrack other topic", func() error { return tr.Untrack(1, "hall") }, tracker.ErrNoPresence},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.do()
			require.ErrorIs(t, err, c.want)
			require.True(t, strings.HasPrefix(err.Error(), "tracker: "), "error %q lacks the package prefix", err)
			// A refused call changes nothing.
			require.Equal(t, counts(0, 1, 1), tr.Count("room"))
			require.Equal(t, tracker.Counts{}, tr.Count("hall"))
			require.Equal(t, 1, tr.Stats().Presences)
		})
	}
	// The limits themselves are accepted.
	_, err := tr.Track(3, strings.Repeat("t", cfg.MaxTopicLen), strings.Repeat("u", cfg.MaxUserLen), make([]byte, cfg.MaxMetaLen))
	require.NoError(t, err)
}

func TestErrClosedAfterLeave(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	track(t, tr, 1, "room", "")
	track(t, tr, 2, "room", "")
	outs := tr.Leave()
	require.Len(t, outs, 1)
	require.Equal(t, tracker.ToAll, outs[0].Target)
	require.Equal(t, &crdt.Goodbye{Replica: tr.Self()}, outs[0].Msg)

	_, err := tr.Track(3, "room", "", nil)
	require.ErrorIs(t, err, tracker.ErrClosed)
	_, err = tr.Update(1, "room", []byte("x"))
	require.ErrorIs(t, err, tracker.ErrClosed)
	require.True(t, errors.Is(err, tracker.ErrClosed))

	// Reads still work, and local removals keep the local view right.
	require.Equal(t, counts(2, 0, 2), tr.Count("room"))
	require.NoError(t, tr.Untrack(1, "room"))
	require.Equal(t, 1, tr.UntrackOwner(2))
	require.Equal(t, tracker.Counts{}, tr.Count("room"))

	// After the goodbye nothing more is sent: no deltas, no digests.
	require.Empty(t, tr.Tick(epochT0))
	require.Empty(t, tr.Tick(epochT0.Add(time.Hour)))
}

func TestTrackUpdateUntrack(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	r1 := track(t, tr, 1, "room", "alice")
	r2 := track(t, tr, 1, "hall", "alice") // same owner, another topic
	r3 := track(t, tr, 2, "room", "")      // another owner, same topic
	require.NotZero(t, r1)
	require.Greater(t, r2, r1)
	require.Greater(t, r3, r2)
	require.Equal(t, counts(1, 1, 2), tr.Count("room"))
	require.Equal(t, counts(0, 1, 1), tr.Count("hall"))

	// Update mints a new ref, keeps the user and the counts, replaces meta.
	r4, err := tr.Update(1, "room", []byte(`{"typing":true}`))
	require.NoError(t, err)
	require.Greater(t, r4, r3)
	require.Equal(t, counts(1, 1, 2), tr.Count("room"))
	var mine []tracker.Presence
	for _, p := range tr.List("room") {
		if p.Owner == 1 {
			mine = append(mine, p)
		}
	}
	require.Len(t, mine, 1)
	require.Equal(t, r4, mine[0].Ref)
	require.Equal(t, "alice", mine[0].User)
	require.Equal(t, []byte(`{"typing":true}`), mine[0].Meta)

	// Untrack removes one presence; the owner's others stay.
	require.NoError(t, tr.Untrack(1, "room"))
	require.Equal(t, counts(1, 0, 1), tr.Count("room"))
	require.Equal(t, counts(0, 1, 1), tr.Count("hall"))
	require.ErrorIs(t, tr.Untrack(1, "room"), tracker.ErrNoPresence)

	// Tracking again after an untrack is allowed and mints a new ref.
	r5 := track(t, tr, 1, "room", "alice")
	require.Greater(t, r5, r4)

	// UntrackOwner removes all of an owner's presences, once.
	require.Equal(t, 2, tr.UntrackOwner(1))
	require.Equal(t, 0, tr.UntrackOwner(1))
	require.Equal(t, 0, tr.UntrackOwner(42))
	require.Equal(t, counts(1, 0, 1), tr.Count("room"))
	require.Equal(t, tracker.Counts{}, tr.Count("hall"))
	require.Equal(t, []string{"room"}, tr.Topics())
	st := tr.Stats()
	require.Equal(t, 1, st.Presences)
	require.Equal(t, 1, st.Topics)
}

func TestCount(t *testing.T) {
	type pres struct {
		owner tracker.Owner
		topic string
		user  string
	}
	cases := []struct {
		name   string
		tracks []pres
		remove []pres // untracked afterwards
		topic  string
		want   tracker.Counts
	}{
		{name: "unknown topic", topic: "x", want: tracker.Counts{}},
		{name: "anonymous count per connection", tracks: []pres{{1, "x", ""}, {2, "x", ""}, {3, "x", ""}}, topic: "x", want: counts(3, 0, 3)},
		{name: "distinct users", tracks: []pres{{1, "x", "alice"}, {2, "x", "bob"}}, topic: "x", want: counts(0, 2, 2)},
		{name: "two tabs of one user count once", tracks: []pres{{1, "x", "alice"}, {2, "x", "alice"}, {3, "x", ""}}, topic: "x", want: counts(1, 1, 3)},
		{name: "closing one tab keeps the user", tracks: []pres{{1, "x", "alice"}, {2, "x", "alice"}}, remove: []pres{{1, "x", ""}}, topic: "x", want: counts(0, 1, 1)},
		{name: "closing both tabs drops the user", tracks: []pres{{1, "x", "alice"}, {2, "x", "alice"}, {3, "x", "bob"}}, remove: []pres{{1, "x", ""}, {2, "x", ""}}, topic: "x", want: counts(0, 1, 1)},
		{name: "other topics do not leak", tracks: []pres{{1, "x", "alice"}, {1, "y", ""}, {2, "y", "alice"}}, topic: "x", want: counts(0, 1, 1)},
		{name: "topics are case sensitive", tracks: []pres{{1, "X", ""}}, topic: "x", want: tracker.Counts{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := mkTracker(t, "a", 1)
			for _, p := range c.tracks {
				track(t, tr, p.owner, p.topic, p.user)
			}
			for _, p := range c.remove {
				require.NoError(t, tr.Untrack(p.owner, p.topic))
			}
			require.Equal(t, c.want, tr.Count(c.topic))
			require.Len(t, tr.List(c.topic), c.want.Connections)
		})
	}
}

func TestCountAcrossTrackers(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.meshUp()
	track(t, a, 1, "video:1", "alice")
	track(t, b, 1, "video:1", "alice") // alice's second tab, on another node
	track(t, a, 2, "video:1", "")
	track(t, b, 2, "video:1", "")
	track(t, b, 3, "video:1", "bob")
	r.tick(time.Millisecond)
	require.Equal(t, counts(2, 2, 5), a.Count("video:1"))
	require.Equal(t, counts(2, 2, 5), b.Count("video:1"))

	// alice closes her tab on b: she is still there on a.
	require.Equal(t, 1, b.UntrackOwner(1))
	r.tick(time.Millisecond)
	require.Equal(t, counts(2, 2, 4), a.Count("video:1"))
	require.Equal(t, counts(2, 2, 4), b.Count("video:1"))
	require.NoError(t, a.Untrack(1, "video:1"))
	r.tick(time.Millisecond)
	require.Equal(t, counts(2, 1, 3), a.Count("video:1"))
	require.Equal(t, counts(2, 1, 3), b.Count("video:1"))
}

func TestList(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 7)
	r := newRouter(t, a, b)
	r.meshUp()
	ra := track(t, a, 10, "room", "alice")
	rb, err := b.Track(20, "room", "", []byte("m"))
	require.NoError(t, err)
	track(t, b, 21, "elsewhere", "")
	r.tick(time.Millisecond)

	want := []tracker.Presence{
		{Node: a.Self(), Owner: 10, Topic: "room", User: "alice", Ref: ra},
		{Node: b.Self(), Owner: 20, Topic: "room", Meta: []byte("m"), Ref: rb},
	}
	for _, tr := range []*tracker.Tracker{a, b} {
		got := tr.List("room")
		slices.SortFunc(got, func(x, y tracker.Presence) int { return strings.Compare(x.Node.Name, y.Node.Name) })
		require.Len(t, got, 2)
		for i := range got {
			if len(got[i].Meta) == 0 {
				got[i].Meta = nil
			}
		}
		require.Equal(t, want, got, "on %s", tr.Self().Name)
	}
	require.Nil(t, a.List("nobody-here"))
}

// ---- subscriptions ----

func TestSubscribeCoalesces(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	s := tr.Subscribe()
	defer s.Close()
	require.False(t, woken(s))
	require.Nil(t, s.Topics())

	for i := range 100 {
		track(t, tr, tracker.Owner(i), "a", "")
	}
	for i := range 50 {
		track(t, tr, tracker.Owner(1000+i), "b", "u")
	}
	require.NoError(t, tr.Untrack(0, "a"))
	require.True(t, woken(s), "a change wakes the subscriber")
	require.False(t, woken(s), "151 changes make a single wake-up")
	require.Equal(t, []string{"a", "b"}, sorted(s.Topics()))
	require.Nil(t, s.Topics(), "Topics drains")

	// The next change wakes it again.
	require.Equal(t, 1, tr.UntrackOwner(1000))
	require.NoError(t, tr.Untrack(1, "a"))
	require.True(t, woken(s))
	require.Equal(t, []string{"a", "b"}, sorted(s.Topics()))
}

func TestSubscribeWakeupNotLostWhenTopicsReadFirst(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	s := tr.Subscribe()
	defer s.Close()
	track(t, tr, 1, "a", "")
	require.Equal(t, []string{"a"}, s.Topics()) // read before the wake-up
	track(t, tr, 2, "b", "")
	// A wake-up is still pending, and Topics then shows the new change.
	require.True(t, woken(s))
	require.Equal(t, []string{"b"}, s.Topics())
}

func TestSubscribeClose(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	s1, s2 := tr.Subscribe(), tr.Subscribe()
	defer s2.Close()
	s1.Close()
	s1.Close() // idempotent
	track(t, tr, 1, "a", "")
	require.False(t, woken(s1), "a closed subscription gets no wake-up")
	require.Nil(t, s1.Topics())
	require.True(t, woken(s2), "other subscriptions are unaffected")
	require.Equal(t, []string{"a"}, s2.Topics())
}

func TestSlowSubscriberNeverBlocksTrack(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	s := tr.Subscribe() // never read
	defer s.Close()
	done := make(chan struct{})
	var trackErr error
	go func() {
		defer close(done)
		for i := range 20_000 {
			if _, err := tr.Track(tracker.Owner(i), fmt.Sprintf("t%d", i%100), "", nil); err != nil {
				trackErr = err
				return
			}
		}
	}()
	require.Eventually(t, func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}, 60*time.Second, time.Millisecond)
	require.NoError(t, trackErr)
	require.Len(t, s.Topics(), 100, "the slow subscriber sees each changed topic once")
}

func TestSubscribeSeesRemoteAndMembershipChanges(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.meshUp()
	s := b.Subscribe()
	defer s.Close()
	track(t, a, 1, "remote", "")
	r.tick(time.Millisecond)
	require.True(t, woken(s))
	require.Equal(t, []string{"remote"}, s.Topics())

	b.ReplicaDown(a.Self())
	require.True(t, woken(s))
	require.Equal(t, []string{"remote"}, s.Topics())
	require.Equal(t, tracker.Counts{}, b.Count("remote"))
}

func TestConcurrentUse(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	b.ReplicaUp(a.Self())
	sub := a.Subscribe()
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { // a subscriber that keeps up
		defer readers.Done()
		for {
			select {
			case <-sub.C():
				for _, topic := range sub.Topics() {
					a.Count(topic)
				}
			case <-stop:
				return
			}
		}
	}()
	go func() { // a transport: ticks a and hands its output to b
		defer readers.Done()
		now := epochT0
		for {
			select {
			case <-a.Pending():
			case <-stop:
				return
			}
			now = now.Add(time.Millisecond)
			for _, o := range a.Tick(now) {
				// Over the wire: Handle takes ownership of a message's
				// entries, so a's own message must not be handed over.
				buf, err := crdt.Marshal(a.Self(), o.Msg)
				if err != nil {
					t.Error(err)
					return
				}
				from, m, err := crdt.Unmarshal(buf)
				if err != nil {
					t.Error(err)
					return
				}
				b.Handle(from, m)
			}
			b.List("t0")
			b.Stats()
		}
	}()
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range 500 {
				o := tracker.Owner(w*1000 + i)
				topic := fmt.Sprintf("t%d", i%5)
				if _, err := a.Track(o, topic, fmt.Sprintf("u%d", i%7), nil); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if _, err := a.Update(o, topic, []byte("m")); err != nil {
						t.Error(err)
						return
					}
				}
				if i%3 == 0 {
					a.UntrackOwner(o)
				}
			}
		}()
	}
	writers.Wait()
	// Let the transport flush what is left, then stop the readers.
	require.Eventually(t, func() bool {
		return b.Stats().Presences == a.Stats().Presences && len(a.Pending()) == 0
	}, 60*time.Second, time.Millisecond)
	close(stop)
	readers.Wait()
	sub.Close()

	want := 4 * (500 - 167) // owners i with i%3 == 0 untracked themselves
	require.Equal(t, want, a.Stats().Presences)
	total := 0
	for i := range 5 {
		ca := a.Count(fmt.Sprintf("t%d", i))
		require.Equal(t, ca, b.Count(fmt.Sprintf("t%d", i)))
		total += ca.Connections
	}
	require.Equal(t, want, total)
}

// ---- replication ----

func TestDeltasFlowOnTick(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.meshUp()
	r.tick(time.Millisecond) // first digests out of the way

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

	outs := a.Tick(r.now.Add(time.Millisecond))
	require.Len(t, outs, 1, "one batch, no digest yet")
	require.Equal(t, tracker.ToAll, outs[0].Target)
	d, ok := outs[0].Msg.(*crdt.Delta)
	require.True(t, ok)
	require.Len(t, d.Ops, 2)
	r.send(a, outs)
	r.deliver()
	require.Equal(t, counts(1, 1, 2), b.Count("x"))

	ref, err := a.Update(1, "x", []byte("hi"))
	require.NoError(t, err)
	r.tick(time.Millisecond)
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
	r.tick(time.Millisecond)
	require.Equal(t, tracker.Counts{}, b.Count("x"))
	require.Equal(t, 0, b.Stats().Presences)
	require.GreaterOrEqual(t, a.Stats().DeltasSent, uint64(3))
	require.GreaterOrEqual(t, b.Stats().DeltasApplied, uint64(3))

	// A quiet Tick sends no delta.
	for _, o := range a.Tick(r.now.Add(time.Millisecond)) {
		_, isDelta := o.Msg.(*crdt.Delta)
		require.False(t, isDelta)
	}
}

func TestMaxDeltaOpsSplitsBatches(t *testing.T) {
	a := mkTracker(t, "a", 1, func(c *tracker.Config) { c.MaxDeltaOps = 10 })
	b := mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.meshUp()
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
	r.send(a, outs)
	r.deliver()
	require.Equal(t, counts(95, 0, 95), b.Count("x"))
}

func TestReplicaUpBootstrapsLateNode(t *testing.T) {
	small := func(c *tracker.Config) { c.LogMaxOps = 8 } // logs trimmed: catch-up needs snapshots
	a, b := mkTracker(t, "a", 1, small), mkTracker(t, "b", 1, small)
	r := newRouter(t, a, b)
	r.meshUp()
	for i := range 100 {
		track(t, a, tracker.Owner(i), "x", "")
	}
	for i := range 30 {
		track(t, b, tracker.Owner(i), "x", fmt.Sprintf("user%d", i%20))
	}
	r.tick(time.Millisecond)
	require.Equal(t, counts(100, 20, 130), a.Count("x"))
	require.Equal(t, counts(100, 20, 130), b.Count("x"))

	c := mkTracker(t, "c", 1, small)
	track(t, c, 1, "x", "user0")
	require.Len(t, c.Tick(r.now), 2, "c flushes its delta and a digest to nobody")
	r.nodes["c"] = c
	r.meshUp()
	// Membership alone brings c up to date: a request each way, answered
	// with snapshots.
	require.Equal(t, counts(100, 20, 131), c.Count("x"))
	require.Equal(t, counts(100, 20, 131), a.Count("x"))
	require.Equal(t, counts(100, 20, 131), b.Count("x"))
	require.Positive(t, a.Stats().SnapshotsSent)
	require.Positive(t, c.Stats().SnapshotsApplied)
	require.Positive(t, c.Stats().Requests)
	require.Positive(t, r.sent["*crdt.Request"])
	require.Positive(t, r.sent["*crdt.Snapshot"])
}

func TestReplicaUpBootstrapsFromLog(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	for i := range 10 {
		track(t, a, tracker.Owner(i), "x", "")
	}
	r.tick(time.Millisecond) // flushed into a's log; b does not know a yet
	require.Equal(t, tracker.Counts{}, b.Count("x"))
	r.meshUp()
	require.Equal(t, counts(10, 0, 10), b.Count("x"))
	require.Zero(t, a.Stats().SnapshotsSent, "a recent log answers without a snapshot")
}

func TestReplicaDownHidesUpShows(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.meshUp()
	for i := range 5 {
		track(t, a, tracker.Owner(i), "x", "")
	}
	r.tick(time.Millisecond)
	require.Equal(t, counts(5, 0, 5), b.Count("x"))

	b.ReplicaDown(a.Self())
	require.Equal(t, tracker.Counts{}, b.Count("x"), "a down replica is not counted")
	info := replicaInfo(t, b, "a")
	require.False(t, info.Up)
	require.Equal(t, 5, info.Presences, "but its presences are kept")
	require.Equal(t, 1, b.Stats().Down)

	// Data from a down replica keeps being applied while hidden.
	track(t, a, 5, "x", "")
	r.tick(time.Millisecond)
	require.Equal(t, tracker.Counts{}, b.Count("x"))

	r.up(b, a)
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
			r.meshUp()
			track(t, a, 1, "x", "alice")
			track(t, b, 1, "x", "")
			r.tick(time.Millisecond)
			r.settle("x", counts(1, 1, 2))

			switch how {
			case "ReplicaLeft":
				b.ReplicaLeft(a.Self())
				c.ReplicaLeft(a.Self())
			case "Goodbye":
				r.send(a, a.Leave())
				r.deliver() // no Tick: the goodbye alone drops a
			}
			for _, tr := range []*tracker.Tracker{b, c} {
				require.Equal(t, counts(1, 0, 1), tr.Count("x"), "on %s", tr.Self().Name)
				require.False(t, knows(tr, "a"))
				require.Equal(t, 1, tr.Stats().Dead)
			}

			// A late message from the gone replica changes nothing.
			late := &crdt.Delta{Owner: a.Self(), From: 1, To: 2, Ops: []crdt.Op{{Ref: 2, Entry: &crdt.Entry{Ref: 2, Topic: "x", Conn: 9}}}}
			ign := b.Stats().Ignored
			r.send(a, []tracker.Outbound{{Target: tracker.ToOne, To: b.Self(), Msg: late}})
			r.deliver()
			require.Equal(t, counts(1, 0, 1), b.Count("x"))
			require.Equal(t, ign+1, b.Stats().Ignored)
		})
	}
}

func TestGoodbyeFromAThirdPartyIsIgnored(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	c := mkTracker(t, "c", 1)
	r := newRouter(t, a, b, c)
	r.meshUp()
	track(t, a, 1, "x", "")
	r.tick(time.Millisecond)
	// c cannot say goodbye on a's behalf.
	r.send(c, []tracker.Outbound{{Target: tracker.ToOne, To: b.Self(), Msg: &crdt.Goodbye{Replica: a.Self()}}})
	r.deliver()
	require.Equal(t, counts(1, 0, 1), b.Count("x"))
}

func TestNewEpochDropsOldIncarnation(t *testing.T) {
	t.Run("membership", func(t *testing.T) {
		a1, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
		r := newRouter(t, a1, b)
		r.meshUp()
		track(t, a1, 1, "x", "alice")
		track(t, a1, 2, "x", "")
		r.tick(time.Millisecond)
		require.Equal(t, counts(1, 1, 2), b.Count("x"))

		// a crashes and restarts: b hears of the new epoch from membership
		// before any data, and drops the old presences at once.
		a2 := mkTracker(t, "a", 2)
		r.nodes["a"] = a2
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
		r.meshUp()
		track(t, a2, 1, "x", "")
		r.tick(time.Millisecond)
		require.Equal(t, counts(1, 0, 1), b.Count("x"))
		require.Empty(t, b.ReplicaUp(a1.Self()))
		b.ReplicaDown(a1.Self())
		require.Equal(t, counts(1, 0, 1), b.Count("x"))
		require.True(t, replicaInfo(t, b, "a").Up)
	})
	t.Run("data", func(t *testing.T) {
		a1, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
		r := newRouter(t, a1, b)
		r.meshUp()
		track(t, a1, 1, "x", "")
		r.tick(time.Millisecond)
		require.Equal(t, counts(1, 0, 1), b.Count("x"))
		// Data of a newer epoch arrives before membership says anything:
		// the old incarnation is dropped at once.
		a2 := mkTracker(t, "a", 2)
		r.nodes["a"] = a2
		track(t, a2, 1, "y", "")
		r.send(a2, a2.Tick(r.now.Add(time.Millisecond)))
		r.deliver()
		require.Equal(t, tracker.Counts{}, b.Count("x"))
	})
}

func TestPermdownAfterPeriod(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	period := b.Config().PermdownPeriod
	r := newRouter(t, a, b)
	r.meshUp()
	track(t, a, 1, "x", "")
	r.tick(time.Millisecond)
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
	r.now = down.Add(period)
	r.up(b, a)
	r.settle("x", counts(1, 0, 1))
}

func TestDownReplicaComingBackBeforePermdownIsNotDropped(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	period := b.Config().PermdownPeriod
	r := newRouter(t, a, b)
	r.meshUp()
	track(t, a, 1, "x", "")
	r.tick(time.Millisecond)
	b.ReplicaDown(a.Self())
	b.Tick(epochT0.Add(time.Second))
	r.now = epochT0.Add(time.Second + period/2)
	r.up(b, a)
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

func TestDigestRepairsGapFromThirdNode(t *testing.T) {
	a, b, c := mkTracker(t, "a", 1), mkTracker(t, "b", 1), mkTracker(t, "c", 1)
	r := newRouter(t, a, b, c)
	r.meshUp()
	r.tick(time.Millisecond)
	// Nothing from a reaches c, but membership still sees a alive.
	r.cut[[2]string{"a", "c"}] = true
	for i := range 20 {
		track(t, a, tracker.Owner(i), "x", fmt.Sprintf("u%d", i%7))
	}
	r.tick(time.Millisecond)
	require.Equal(t, counts(0, 7, 20), b.Count("x"))
	require.Equal(t, tracker.Counts{}, c.Count("x"))

	// b's digests tell c what it lacks; c asks b, which relays a's data.
	r.settle("x", counts(0, 7, 20))
	require.Positive(t, c.Stats().Requests)
	require.Positive(t, c.Stats().DeltasApplied+c.Stats().SnapshotsApplied)

	// Removals are repaired the same way.
	require.Equal(t, 1, a.UntrackOwner(0))
	r.tick(time.Millisecond)
	r.settle("x", counts(0, 7, 19))
}

func TestGapInDeltasIsRepaired(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.meshUp()
	r.tick(time.Millisecond)
	track(t, a, 1, "x", "")
	r.cut[[2]string{"a", "b"}] = true
	r.tick(time.Millisecond) // this delta is lost
	delete(r.cut, [2]string{"a", "b"})
	track(t, a, 2, "x", "")
	r.tick(time.Millisecond) // this one arrives ahead of a gap
	require.Equal(t, counts(2, 0, 2), b.Count("x"), "the gap was asked for and filled at once")
	require.Positive(t, b.Stats().Gaps)
	require.Positive(t, b.Stats().Requests)
}

func TestDuplicatedAndReorderedDeltas(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.meshUp()
	r.tick(time.Millisecond)
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
	d1 := delta(r.now.Add(time.Millisecond))
	require.NoError(t, a.Untrack(1, "x"))
	track(t, a, 3, "x", "bob")
	d2 := delta(r.now.Add(2 * time.Millisecond))
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
	r.meshUp()
	track(t, a, 1, "x", "alice")
	track(t, a, 2, "x", "")
	r.tick(time.Millisecond)
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
			r.send(a, []tracker.Outbound{{Target: tracker.ToOne, To: b.Self(), Msg: c.msg}})
			r.deliver()
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
	r.tick(time.Millisecond)
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
	r.meshUp()
	ra := a.Self()
	bad := &crdt.Delta{Owner: ra, From: 0, To: 1, Ops: []crdt.Op{
		{Ref: 1, Entry: &crdt.Entry{Ref: 1, Topic: "x", Conn: 1}},
		{Ref: 1, Entry: &crdt.Entry{Ref: 1, Topic: "x", Conn: 2}},
	}}
	r.send(a, []tracker.Outbound{{Target: tracker.ToOne, To: b.Self(), Msg: bad}})
	r.deliver()
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
	r.meshUp()
	track(t, a, 1, "x", "")
	r.tick(time.Millisecond)
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

// ---- config ----

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		field string
		mod   func(*tracker.Config)
	}{
		{"Name", func(c *tracker.Config) { c.Name = "" }},
		{"Name", func(c *tracker.Config) { c.Name = strings.Repeat("n", 256) }},
		{"BroadcastInterval", func(c *tracker.Config) { c.BroadcastInterval = 0 }},
		{"DigestInterval", func(c *tracker.Config) { c.DigestInterval = -time.Second }},
		{"RequestRetry", func(c *tracker.Config) { c.RequestRetry = 0 }},
		{"PermdownPeriod", func(c *tracker.Config) { c.PermdownPeriod = 0 }},
		{"DeadRetention", func(c *tracker.Config) { c.DeadRetention = 0 }},
		{"MaxDeltaOps", func(c *tracker.Config) { c.MaxDeltaOps = 0 }},
		{"LogMaxOps", func(c *tracker.Config) { c.LogMaxOps = -1 }},
		{"LogMaxBytes", func(c *tracker.Config) { c.LogMaxBytes = 0 }},
		{"MaxTopicLen", func(c *tracker.Config) { c.MaxTopicLen = 0 }},
		{"MaxTopicLen", func(c *tracker.Config) { c.MaxTopicLen = 1025 }},
		{"MaxUserLen", func(c *tracker.Config) { c.MaxUserLen = 2000 }},
		{"MaxMetaLen", func(c *tracker.Config) { c.MaxMetaLen = -1 }},
		{"MaxMetaLen", func(c *tracker.Config) { c.MaxMetaLen = 64<<10 + 1 }},
	}
	for _, c := range cases {
		t.Run(c.field, func(t *testing.T) {
			cfg := tracker.DefaultConfig()
			cfg.Name = "a"
			c.mod(&cfg)
			tr, err := tracker.New(cfg)
			require.Nil(t, tr)
			require.ErrorIs(t, err, tracker.ErrConfig)
			require.Contains(t, err.Error(), c.field)
			require.True(t, strings.HasPrefix(err.Error(), "tracker: "))
		})
	}
	for name, cfg := range map[string]tracker.Config{"DefaultConfig": tracker.DefaultConfig(), "LocalConfig": tracker.LocalConfig()} {
		t.Run(name, func(t *testing.T) {
			cfg.Name = "a"
			tr, err := tracker.New(cfg)
			require.NoError(t, err)
			require.Equal(t, "a", tr.Self().Name)
			require.NotZero(t, tr.Self().Epoch, "epoch 0 is derived from the clock")
		})
	}
	cfg := tracker.DefaultConfig()
	cfg.Name, cfg.Epoch = "a", 42
	tr, err := tracker.New(cfg)
	require.NoError(t, err)
	require.Equal(t, crdt.Replica{Name: "a", Epoch: 42}, tr.Self())
}

package tracker_test

import (
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/internal/testlog"
	"github.com/headcount-io/headcount/tracker"
)

// Helpers shared by the tracker tests: trackers on a fake clock and a tiny in-order router.

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

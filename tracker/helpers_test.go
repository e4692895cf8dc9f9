package tracker_test

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/internal/simnet"
	"github.com/headcount-io/headcount/internal/testlog"
	"github.com/headcount-io/headcount/tracker"
)

// Helpers shared by the tracker tests: trackers on a fake clock and simnet's hand-driven router.

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

// router is simnet's hand-driven network (simnet.Manual) for the replication, membership and
// incarnation scenarios: the tests' trackers, membership told by hand, FIFO delivery through
// the wire codec, one-way cuts, time moved by Step. settle adds the tests' bounded wait.
type router struct {
	*simnet.Net
	t *testing.T
}

func newRouter(t *testing.T, trs ...*tracker.Tracker) *router {
	return &router{Net: simnet.Manual(epochT0, trs...), t: t}
}

// settle steps until every node sees want in topic, within a bound of
// fake time; it fails the test otherwise.
func (r *router) settle(topic string, want tracker.Counts) {
	r.t.Helper()
	for i := 0; i < 200; i++ {
		ok := true
		for _, nd := range r.Nodes() {
			if nd.T.Count(topic) != want {
				ok = false
			}
		}
		if ok {
			return
		}
		r.Step(50 * time.Millisecond)
	}
	for _, nd := range r.Nodes() {
		require.Equal(r.t, want, nd.T.Count(topic), "node %s, topic %s", nd.Name, topic)
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

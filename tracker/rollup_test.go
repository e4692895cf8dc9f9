package tracker_test

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// naiveRollup recounts a roll-up from List: distinct anonymous connections
// and distinct users over every visible presence of every topic with the
// prefix.
func naiveRollup(tr *tracker.Tracker, prefix string) tracker.Counts {
	anon := map[string]bool{}
	users := map[string]bool{}
	conns := 0
	for _, topic := range tr.Topics() {
		if !strings.HasPrefix(topic, prefix) {
			continue
		}
		for _, p := range tr.List(topic) {
			conns++
			if p.User == "" {
				anon[fmt.Sprintf("%s/%d/%d", p.Node.Name, p.Node.Epoch, p.Owner)] = true
			} else {
				users[p.User] = true
			}
		}
	}
	return tracker.Counts{Viewers: len(anon), Users: len(users), Connections: conns}
}

// naiveBusiest ranks every topic with the prefix by viewers + users.
func naiveBusiest(tr *tracker.Tracker, prefix string) []tracker.TopicCounts {
	var out []tracker.TopicCounts
	for _, topic := range tr.Topics() {
		if strings.HasPrefix(topic, prefix) {
			out = append(out, tracker.TopicCounts{Topic: topic, Counts: tr.Count(topic)})
		}
	}
	slices.SortFunc(out, func(a, b tracker.TopicCounts) int {
		if c := cmp.Compare(b.Viewers+b.Users, a.Viewers+a.Users); c != 0 {
			return c
		}
		return strings.Compare(a.Topic, b.Topic)
	})
	return out
}

func scores(tcs []tracker.TopicCounts) []int {
	out := make([]int, len(tcs))
	for i, tc := range tcs {
		out[i] = tc.Viewers + tc.Users
	}
	return out
}

func TestRollupTopicCannotBeTracked(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	for _, topic := range []string{"*", "video:*"} {
		_, err := tr.Track(1, topic, "", nil)
		require.ErrorIs(t, err, tracker.ErrInvalidTopic, topic)
	}
	require.ErrorIs(t, tr.HoldRollup("video:1"), tracker.ErrNotRollup)
}

func TestRollupDistinctCounts(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	track(t, tr, 1, "video:1", "alice")
	track(t, tr, 1, "video:2", "alice") // alice on two videos: one user of video:*
	track(t, tr, 2, "video:1", "")
	track(t, tr, 2, "video:2", "") // one anonymous connection on two videos: one viewer
	track(t, tr, 3, "video:2", "")
	track(t, tr, 4, "live:1", "bob")
	require.Equal(t, tracker.Counts{}, tr.Count("video:*"), "not held: not maintained")

	require.NoError(t, tr.HoldRollup("video:*"))
	require.NoError(t, tr.HoldRollup("*"))
	require.Equal(t, counts(2, 1, 5), tr.Count("video:*"))
	require.Equal(t, counts(2, 2, 6), tr.Count("*"))

	s := tr.Subscribe()
	defer s.Close()
	track(t, tr, 5, "video:3", "bob")
	require.Equal(t, counts(2, 2, 6), tr.Count("video:*"))
	require.Equal(t, counts(2, 2, 7), tr.Count("*"), "bob was already a user of the site")
	require.Subset(t, s.Topics(), []string{"video:3", "video:*", "*"})

	require.Equal(t, 2, tr.UntrackOwner(2))
	require.Equal(t, counts(1, 2, 4), tr.Count("video:*"))
	require.Equal(t, tracker.Stats{}.RollupBuilds+2, tr.Stats().RollupBuilds, "no rebuilds after the first hold")
}

func TestRollupLingersThenDrops(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	track(t, tr, 1, "video:1", "")
	now := epochT0
	tr.Tick(now)
	require.NoError(t, tr.HoldRollup("video:*"))
	tr.ReleaseRollup("video:*")
	now = now.Add(30 * time.Second)
	tr.Tick(now)
	require.Equal(t, 1, tr.Rollups(), "lingers")
	require.NoError(t, tr.HoldRollup("video:*")) // a reconnect: no rebuild
	require.Equal(t, uint64(1), tr.Stats().RollupBuilds)
	tr.ReleaseRollup("video:*")
	now = now.Add(2 * time.Minute)
	tr.Tick(now)
	require.Equal(t, 0, tr.Rollups())
	require.Equal(t, tracker.Counts{}, tr.Count("video:*"))
	track(t, tr, 2, "video:2", "") // a dropped roll-up costs nothing more
}

func TestMaxRollups(t *testing.T) {
	tr := mkTracker(t, "a", 1, func(c *tracker.Config) { c.MaxRollups = 2 })
	require.NoError(t, tr.HoldRollup("a*"))
	require.NoError(t, tr.HoldRollup("b*"))
	require.ErrorIs(t, tr.HoldRollup("c*"), tracker.ErrTooManyRollups)
	tr.ReleaseRollup("b*")
	require.NoError(t, tr.HoldRollup("c*"), "an unheld roll-up makes room")
	_, _, err := tr.Busiest("d", 10)
	require.ErrorIs(t, err, tracker.ErrTooManyRollups)
}

func TestBusiestOrdering(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	owner := tracker.Owner(0)
	add := func(topic string, viewers int, users ...string) {
		for range viewers {
			owner++
			track(t, tr, owner, topic, "")
		}
		for _, u := range users {
			owner++
			track(t, tr, owner, topic, u)
		}
	}
	add("video:a", 1)
	add("video:b", 3, "u1")
	add("video:c", 0, "u1", "u1", "u2") // two tabs of u1: score 2
	add("video:d", 5)
	add("live:x", 50)
	total, top, err := tr.Busiest("video:", 3)
	require.NoError(t, err)
	require.Equal(t, counts(9, 2, 13), total)
	require.Equal(t, []tracker.TopicCounts{
		{Topic: "video:d", Counts: counts(5, 0, 5)},
		{Topic: "video:b", Counts: counts(3, 1, 4)},
		{Topic: "video:c", Counts: counts(0, 2, 3)},
	}, top)
	// Churn moves topics between buckets.
	require.Equal(t, 5, tr.UntrackOwner(owner-12)+tr.UntrackOwner(owner-11)+tr.UntrackOwner(owner-10)+tr.UntrackOwner(owner-9)+tr.UntrackOwner(owner-8))
	_, top, err = tr.Busiest("video:", 10)
	require.NoError(t, err)
	require.Equal(t, naiveBusiest(tr, "video:"), top)
	_, top, err = tr.Busiest("", 1)
	require.NoError(t, err)
	require.Equal(t, "live:x", top[0].Topic)
}

// TestRollupMatchesNaiveRecount is the property: under random churn of
// local and remote presences (tracks, updates, untracks, closed
// connections, a peer going down and up, roll-ups held and released), every
// held roll-up's counts equal a naive recount, and Busiest ranks like a
// naive sort.
func TestRollupMatchesNaiveRecount(t *testing.T) {
	topics := []string{"video:1", "video:2", "video:10", "live:1", "v", "video"}
	users := []string{"", "", "alice", "bob", "carol"}
	rollups := []string{"video:*", "*", "video:1*", "v*", "live:*", "x*"}
	rapid.Check(t, func(rt *rapid.T) {
		a := mkTracker(t, "a", 1)
		b := mkTracker(t, "b", 1)
		now := epochT0
		deliver := func(to *tracker.Tracker, from *tracker.Tracker, outs []tracker.Outbound) []tracker.Outbound {
			var back []tracker.Outbound
			for _, o := range outs {
				if o.Target == tracker.ToOne && o.To.Name != to.Self().Name {
					continue
				}
				buf, err := crdt.Marshal(from.Self(), o.Msg)
				require.NoError(rt, err)
				src, m, err := crdt.Unmarshal(buf)
				require.NoError(rt, err)
				back = append(back, to.Handle(src, m)...)
			}
			return back
		}
		exchange := func(outA, outB []tracker.Outbound) {
			for i := 0; i < 20 && (len(outA) > 0 || len(outB) > 0); i++ {
				outA, outB = deliver(a, b, outB), deliver(b, a, outA)
			}
		}
		exchange(a.ReplicaUp(b.Self()), b.ReplicaUp(a.Self()))
		held := map[string]int{}
		rt.Repeat(map[string]func(*rapid.T){
			"track": func(rt *rapid.T) {
				tr := rapid.SampledFrom([]*tracker.Tracker{a, b}).Draw(rt, "node")
				_, _ = tr.Track(tracker.Owner(rapid.IntRange(1, 6).Draw(rt, "owner")),
					rapid.SampledFrom(topics).Draw(rt, "topic"), rapid.SampledFrom(users).Draw(rt, "user"), nil)
			},
			"update": func(rt *rapid.T) {
				tr := rapid.SampledFrom([]*tracker.Tracker{a, b}).Draw(rt, "node")
				_, _ = tr.Update(tracker.Owner(rapid.IntRange(1, 6).Draw(rt, "owner")), rapid.SampledFrom(topics).Draw(rt, "topic"), []byte("m"))
			},
			"untrack": func(rt *rapid.T) {
				tr := rapid.SampledFrom([]*tracker.Tracker{a, b}).Draw(rt, "node")
				_ = tr.Untrack(tracker.Owner(rapid.IntRange(1, 6).Draw(rt, "owner")), rapid.SampledFrom(topics).Draw(rt, "topic"))
			},
			"close": func(rt *rapid.T) {
				tr := rapid.SampledFrom([]*tracker.Tracker{a, b}).Draw(rt, "node")
				tr.UntrackOwner(tracker.Owner(rapid.IntRange(1, 6).Draw(rt, "owner")))
			},
			"sync": func(rt *rapid.T) {
				now = now.Add(10 * time.Millisecond)
				exchange(a.Tick(now), b.Tick(now))
			},
			"peerDown": func(rt *rapid.T) { a.ReplicaDown(b.Self()) },
			"peerUp":   func(rt *rapid.T) { exchange(a.ReplicaUp(b.Self()), nil) },
			"hold": func(rt *rapid.T) {
				r := rapid.SampledFrom(rollups).Draw(rt, "rollup")
				require.NoError(rt, a.HoldRollup(r))
				held[r]++
			},
			"release": func(rt *rapid.T) {
				r := rapid.SampledFrom(rollups).Draw(rt, "rollup")
				if held[r] == 0 {
					rt.Skip("not held")
				}
				a.ReleaseRollup(r)
				held[r]--
			},
			"linger": func(rt *rapid.T) {
				now = now.Add(2 * time.Minute) // unheld roll-ups are dropped
				exchange(a.Tick(now), b.Tick(now))
			},
			"busiest": func(rt *rapid.T) {
				r := rapid.SampledFrom(rollups).Draw(rt, "rollup")
				prefix := strings.TrimSuffix(r, "*")
				limit := rapid.IntRange(1, 7).Draw(rt, "limit")
				total, top, err := a.Busiest(prefix, limit)
				require.NoError(rt, err)
				require.Equal(rt, naiveRollup(a, prefix), total)
				want := naiveBusiest(a, prefix)
				require.Equal(rt, scores(want[:min(limit, len(want))]), scores(top))
				for _, tc := range top {
					require.Equal(rt, a.Count(tc.Topic), tc.Counts, tc.Topic)
				}
			},
			"": func(rt *rapid.T) {
				for r, n := range held {
					if n > 0 {
						require.Equal(rt, naiveRollup(a, strings.TrimSuffix(r, "*")), a.Count(r), "roll-up %s", r)
					}
				}
			},
		})
	})
}

// TestHoldRollupReplicatesNothing: observing costs a subscription, never
// replicated state.
func TestHoldRollupReplicatesNothing(t *testing.T) {
	a := mkTracker(t, "a", 1)
	b := mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	track(t, a, 1, "video:1", "")
	r.Step(10 * time.Millisecond)
	sent := r.Sent["*crdt.Delta"]
	require.NoError(t, a.HoldRollup("video:*"))
	require.NoError(t, b.HoldRollup("*"))
	r.Step(10 * time.Millisecond)
	require.Equal(t, sent, r.Sent["*crdt.Delta"], "holding a roll-up sends no delta")
	require.Equal(t, 1, a.Stats().Presences)
	require.Equal(t, counts(1, 0, 1), b.Count("*"))
}

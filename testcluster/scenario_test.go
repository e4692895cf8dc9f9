package testcluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/testcluster"
	"github.com/headcount-io/headcount/tracker"
)

// converge is the generous bound for eventual outcomes on a slow, shared machine.
const converge = 30 * time.Second

func newCluster(t *testing.T, opts testcluster.Options) *testcluster.Cluster {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	c, err := testcluster.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

// spread tracks per presences on every running node, in topics "t0".."t<topics-1>", half of
// them anonymous and half logged in (users shared across nodes, so distinct-user dedup matters).
func spread(t *testing.T, c *testcluster.Cluster, per, topics int) {
	t.Helper()
	for _, n := range c.Live() {
		for k := 0; k < per; k++ {
			user := ""
			if k%2 == 1 {
				user = fmt.Sprintf("user-%d", k%7)
			}
			_, err := n.Track(fmt.Sprintf("t%d", k%topics), user)
			require.NoError(t, err)
		}
	}
}

func TestConvergence(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 5})
	spread(t, c, 40, 4)
	c.RequireConverged(t, converge)
	want := c.Truth()
	require.Equal(t, 5*40, want["t0"].Connections+want["t1"].Connections+want["t2"].Connections+want["t3"].Connections)
}

func TestPartitionHeal(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 5})
	spread(t, c, 20, 3)
	c.RequireConverged(t, converge)

	require.NoError(t, c.Partition([]int{0, 1}, []int{2, 3, 4}))
	ctx, cancel := context.WithTimeout(context.Background(), converge)
	defer cancel()
	// After failure detection each side shows only its own presences.
	require.NoError(t, c.WaitGroupConverged(ctx, 0, 1))
	require.NoError(t, c.WaitGroupConverged(ctx, 2, 3, 4))
	require.Equal(t, 2*20/3+1, c.Node(0).Tracker().Count("t0").Connections, "side {0,1} sees only its own presences")
	// Hold the partition past GossipToTheDeadTime (2 s in the test profile), after which
	// memberlist forgets the dead nodes: only our periodic re-join can heal it then.
	require.Never(t, func() bool { return c.Node(0).Gossip().NumMembers() != 2 || c.Node(4).Gossip().NumMembers() != 3 },
		3*time.Second, 50*time.Millisecond, "the partition holds")

	// Changes on both sides during the partition must show up everywhere after the heal.
	_, err := c.Node(1).Track("during", "")
	require.NoError(t, err)
	_, err = c.Node(4).Track("during", "u")
	require.NoError(t, err)
	require.NoError(t, c.Heal())
	c.RequireConverged(t, converge)
	require.Equal(t, 2, c.Node(0).Tracker().Count("during").Connections)
}

func TestAsymmetricCut(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 5})
	c.RequireConverged(t, converge)
	require.NoError(t, c.Cut(0, 1))
	// Node 1 never hears node 0 directly; it must learn node 0's presences from the others.
	for i := 0; i < 10; i++ {
		_, err := c.Node(0).Track("cut", "")
		require.NoError(t, err)
	}
	c.RequireConverged(t, converge)
	require.Equal(t, 10, c.Node(1).Tracker().Count("cut").Viewers)
}

func TestCrashRemovesPresences(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 5})
	spread(t, c, 10, 2)
	c.RequireConverged(t, converge)
	start := time.Now()
	require.NoError(t, c.Kill(2))
	c.RequireConverged(t, converge)
	t.Logf("crash hidden everywhere after %v (test profile)", time.Since(start))
	// A crashed node's presences are hidden (kept until permdown), not dropped.
	for _, n := range c.Live() {
		for _, r := range n.Tracker().Replicas() {
			if r.Replica.Name == "node-2" {
				require.False(t, r.Up, "%s still sees node-2 up", n.Name())
			}
		}
	}
}

func TestRestartNewEpochDropsOldAtOnce(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 5})
	spread(t, c, 10, 2)
	c.RequireConverged(t, converge)
	old := c.Node(2).Tracker().Self()

	// Kill and restart at once, faster than failure detection: memberlist sees only a meta update.
	require.NoError(t, c.Kill(2))
	require.NoError(t, c.Restart(2))
	_, err := c.Node(2).Track("t0", "fresh")
	require.NoError(t, err)
	c.RequireConverged(t, converge)
	// No ghosts: nobody holds anything of the old incarnation.
	for _, n := range c.Live() {
		for _, r := range n.Tracker().Replicas() {
			if r.Replica == old {
				require.Zero(t, r.Presences, "%s keeps presences of %v", n.Name(), old)
			}
		}
	}
}

func TestGracefulStopDropsAtOnce(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 5})
	spread(t, c, 10, 2)
	c.RequireConverged(t, converge)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, c.Stop(ctx, 3))
	c.RequireConverged(t, converge)
	t.Logf("graceful stop visible everywhere after %v", time.Since(start))
	// The goodbye hides the presences at once; membership's confirmation of the leave then drops
	// them (not merely hides them, as a crash would). Until then a spoofed goodbye could be undone.
	require.Eventually(t, func() bool {
		for _, n := range c.Live() {
			for _, r := range n.Tracker().Replicas() {
				if r.Replica.Name == "node-3" && r.Presences > 0 {
					return false
				}
			}
		}
		return true
	}, converge, 10*time.Millisecond, "node-3's presences are dropped")
}

func TestPacketLoss(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 5})
	require.NoError(t, c.SetLoss(0.2))
	spread(t, c, 30, 3)
	c.RequireConverged(t, converge)
	require.Greater(t, c.Network().Stats().PacketsDropped, uint64(0))
	require.NoError(t, c.Heal())
	c.RequireConverged(t, converge)
}

func TestDelay(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 5})
	require.NoError(t, c.SetDelay(20*time.Millisecond))
	spread(t, c, 10, 2)
	c.RequireConverged(t, converge)
	require.NoError(t, c.Kill(1))
	c.RequireConverged(t, converge)
}

func TestAddDuringChurn(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 5})
	rounds := 300
	if testing.Short() {
		rounds = 100
	}
	done := make(chan error, 1)
	go func() {
		// Bounded churn: track and untrack on every original node.
		var err error
		for k := 0; k < rounds && err == nil; k++ {
			n := c.Node(k % 5)
			var o tracker.Owner
			o, err = n.Track(fmt.Sprintf("churn%d", k%4), "")
			if err == nil && k%3 == 0 {
				err = n.Tracker().Untrack(o, fmt.Sprintf("churn%d", k%4))
			}
		}
		done <- err
	}()
	added, err := c.Add()
	require.NoError(t, err)
	_, err = added.Track("churn0", "newcomer")
	require.NoError(t, err)
	require.NoError(t, <-done)
	c.RequireConverged(t, converge)
	require.Equal(t, 6, added.Gossip().NumMembers())
}

func TestLargeCluster(t *testing.T) {
	nodes := 32
	if testing.Short() {
		nodes = 16
	}
	// This test is about data at scale, not failure detection: with TestConfig's 100 ms probes, 32
	// memberlists in one process under -race on a loaded 2-core machine time each other out
	// (thousands of false failures a minute), and a peer that membership calls failed is rightly
	// hidden, so the counts never settle although every partition has replicated. Probes slow
	// enough that CPU starvation cannot look like a crash keep membership still.
	c := newCluster(t, testcluster.Options{Nodes: nodes, Gossip: func(int) gossip.Config {
		g := gossip.TestConfig()
		g.ProbeInterval, g.ProbeTimeout, g.SuspicionMult = time.Second, 800*time.Millisecond, 6
		g.GossipInterval, g.TCPTimeout = 100*time.Millisecond, 5*time.Second
		return g
	}})
	spread(t, c, 4, 2)
	c.RequireConverged(t, 60*time.Second)
	require.Equal(t, nodes*4/2, c.Truth()["t0"].Viewers)
}

// TestBurstMarksNoHealthyNodeDown tracks a burst of presences on one node while the others merge
// them, with the production (LAN) failure detector, and checks that nobody was declared failed.
func TestBurstMarksNoHealthyNodeDown(t *testing.T) {
	burst := 100_000
	if testing.Short() {
		burst = 20_000
	}
	c := newCluster(t, testcluster.Options{Nodes: 5, Gossip: func(int) gossip.Config { return lanTimers() }})
	c.RequireConverged(t, converge)
	n0 := c.Node(0)
	for k := 0; k < burst; k++ {
		_, err := n0.Track(fmt.Sprintf("burst%d", k%1000), "")
		require.NoError(t, err)
	}
	c.RequireConverged(t, 2*converge)
	for _, n := range c.Live() {
		require.Zero(t, n.Gossip().Stats().Failed, "%s saw a healthy node fail", n.Name())
		require.Equal(t, 5, n.Gossip().NumMembers())
	}
}

// lanTimers is the test profile with the production failure detector.
func lanTimers() gossip.Config {
	c := gossip.TestConfig()
	lan := gossip.DefaultConfig()
	c.ProbeInterval, c.ProbeTimeout = lan.ProbeInterval, lan.ProbeTimeout
	c.SuspicionMult, c.SuspicionMaxMult = lan.SuspicionMult, lan.SuspicionMaxMult
	c.GossipInterval = lan.GossipInterval
	return c
}

func TestLoopbackCluster(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 3, Loopback: true})
	spread(t, c, 10, 2)
	c.RequireConverged(t, converge)
	require.ErrorIs(t, c.Partition([]int{0}), testcluster.ErrNoFaults)
	require.ErrorIs(t, c.SetLoss(0.1), testcluster.ErrNoFaults)

	require.NoError(t, c.Kill(1))
	c.RequireConverged(t, converge)
	require.NoError(t, c.Restart(1))
	_, err := c.Node(1).Track("t0", "back")
	require.NoError(t, err)
	c.RequireConverged(t, converge)
	seen := false
	for _, p := range c.Node(0).Tracker().List("t0") {
		seen = seen || (p.User == "back" && p.Node == c.Node(1).Tracker().Self())
	}
	require.True(t, seen, "node 0 sees the restarted node's new presence")
	require.Equal(t, 3, c.Node(0).Gossip().NumMembers())
}

func TestLifecycleErrors(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 2})
	require.ErrorIs(t, c.Restart(0), testcluster.ErrRunning)
	require.ErrorIs(t, c.Kill(7), testcluster.ErrBadIndex)
	require.NoError(t, c.Kill(1))
	require.ErrorIs(t, c.Kill(1), testcluster.ErrNotRunning)
	require.ErrorIs(t, c.Stop(context.Background(), 1), testcluster.ErrNotRunning)
	require.Len(t, c.Live(), 1)
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	_, err := c.Add()
	require.ErrorIs(t, err, testcluster.ErrClosed)
}

// A node that joins late gets a partition larger than one snapshot message
// in parts, gathers them and converges (the path that keeps every message
// under gossip's size limit for nodes with many presences).
func TestLateNodeBootstrapsFromSnapshotParts(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 3, Tracker: func(int) tracker.Config {
		cfg := tracker.LocalConfig()
		cfg.LogMaxOps = 64      // the log cannot answer "since 0"
		cfg.SnapshotChunk = 100 // 2,000 presences travel in 20 parts
		return cfg
	}})
	for k := 0; k < 2000; k++ {
		user := ""
		if k%2 == 1 {
			user = fmt.Sprintf("user-%d", k%50)
		}
		_, err := c.Node(0).Track(fmt.Sprintf("big%d", k%3), user)
		require.NoError(t, err)
	}
	c.RequireConverged(t, converge)
	added, err := c.Add()
	require.NoError(t, err)
	c.RequireConverged(t, converge)
	st := added.Tracker().Stats()
	require.Equal(t, 2000, st.Presences)
	require.GreaterOrEqual(t, st.SnapshotParts, uint64(19), "the newcomer gathered node 0's partition from parts")
}

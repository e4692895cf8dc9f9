package testcluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/testcluster"
	"github.com/headcount-io/headcount/tracker"
)

// Regression tests for issue 9's numbered faults, each ending with the ground-truth check.

// Fault 1: a crashed node restarted after its clock stepped back has a lower epoch. It used to
// be invisible everywhere ("a late event about an older incarnation") while its old presences
// stayed as ghosts.
func TestFaultRestartAfterClockStepBack(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 3})
	spread(t, c, 6, 2)
	c.RequireConverged(t, converge)
	old := c.Node(1).Tracker().Self().Epoch
	require.NoError(t, c.Kill(1))
	require.NoError(t, c.RestartWithEpoch(1, old-uint64(time.Second)))
	_, err := c.Node(1).Track("after-step", "u1")
	require.NoError(t, err)
	c.RequireConverged(t, converge)
	require.Equal(t, 1, c.Node(0).Tracker().Count("after-step").Users)
	require.Equal(t, 2*6, c.Node(0).Tracker().Count("t0").Connections+c.Node(0).Tracker().Count("t1").Connections,
		"nodes 0 and 2's presences only: node 1's old ones are gone")
}

// Fault 2: a second process with a live node's name, refused by memberlist, used to supersede
// the live incarnation with the higher epoch in its data: the real node's presences vanished
// cluster-wide. Now nothing it sends counts, while it runs or after it dies.
func TestFaultSameNameImpostorChangesNothing(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 3})
	spread(t, c, 6, 2)
	c.RequireConverged(t, converge)
	for _, epoch := range []uint64{0, 1} { // a higher and a lower epoch
		im, err := c.StartImpostor(1, epoch)
		require.NoError(t, err)
		// Its Tracks are flushed once, to the members it sees then: wait until it sees both
		// others, or the delta may go to no one and the wait below time out (2 runs in 15 did).
		require.Eventually(t, func() bool { return im.Gossip().NumMembers() >= 3 }, converge, 10*time.Millisecond)
		for o := range 5 {
			_, err := im.Tracker().Track(tracker.Owner(o+1), "t0", "", nil)
			require.NoError(t, err)
		}
		// Wait until the impostor's delta has reached both others: its short id names no member
		// they know, so their gossip drops the frame (a frame naming it in full would reach
		// their trackers, which count it as ignored).
		ignored := func() uint64 {
			var n uint64
			for _, i := range []int{0, 2} {
				n += c.Node(i).Tracker().Stats().Ignored + c.Node(i).Gossip().Stats().UnknownSender
			}
			return n
		}
		before := ignored()
		require.Eventually(t, func() bool { return ignored() >= before+2 }, converge, 10*time.Millisecond)
		require.NoError(t, c.Check())
		require.NoError(t, im.Close())
		for _, i := range []int{0, 2} {
			for _, m := range c.Node(i).Gossip().Members() {
				if m.Name == c.Node(1).Name() {
					require.Equal(t, c.Node(1).Tracker().Self().Epoch, m.Epoch)
				}
			}
		}
	}
	_, err := c.Node(1).Track("still-replicating", "")
	require.NoError(t, err)
	c.RequireConverged(t, converge)
	require.Equal(t, 1, c.Node(0).Tracker().Count("still-replicating").Viewers)
}

// Fault 3: UDP blocked, TCP open. memberlist keeps every node alive over its TCP fallback probe,
// and every delta, digest and request used to go by datagram and vanish: counts never converged
// while it lasted. Now peers whose pings fail are switched to streams.
func TestFaultUDPBlockedRepairsOverTCP(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 3, Gossip: func(int) gossip.Config {
		g := gossip.TestConfig()
		g.DatagramCheckInterval = 100 * time.Millisecond // off in the test profile
		return g
	}})
	spread(t, c, 4, 2)
	c.RequireConverged(t, converge)
	require.NoError(t, c.BlockPackets(-1, -1))
	_, err := c.Node(0).Track("udp-blocked", "u9")
	require.NoError(t, err)
	_, err = c.Node(2).Track("udp-blocked", "")
	require.NoError(t, err)
	c.RequireConverged(t, converge)
	require.Equal(t, tracker.Counts{Viewers: 1, Users: 1, Connections: 2}, c.Node(1).Tracker().Count("udp-blocked"))
	var fallbacks uint64
	for _, n := range c.Live() {
		fallbacks += n.Gossip().Stats().StreamFallbacks
		require.Equal(t, 3, n.Gossip().NumMembers(), "memberlist keeps everyone alive over TCP")
	}
	require.Positive(t, fallbacks)
	// Datagrams come back: peers are switched back and keep converging.
	require.NoError(t, c.Heal())
	_, err = c.Node(1).Track("healed", "")
	require.NoError(t, err)
	c.RequireConverged(t, converge)
}

// noSlowHealing turns off memberlist's periodic push/pull and our slow re-join rounds, so only
// the fast paths under test can admit a node or heal a partition within the bound.
func noSlowHealing(int) gossip.Config {
	g := gossip.TestConfig()
	g.PushPullInterval = time.Hour
	g.RejoinInterval = time.Hour
	return g
}

// Fault 4: a crashed node restarted at a new address was refused as a name conflict and then
// waited for the next push/pull (10-17 s). Now the peer that refused it joins it as soon as the
// old address is dead and reclaimable.
func TestFaultRestartAtNewAddressIsAdmittedFast(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 3, Gossip: noSlowHealing})
	restartAtNewAddress(t, c, "new-address") // push/pull is an hour away: only the fast path can do it
}

// restartAtNewAddress crashes the last of c's 3 nodes and restarts it at a new address with a
// presence on topic, and requires that everyone counts it within 10 s.
func restartAtNewAddress(t *testing.T, c *testcluster.Cluster, topic string) {
	t.Helper()
	spread(t, c, 4, 2)
	c.RequireConverged(t, converge)
	require.NoError(t, c.Kill(2))
	require.NoError(t, c.RestartAt(2, ""))
	_, err := c.Node(2).Track(topic, "")
	require.NoError(t, err)
	c.RequireConverged(t, 10*time.Second)
	require.Equal(t, 1, c.Node(0).Tracker().Count(topic).Viewers)
}

// Fault 4, the timing: the peers that refused the newcomer join it the moment memberlist accepts
// the name from the new address (DeadNodeReclaimTime after the old address was declared dead).
// With the fast re-join rounds a minute apart as well, only that timed reclaim can admit it
// within the bound; before, the node waited for a fast round, whose backoff grows while the old
// address does not answer. The 3 s target with the LAN profile is measured by
// BenchmarkRestartAtNewAddress, not asserted here: it depends on the machine's load.
func TestFaultRestartAtNewAddressReclaimedOnTime(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 3, Gossip: func(i int) gossip.Config {
		g := noSlowHealing(i)
		g.FastRejoinMin, g.FastRejoinMax = time.Minute, time.Minute
		return g
	}})
	restartAtNewAddress(t, c, "reclaimed")
	for _, i := range []int{0, 1} {
		require.Equal(t, 3, c.Node(i).Gossip().NumMembers())
	}
}

// Fault 5: a healed partition waited for the next re-join round (15 s by default). Now the peers
// lost recently are re-joined with backoff and jitter, and the counts are right soon after.
func TestFaultPartitionHealsWithoutSlowRejoin(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 4, Gossip: noSlowHealing})
	spread(t, c, 4, 2)
	c.RequireConverged(t, converge)
	require.NoError(t, c.Partition([]int{0, 1}, []int{2, 3}))
	ctx, cancel := context.WithTimeout(context.Background(), converge)
	defer cancel()
	require.NoError(t, c.WaitGroupConverged(ctx, 0, 1))
	require.NoError(t, c.WaitGroupConverged(ctx, 2, 3))
	// Past GossipToTheDeadTime memberlist stops talking to the other side at all.
	require.Never(t, func() bool { return c.Node(0).Gossip().NumMembers() != 2 }, 2500*time.Millisecond, 50*time.Millisecond)
	_, err := c.Node(3).Track("during", "")
	require.NoError(t, err)
	require.NoError(t, c.Heal())
	c.RequireConverged(t, 10*time.Second) // the slow round is an hour away
	require.Equal(t, 1, c.Node(0).Tracker().Count("during").Viewers)
}

package gossip_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/testcluster/memnet"
	"github.com/headcount-io/headcount/tracker"
)

// Tests of the gossip loops' timers run in a testing/synctest bubble on memnet: every goroutine of
// the nodes, of memberlist and of the network waits on channels and timers only, so the bubble's
// clock is virtual and moves only when all of them are blocked. time.Sleep inside a bubble
// advances that clock (it is not a wait for another goroutine: synctest.Wait is), so the tests
// assert the exact virtual instant something happens, without wall-clock polling. Tests on real
// UDP sockets cannot run in a bubble: a goroutine in a socket read is not durably blocked, so the
// clock would never move.

// bubbleNet returns a memnet network inside the current bubble, closed at the end of the test.
func bubbleNet(t *testing.T) *memnet.Network {
	t.Helper()
	n := memnet.New(memnet.Options{})
	t.Cleanup(func() {
		_ = n.Close()
		// memberlist's Shutdown does not wait for an in-flight probe (see TestMain): let the
		// clock run until it ends, or the bubble would end with it blocked. This cleanup was
		// registered first, so it runs after the nodes' Close.
		time.Sleep(time.Second)
	})
	return n
}

// bubbleNode starts a node on net; tweak may change its config.
func bubbleNode(t *testing.T, net *memnet.Network, name string, tweak func(*gossip.Config)) *gossip.Node {
	t.Helper()
	n, _ := crashableNode(t, net, name, tweak)
	return n
}

// crashableNode is bubbleNode that also returns the node's transport, for crash (or its address).
func crashableNode(t *testing.T, net *memnet.Network, name string, tweak func(*gossip.Config)) (*gossip.Node, *memnet.Transport) {
	t.Helper()
	tp, err := net.NewTransport("")
	require.NoError(t, err)
	return start(t, name, func(c *gossip.Config) {
		c.Transport = tp
		if tweak != nil {
			tweak(c)
		}
	}), tp
}

// crash stops n as a crash does: its transport goes first, so it says no goodbye.
func crash(t *testing.T, n *gossip.Node, tp *memnet.Transport) {
	t.Helper()
	require.NoError(t, tp.Shutdown())
	require.NoError(t, n.Close())
}

// joinTo is a bubbleNode tweak that joins the node to a.
func joinTo(a *gossip.Node) func(*gossip.Config) {
	return func(c *gossip.Config) { c.Join = []string{a.Addr()} }
}

// advanceUntil is gossip.AdvanceUntil (export_test.go), shared with the internal tests.
var advanceUntil = gossip.AdvanceUntil

// batchingPair starts a and b, joined, with BroadcastInterval interval and no periodic Tick
// (Tick flushes too: it is kept out of the window), and returns once each sees the other.
func batchingPair(t *testing.T, interval time.Duration) (a, b *gossip.Node) {
	t.Helper()
	net := bubbleNet(t)
	cfg := func(c *gossip.Config) {
		c.BroadcastInterval = interval
		c.TickInterval = time.Hour
	}
	a = bubbleNode(t, net, "a", cfg)
	b = bubbleNode(t, net, "b", func(c *gossip.Config) { cfg(c); c.Join = []string{a.Addr()} })
	advanceUntil(t, time.Second, "a sees b", func() bool { return a.NumMembers() == 2 && b.NumMembers() == 2 })
	return a, b
}

// Flushing is paced by a token bucket (worker.go): while the node is under its flush budget a
// local change is sent at once, however recently the previous flush went, so a lone change never
// waits for the window. Only once FlushBurst flushes have gone within a window do changes wait
// for the next token (one per batching window) and go together in one delta. A quiet window
// gives a token back.
func TestFlushGoesAtOnceWhileUnderBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 100 * time.Millisecond
		a, b := batchingPair(t, interval)
		time.Sleep(gossip.FlushBurst * interval) // a quiet spell: the bucket is full
		viewers := func() int { return b.Tracker().Count("x").Viewers }
		sent := func() uint64 { return a.Tracker().Stats().DeltasSent }
		track := func(i int) {
			t.Helper()
			_, err := a.Tracker().Track(tracker.Owner(i), "x", "", nil)
			require.NoError(t, err)
		}
		d0 := sent()

		for i := 1; i <= gossip.FlushBurst; i++ {
			track(i)
			synctest.Wait()
			require.Equal(t, i, viewers(), "change %d goes at once: no virtual time has passed", i)
			require.Equal(t, d0+uint64(i), sent())
		}

		const over = gossip.FlushBurst + 3
		for i := gossip.FlushBurst + 1; i <= over; i++ {
			track(i)
		}
		synctest.Wait()
		time.Sleep(interval - time.Millisecond)
		synctest.Wait()
		require.Equal(t, gossip.FlushBurst, viewers(), "over budget, changes wait for a token")
		require.Equal(t, d0+gossip.FlushBurst, sent())
		time.Sleep(time.Millisecond)
		synctest.Wait()
		require.Equal(t, over, viewers(), "and go when it comes, one window later")
		require.Equal(t, d0+gossip.FlushBurst+1, sent(), "in one delta")

		// Still over budget: a change right after that flush waits a whole window.
		track(over + 1)
		took := advanceUntil(t, time.Second, "the next change", func() bool { return viewers() == over+1 })
		require.Equal(t, interval, took)

		// One quiet window gives one token back: a change goes at once again.
		time.Sleep(interval)
		track(over + 2)
		synctest.Wait()
		require.Equal(t, over+2, viewers())
		require.Equal(t, d0+gossip.FlushBurst+3, sent())
	})
}

// Under sustained churn the bucket keeps batching: a change every millisecond for a second costs
// FlushBurst flushes at once and then one per window, as many datagrams as before the bucket
// plus FlushBurst-1, and no change waits more than one window.
func TestSustainedChangesFlushOncePerWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			interval = 10 * time.Millisecond
			period   = time.Second
			changes  = int(period / time.Millisecond)
		)
		a, b := batchingPair(t, interval)
		time.Sleep(gossip.FlushBurst * interval)
		sent := func() uint64 { return a.Tracker().Stats().DeltasSent }
		d0 := sent()
		var worst time.Duration
		seen, at := 0, make([]time.Time, changes+1)
		for i := 1; i <= changes; i++ {
			at[i] = time.Now()
			_, err := a.Tracker().Track(tracker.Owner(i), "x", "", nil)
			require.NoError(t, err)
			synctest.Wait()
			for v := b.Tracker().Count("x").Viewers; seen < v; seen++ {
				worst = max(worst, time.Since(at[seen+1]))
			}
			time.Sleep(time.Millisecond)
		}
		advanceUntil(t, time.Second, "every change", func() bool { return b.Tracker().Count("x").Viewers == changes })
		for ; seen < changes; seen++ {
			worst = max(worst, time.Since(at[seen+1]))
		}
		flushes := sent() - d0
		// The first FlushBurst changes (1 ms apart) go at once; the bucket is then empty and
		// the rest go once per window: at 10 ms, 20 ms, ... up to the one after the last change.
		require.Equal(t, gossip.FlushBurst+int(period/interval), int(flushes))
		require.LessOrEqual(t, worst, interval, "no change waits more than one window")
	})
}

// The seeds are retried with exponential backoff (join.go): after the attempt in New, at
// JoinBackoffMin, then doubling up to JoinBackoffMax. A seed that comes up between two attempts
// is joined at the next one, not before.
func TestSeedsAreRetriedWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := bubbleNet(t)
		seedAddr := net.NextAddr()
		t0 := time.Now()
		b := bubbleNode(t, net, "b", func(c *gossip.Config) {
			c.Join = []string{seedAddr}
			c.RejoinInterval = 0
			c.JoinBackoffMin, c.JoinBackoffMax = 100*time.Millisecond, 400*time.Millisecond
		})
		// Attempts at 0, 100 ms, 300 ms, 700 ms, 1.1 s, 1.5 s...; the seed is up at 1 s.
		time.Sleep(time.Second)
		ta, err := net.NewTransport(seedAddr)
		require.NoError(t, err)
		a := start(t, "a", func(c *gossip.Config) { c.Transport = ta })
		joined := func() bool { return a.NumMembers() == 2 && b.NumMembers() == 2 }
		advanceUntil(t, 2*time.Second, "b joins the seed", joined)
		require.Equal(t, 1100*time.Millisecond, time.Since(t0), "at the attempt after the seed came up")
	})
}

// The datagram checker (udpcheck.go): with UDP from a to b dropped and TCP open, memberlist keeps
// b alive through its TCP fallback probe, the checker switches b to streams after
// datagramFailures (5) failed pings in a row, each waiting ProbeTimeout, and anti-entropy then
// repairs over the stream what the lost datagrams carried.
func TestDatagramCheckSwitchesAPeerToStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = 50 * time.Millisecond
		net := bubbleNet(t)
		cfg := func(c *gossip.Config) { c.DatagramCheckInterval = interval }
		a := bubbleNode(t, net, "a", cfg)
		b := bubbleNode(t, net, "b", func(c *gossip.Config) { cfg(c); c.Join = []string{a.Addr()} })
		advanceUntil(t, time.Second, "joined", func() bool { return a.NumMembers() == 2 && b.NumMembers() == 2 })
		net.SetLinkFault(a.Addr(), b.Addr(), memnet.Fault{DropPackets: true})
		timeout := gossip.TestConfig().ProbeTimeout
		took := advanceUntil(t, 10*time.Second, "b switched to streams", func() bool { return a.Stats().StreamFallbacks == 1 })
		require.GreaterOrEqual(t, took, 5*timeout, "five failed pings, each waiting ProbeTimeout")
		require.LessOrEqual(t, took, 5*timeout+2*interval)
		require.Equal(t, 2, a.NumMembers(), "memberlist still sees b alive")

		_, err := a.Tracker().Track(1, "x", "", nil)
		require.NoError(t, err)
		advanceUntil(t, 3*time.Second, "b counts a's presence, repaired by stream", func() bool {
			return b.Tracker().Count("x").Viewers == 1
		})
		require.Equal(t, uint64(1), a.Stats().StreamFallbacks, "switched once")
	})
}

// Fast re-join (join.go): after a partition longer than memberlist remembers dead nodes, the
// fast rounds (backed off to FastRejoinMax while it lasted, ±25% jitter) merge the two sides
// within 1.25 x FastRejoinMax of the heal, well before the slow round.
func TestPartitionHealsWithinFastRejoinMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := bubbleNet(t)
		cfg := func(c *gossip.Config) {
			c.RejoinInterval = time.Minute // the slow round stays out of the way
			c.FastRejoinMin, c.FastRejoinMax = 250*time.Millisecond, time.Second
		}
		a := bubbleNode(t, net, "a", cfg)
		b := bubbleNode(t, net, "b", func(c *gossip.Config) { cfg(c); c.Join = []string{a.Addr()} })
		both := func(k int) bool { return a.NumMembers() == k && b.NumMembers() == k }
		advanceUntil(t, time.Second, "joined", func() bool { return both(2) })
		net.Partition([]string{a.Addr()}, []string{b.Addr()})
		advanceUntil(t, 10*time.Second, "each sees the other failed", func() bool { return both(1) })
		time.Sleep(5 * time.Second) // longer than GossipToTheDeadTime: only re-joins can heal it
		require.True(t, both(1))
		net.Heal()
		took := advanceUntil(t, 10*time.Second, "healed", func() bool { return both(2) })
		require.LessOrEqual(t, took, 5*time.Second/4)
	})
}

package gossip_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/testcluster/memnet"
	"github.com/headcount-io/headcount/tracker"
)

func TestMain(m *testing.M) {
	// memberlist's Shutdown does not wait for an in-flight probe; it ends on its own within a few
	// probe timeouts. Everything else must be gone.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
		goleak.IgnoreAnyFunction("github.com/hashicorp/memberlist.(*Memberlist).handleIndirectPing.func2"))
}

const eventually = 30 * time.Second

func newTracker(t *testing.T, name string) *tracker.Tracker {
	t.Helper()
	tc := tracker.LocalConfig()
	tc.Name = name
	tr, err := tracker.New(tc)
	require.NoError(t, err)
	return tr
}

// start starts a node; tweak may change its config. It is closed at the end of the test.
func start(t *testing.T, name string, tweak func(*gossip.Config)) *gossip.Node {
	t.Helper()
	cfg := gossip.TestConfig()
	cfg.BindAddr = "127.0.0.1"
	cfg.Label = t.Name()
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := gossip.New(cfg, newTracker(t, name))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	return n
}

func members(n *gossip.Node) []string {
	var out []string
	for _, m := range n.Members() {
		out = append(out, m.Name)
	}
	return out
}

func TestLoopbackEncryptedClusterConverges(t *testing.T) {
	keys := [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
	a := start(t, "a", func(c *gossip.Config) { c.SecretKeys = keys; c.HTTPAddr = "127.0.0.1:4000" })
	b := start(t, "b", func(c *gossip.Config) { c.SecretKeys = keys; c.Join = []string{a.Addr()} })
	c := start(t, "c", func(c *gossip.Config) { c.SecretKeys = keys; c.Join = []string{b.Addr()} })
	for i := 0; i < 50; i++ {
		_, err := a.Tracker().Track(tracker.Owner(i+1), "room", fmt.Sprint("u", i%10), nil)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		return c.Tracker().Count("room") == tracker.Counts{Users: 10, Connections: 50} &&
			b.Tracker().Count("room") == tracker.Counts{Users: 10, Connections: 50}
	}, eventually, 5*time.Millisecond)
	var http string
	for _, m := range c.Members() {
		if m.Name == "a" {
			http = m.HTTP
			require.Equal(t, a.Tracker().Self().Epoch, m.Epoch)
		}
	}
	require.Equal(t, "127.0.0.1:4000", http, "the HTTP address travels in the node meta")
}

func TestWrongKeyOrLabelIsIsolated(t *testing.T) {
	a := start(t, "a", func(c *gossip.Config) { c.SecretKeys = [][]byte{[]byte("0123456789abcdef")} })
	b := start(t, "b", func(c *gossip.Config) {
		c.SecretKeys = [][]byte{[]byte("fedcba9876543210")}
		c.Join = []string{a.Addr()}
	})
	d := start(t, "d", func(c *gossip.Config) { c.Label = "another-cluster"; c.Join = []string{a.Addr()} })
	// Nothing may get through while the joins and their background retries fail.
	require.Never(t, func() bool { return a.NumMembers() > 1 || b.NumMembers() > 1 || d.NumMembers() > 1 },
		500*time.Millisecond, 10*time.Millisecond)
	require.Equal(t, []string{"a"}, members(a))
	require.Equal(t, []string{"b"}, members(b))
	require.Equal(t, []string{"d"}, members(d))
}

func TestKeyRotation(t *testing.T) {
	oldKey, newKey := []byte("0123456789abcdef"), []byte("fedcba9876543210")
	a := start(t, "a", func(c *gossip.Config) { c.SecretKeys = [][]byte{oldKey} })
	b := start(t, "b", func(c *gossip.Config) { c.SecretKeys = [][]byte{oldKey}; c.Join = []string{a.Addr()} })
	require.Eventually(t, func() bool { return a.NumMembers() == 2 }, eventually, 5*time.Millisecond)
	for _, n := range []*gossip.Node{a, b} {
		require.NoError(t, n.Keyring().AddKey(newKey))
	}
	for _, n := range []*gossip.Node{a, b} {
		require.NoError(t, n.Keyring().UseKey(newKey))
	}
	for _, n := range []*gossip.Node{a, b} {
		require.NoError(t, n.Keyring().RemoveKey(oldKey))
	}
	_, err := a.Tracker().Track(1, "rotated", "", nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.Tracker().Count("rotated").Viewers == 1 }, eventually, 5*time.Millisecond)
}

func TestLargeStateGoesByStream(t *testing.T) {
	a := start(t, "a", nil)
	for i := 0; i < 5000; i++ {
		_, err := a.Tracker().Track(tracker.Owner(i+1), "big", "", []byte("some meta to make it larger"))
		require.NoError(t, err)
	}
	// b joins later and must catch up (a snapshot or the log) over a reliable stream.
	b := start(t, "b", func(c *gossip.Config) { c.Join = []string{a.Addr()} })
	require.Eventually(t, func() bool { return b.Tracker().Count("big").Viewers == 5000 }, eventually, 5*time.Millisecond)
	require.Positive(t, a.Stats().StreamsSent)
	require.Positive(t, b.Stats().BytesReceived)
}

func TestLeaveThenCloseAreIdempotent(t *testing.T) {
	a := start(t, "a", nil)
	b := start(t, "b", func(c *gossip.Config) { c.Join = []string{a.Addr()} })
	_, err := b.Tracker().Track(1, "x", "", nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return a.Tracker().Count("x").Viewers == 1 }, eventually, 5*time.Millisecond)

	require.NoError(t, b.Leave(context.Background()))
	require.ErrorIs(t, b.Leave(context.Background()), gossip.ErrClosed)
	require.NoError(t, b.Close())
	_, err = b.Tracker().Track(2, "x", "", nil)
	require.ErrorIs(t, err, tracker.ErrClosed, "the tracker refuses presences after the goodbye")
	require.Eventually(t, func() bool { return a.Tracker().Count("x").Viewers == 0 }, eventually, 5*time.Millisecond)
	require.Eventually(t, func() bool { return a.Stats().Left == 1 }, eventually, 5*time.Millisecond)
	require.Zero(t, a.Stats().Failed)
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	// The node label is added by whoever shares the registry (package node does), not by gossip.
	labelled := func(name string) prometheus.Registerer {
		return prometheus.WrapRegistererWith(prometheus.Labels{"node": name}, reg)
	}
	a := start(t, "a", func(c *gossip.Config) { c.Registerer = labelled("a") })
	b := start(t, "b", func(c *gossip.Config) { c.Registerer = labelled("b"); c.Join = []string{a.Addr()} })
	require.Eventually(t, func() bool {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "headcount_gossip_members" {
				// One series per node sharing the registry.
				return len(mf.GetMetric()) == 2 && mf.GetMetric()[0].GetGauge().GetValue() == 2 &&
					mf.GetMetric()[1].GetGauge().GetValue() == 2
			}
		}
		return false
	}, eventually, 5*time.Millisecond)
	// Metric names are part of the front door (docs/operations.md): none may change.
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, strings.TrimPrefix(mf.GetName(), "headcount_gossip_"))
	}
	require.Equal(t, []string{"bad_meta_total", "bytes_received_total", "decode_errors_total",
		"frames_received_total", "inbox_dropped_total", "members", "messages_handled_total",
		"oversize_dropped_total", "packet_bytes_sent_total", "packets_refused_total", "packets_sent_total",
		"queue_dropped_total", "replicas_failed_total", "replicas_joined_total", "replicas_left_total",
		"send_errors_total", "stream_bytes_sent_total", "stream_fallbacks_total", "streams_sent_total", "unknown_sender_total"}, names)
	require.NoError(t, a.Close())
	require.NoError(t, b.Close())
	mfs, err = reg.Gather()
	require.NoError(t, err)
	require.Empty(t, mfs, "Close unregisters the metrics")
}

func TestNewRejectsBadConfig(t *testing.T) {
	tr := newTracker(t, "a")
	cfg := gossip.TestConfig()
	cfg.Name = "other"
	_, err := gossip.New(cfg, tr)
	require.ErrorIs(t, err, gossip.ErrInvalidConfig)
	require.ErrorContains(t, err, "Name")
	cfg = gossip.TestConfig()
	cfg.TickInterval = 0
	_, err = gossip.New(cfg, tr)
	require.ErrorContains(t, err, "TickInterval")
	_, err = gossip.New(gossip.TestConfig(), nil)
	require.ErrorIs(t, err, gossip.ErrInvalidConfig)
}

// A node that crashes and comes back under the same name at another address (a container with a
// new IP) is accepted once its old incarnation is dead, and its old presences are gone.
func TestRestartAtNewAddress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := bubbleNet(t)
		a := bubbleNode(t, net, "a", nil)
		b, tb := crashableNode(t, net, "b", joinTo(a))
		_, err := b.Tracker().Track(1, "old", "", nil)
		require.NoError(t, err)
		advanceUntil(t, eventually, "a counts old", func() bool { return a.Tracker().Count("old").Viewers == 1 })

		crash(t, b, tb)
		// The epoch is the boot time: in a bubble, a restart in the same virtual instant would
		// boot the same incarnation again.
		time.Sleep(time.Millisecond)
		b2, tb2 := crashableNode(t, net, "b", joinTo(a))
		_, err = b2.Tracker().Track(1, "new", "", nil)
		require.NoError(t, err)
		advanceUntil(t, eventually, "a counts new, not old", func() bool {
			return a.Tracker().Count("new").Viewers == 1 && a.Tracker().Count("old").Viewers == 0
		})
		for _, m := range a.Members() {
			if m.Name == "b" {
				require.Equal(t, tb2.Addr(), m.Addr)
				require.Equal(t, b2.Tracker().Self().Epoch, m.Epoch)
			}
		}
	})
}

// A slow peer's stream queue overflows: the dropped messages are counted and repaired by
// anti-entropy (digests and requests), and the other peer is not held up.
func TestSlowPeerDropsAreRepaired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := bubbleNet(t)
		small := func(c *gossip.Config) {
			c.MaxPacketSize = 200 // deltas go by stream
			c.MaxMessageSize = 16 << 10
			c.InboxBytes = 1 << 20
			c.PeerQueueBytes = 16 << 10
		}
		tr := func(name string) *tracker.Tracker {
			tc := tracker.LocalConfig()
			tc.Name = name
			tc.MaxDeltaOps = 128
			trk, err := tracker.New(tc)
			require.NoError(t, err)
			return trk
		}
		node := func(name string, join ...string) *gossip.Node {
			tp, err := net.NewTransport("")
			require.NoError(t, err)
			cfg := gossip.TestConfig()
			cfg.Label, cfg.Transport, cfg.Join = t.Name(), tp, join
			small(&cfg)
			n, err := gossip.New(cfg, tr(name))
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, n.Close()) })
			return n
		}
		a := node("a")
		b := node("b", a.Addr())
		c := node("c", a.Addr())
		advanceUntil(t, eventually, "a sees 3", func() bool { return a.NumMembers() == 3 })
		// Every stream from a to b now takes 100 ms to open.
		net.SetLinkFault(a.Addr(), b.Addr(), memnet.Fault{Delay: 100 * time.Millisecond})
		const total = 3000
		for i := 0; i < total; i++ {
			_, err := a.Tracker().Track(tracker.Owner(i+1), fmt.Sprint("room-", i%30), "", nil)
			require.NoError(t, err)
		}
		advanceUntil(t, eventually, "c has all", func() bool { return c.Tracker().Stats().Presences == total })
		advanceUntil(t, 2*eventually, "b has all", func() bool { return b.Tracker().Stats().Presences == total })
		require.Positive(t, a.Stats().QueueDropped, "the slow peer's queue overflowed")
	})
}

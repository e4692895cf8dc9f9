package gossip_test

import (
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/testcluster/memnet"
)

func memberNamed(n *gossip.Node, name string) (gossip.Member, bool) {
	for _, m := range n.Members() {
		if m.Name == name {
			return m, true
		}
	}
	return gossip.Member{}, false
}

// A crashed member stays listed as failed, with since when, and is not counted as alive.
func TestFailedMemberIsListedAsFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := bubbleNet(t)
		a := bubbleNode(t, net, "a", nil)
		b, tb := crashableNode(t, net, "b", joinTo(a))
		advanceUntil(t, eventually, "a sees b", func() bool { return a.NumMembers() == 2 })
		crashed := time.Now()
		crash(t, b, tb)
		took := advanceUntil(t, eventually, "b listed as failed", func() bool {
			m, ok := memberNamed(a, "b")
			return ok && m.Status == gossip.StatusFailed
		})
		m, _ := memberNamed(a, "b")
		require.False(t, m.Since.Before(crashed), "since is when it failed")
		require.WithinDuration(t, crashed.Add(took), m.Since, time.Millisecond, "since is when it failed")
		require.Positive(t, took, "failure detection takes probes, not no time")
		require.Equal(t, 1, a.NumMembers())
		require.Len(t, a.Members(), 2)
	})
}

type plainDelegate struct{ meta []byte }

func (d plainDelegate) NodeMeta(int) []byte                 { return d.meta }
func (d plainDelegate) NotifyMsg([]byte)                    {}
func (d plainDelegate) GetBroadcasts(int, int) [][]byte     { return nil }
func (d plainDelegate) LocalState(bool) []byte              { return nil }
func (d plainDelegate) MergeRemoteState(buf []byte, _ bool) {}

// A memberlist node that is not a compatible headcount node (here: no node meta) is listed as
// incompatible, never as alive, and never counted.
func TestBadMetaMemberIsListedIncompatible(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := bubbleNet(t)
		a := bubbleNode(t, net, "a", nil)
		tx, err := net.NewTransport("")
		require.NoError(t, err)
		mc := memberlist.DefaultLocalConfig()
		mc.Name, mc.Transport, mc.Label = "stranger", tx, t.Name()
		mc.Delegate = plainDelegate{meta: []byte("not ours")}
		mc.LogOutput = io.Discard
		ml, err := memberlist.Create(mc)
		require.NoError(t, err)
		defer func() { _ = ml.Shutdown() }()
		_, err = ml.Join([]string{a.Addr()})
		require.NoError(t, err)
		advanceUntil(t, eventually, "stranger listed as incompatible", func() bool {
			m, ok := memberNamed(a, "stranger")
			return ok && m.Status == gossip.StatusIncompatible
		})
		require.Equal(t, 1, a.NumMembers())
		require.Positive(t, a.Stats().BadMeta)
	})
}

// Leave and Close at once: the goodbye senders are never added to the wait group while Close
// waits on it (the race detector flags that), and both return.
func TestLeaveRacingClose(t *testing.T) {
	net := memnet.New(memnet.Options{})
	defer net.Close()
	ta, err := net.NewTransport("")
	require.NoError(t, err)
	a := start(t, "a", func(c *gossip.Config) { c.Transport = ta })
	for i := range 5 {
		tb, err := net.NewTransport("")
		require.NoError(t, err)
		cfg := gossip.TestConfig()
		cfg.Label, cfg.Transport, cfg.Join = t.Name(), tb, []string{a.Addr()}
		b, err := gossip.New(cfg, newTracker(t, "b"+string(rune('0'+i))))
		require.NoError(t, err)
		done := make(chan struct{})
		go func() { _ = b.Leave(t.Context()); close(done) }()
		require.NoError(t, b.Close())
		<-done
		require.Equal(t, gossip.StateShutdown, b.State())
	}
}

package wsgateway

import (
	"testing"
	"time"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
	"github.com/stretchr/testify/require"
)

// deliver hands from's outbound messages to `to` through the wire codec, and the replies
// back, as a two-node transport would (every target is the other node).
func deliver(t *testing.T, from, to *tracker.Tracker, outs []tracker.Outbound, depth int) {
	require.Less(t, depth, 20, "replication did not quiesce")
	for _, o := range outs {
		b, err := crdt.Marshal(from.Self(), o.Msg)
		require.NoError(t, err)
		src, m, err := crdt.Unmarshal(b)
		require.NoError(t, err)
		deliver(t, to, from, to.Handle(src, m), depth+1)
	}
}

// TestRemotePresencesReachSockets: counts changed by another node's presences (replicated
// into the local tracker) reach local sockets as diffs, and so does that node going down.
func TestRemotePresencesReachSockets(t *testing.T) {
	newNamed := func(name string) *tracker.Tracker {
		cfg := tracker.LocalConfig()
		cfg.Name = name
		tr, err := tracker.New(cfg)
		require.NoError(t, err)
		return tr
	}
	remote, local := newNamed("remote"), newNamed("local")
	deliver(t, local, remote, local.ReplicaUp(remote.Self()), 0)
	deliver(t, remote, local, remote.ReplicaUp(local.Self()), 0)

	tg := startGatewayOn(t, local, nil)
	c := tg.dial(t, "vsn=2.0.0")
	c.join("video:1", "1")
	c.expect(stateFrame("1", "video:1", 1, 0))

	_, err := remote.Track(1, "video:1", "zoe", nil)
	require.NoError(t, err)
	_, err = remote.Track(2, "video:1", "", nil)
	require.NoError(t, err)
	deliver(t, remote, local, remote.Tick(time.Now()), 0)
	c.expect(diffFrame("video:1", 1, 1, 0, 0))

	local.ReplicaDown(remote.Self())
	c.expect(diffFrame("video:1", 0, 0, 1, 1))
	require.Equal(t, 1, local.Count("video:1").Connections)
}

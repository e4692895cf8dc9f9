package testcluster_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/testcluster"
)

// TestObserverNeverReplicated: a socket on node 0 observes a topic and a roll-up, then joins
// the topic tracked. Once node 1 counts the tracked join it has everything node 0 sent before
// it (one owner's operations apply in order), and the observers are not among them; once the
// two have converged, node 0 holds its tracked join and node 1's watcher.
func TestObserverNeverReplicated(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 2, Gateways: &testcluster.GatewayOptions{}})
	url := "ws" + strings.TrimPrefix(c.Node(0).URL(), "http") + "/socket/websocket?vsn=2.0.0"
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.Close() })
	for _, j := range [][]any{
		{"1", "1", "video:1", "phx_join", map[string]any{"observe": true}},
		{"2", "2", "video:*", "phx_join", map[string]any{"observe": true}},
		{"3", "3", "video:2", "phx_join", map[string]any{}},
	} {
		require.NoError(t, ws.WriteJSON(j))
	}
	watcher := dialPhx(t, c.Node(1).URL(), "video:2")
	watcher.await([2]int{2, 0}) // node 1 counts the tracked join (and its own watcher)
	// Node 0 may not have node 1's watcher yet: that is the other direction's replication.
	waitConverged(t, c, 30*time.Second)
	n1 := c.Node(1).Tracker()
	require.Equal(t, 0, n1.Count("video:1").Connections, "the observer of video:1 reached node 1")
	require.Equal(t, 2, n1.Stats().Presences, "node 1 holds its watcher and the tracked join only")
	require.Equal(t, 2, c.Node(0).Tracker().Stats().Presences)
}

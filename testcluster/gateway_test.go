package testcluster_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/testcluster"
)

// phxClient is the smallest Phoenix V2 client: join one topic, then keep
// the counts it is told (presence_state, then presence_diffs) up to date.
type phxClient struct {
	t      *testing.T
	ws     *websocket.Conn
	counts chan [2]int // viewers, users after every presence event
}

func dialPhx(t *testing.T, base, topic string) *phxClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(base, "http") + "/socket/websocket?vsn=2.0.0"
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	require.NoError(t, err)
	c := &phxClient{t: t, ws: ws, counts: make(chan [2]int, 64)}
	require.NoError(t, ws.WriteJSON([]any{"1", "1", topic, "phx_join", map[string]any{}}))
	go c.read()
	t.Cleanup(func() { _ = ws.Close() })
	return c
}

type classCounts struct {
	Viewers struct{ Count int } `json:"viewers"`
	Users   struct{ Count int } `json:"users"`
}

func (c *phxClient) read() {
	defer close(c.counts)
	var cur [2]int
	for {
		var frame []json.RawMessage
		if err := c.ws.ReadJSON(&frame); err != nil || len(frame) != 5 {
			return
		}
		var event string
		_ = json.Unmarshal(frame[3], &event)
		switch event {
		case "presence_state":
			var st classCounts
			_ = json.Unmarshal(frame[4], &st)
			cur = [2]int{st.Viewers.Count, st.Users.Count}
		case "presence_diff":
			var d struct{ Joins, Leaves classCounts }
			_ = json.Unmarshal(frame[4], &d)
			cur[0] += d.Joins.Viewers.Count - d.Leaves.Viewers.Count
			cur[1] += d.Joins.Users.Count - d.Leaves.Users.Count
		default:
			continue
		}
		c.counts <- cur
	}
}

// await waits until the client's counts are want.
func (c *phxClient) await(want [2]int) {
	c.t.Helper()
	deadline := time.After(converge)
	var last [2]int
	for {
		select {
		case got, ok := <-c.counts:
			if !ok {
				c.t.Fatalf("socket closed; last counts %v, want %v", last, want)
			}
			if last = got; got == want {
				return
			}
		case <-deadline:
			c.t.Fatalf("counts %v, want %v", last, want)
		}
	}
}

// Browsers connected to different nodes see the same counts, and a crashed
// node's sockets leave the survivors' counts.
func TestGatewaysOnEveryNode(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 3, Gateways: &testcluster.GatewayOptions{}})
	for _, n := range c.Live() {
		require.True(t, strings.HasPrefix(n.URL(), "http://127.0.0.1:"), n.URL())
	}
	a := dialPhx(t, c.Node(0).URL(), "video:1")
	a.await([2]int{1, 0})
	b := dialPhx(t, c.Node(1).URL(), "video:1")
	b.await([2]int{2, 0})
	a.await([2]int{2, 0})
	_, err := c.Node(2).Track("video:1", "user-7") // a signed-in presence, no socket
	require.NoError(t, err)
	a.await([2]int{2, 1})
	b.await([2]int{2, 1})

	require.NoError(t, c.Kill(1))
	a.await([2]int{1, 1})
	c.RequireConverged(t, converge)

	addr := c.Node(1).HTTPAddr()
	require.NoError(t, c.Restart(1))
	require.Equal(t, addr, c.Node(1).HTTPAddr(), "a restarted node serves on the same address")
	b2 := dialPhx(t, c.Node(1).URL(), "video:1")
	b2.await([2]int{2, 1})
	a.await([2]int{2, 1})
}

// Regression: Node.Track and the gateway minted owners from two counters into one tracker's
// owner space. On a one-node cluster with a gateway, a socket's owner equal to a presence's
// owner made the socket's join fail (already tracked), and its close removed that presence.
// Owners now come from one place, Tracker.NewOwner. Enough helper presences are tracked that
// any socket owner the old process-wide counter could hand out in this test binary collides.
func TestRegressionOwnerCollisionBetweenTrackAndGateway(t *testing.T) {
	c := newCluster(t, testcluster.Options{Nodes: 1, Gateways: &testcluster.GatewayOptions{}})
	n := c.Node(0)
	const helpers = 10_000
	for range helpers {
		_, err := n.Track("lobby", "")
		require.NoError(t, err)
	}
	a := dialPhx(t, n.URL(), "lobby")
	a.await([2]int{helpers + 1, 0}) // the join succeeded: presence_state counts the socket
	require.NoError(t, a.ws.Close())
	require.Eventually(t, func() bool { return n.Tracker().Count("lobby").Viewers == helpers },
		converge, 5*time.Millisecond, "the socket's close must remove only its own presence")
}

package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/internal/testlog"
	"github.com/headcount-io/headcount/node"
	"github.com/headcount-io/headcount/tracker"
)

func TestMain(m *testing.M) {
	// memberlist's Shutdown does not wait for an in-flight probe; it ends on its own.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
		goleak.IgnoreAnyFunction("github.com/hashicorp/memberlist.(*Memberlist).handleIndirectPing.func2"))
}

// waitFor bounds every eventual outcome; generous for a loaded machine.
const waitFor = 20 * time.Second

var labels atomic.Uint64

// testConfig is a node on loopback: fast gossip (with a label of its own, so concurrent test
// binaries never mix) and a gateway without connection limits, served on an ephemeral port.
func testConfig(t *testing.T, name string) node.Config {
	cfg := node.LocalConfig()
	cfg.Name = name
	g := gossip.TestConfig()
	g.BindAddr, g.BindPort = "127.0.0.1", 0
	g.Label = "node-test-" + strconv.FormatUint(labels.Add(1), 10)
	cfg.Gossip = &g
	cfg.Gateway.MaxConns, cfg.Gateway.MaxConnsPerIP = 0, 0
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cfg.Listener = ln
	cfg.Logger = testlog.New(t, slog.LevelWarn)
	return cfg
}

func start(t *testing.T, cfg node.Config) *node.Node {
	t.Helper()
	n, err := node.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// joinSocket opens a Phoenix V2 socket on n, joins topic and waits for the join's reply.
func joinSocket(t *testing.T, n *node.Node, topic string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+n.HTTPAddr()+"/socket/websocket?vsn=2.0.0", nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ws.Close() })
	require.NoError(t, ws.WriteJSON([]any{"1", "1", topic, "phx_join", map[string]any{}}))
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(waitFor)))
	_, msg, err := ws.ReadMessage()
	require.NoError(t, err)
	require.Contains(t, string(msg), `"status":"ok"`, "join reply")
	return ws
}

// A single node (no gossip) ticks its own tracker, serves sockets, the count API, its own
// member row and its metrics with the node label, and stops in order.
func TestSingleNode(t *testing.T) {
	cfg := testConfig(t, "solo")
	cfg.Gossip = nil
	n := start(t, cfg)
	require.True(t, n.Ready())
	require.Nil(t, n.Gossip())
	base := "http://" + n.HTTPAddr()

	ws := joinSocket(t, n, "lobby")
	_, err := n.Tracker().Track(n.Tracker().NewOwner(), "lobby", "ada", nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, body := get(t, base+"/v1/topics/lobby")
		return strings.Contains(body, `"viewers":{"count":1},"users":{"count":1}`)
	}, waitFor, 5*time.Millisecond)
	require.Eventually(t, func() bool { return n.Tracker().Stats().DeltasSent > 0 }, waitFor, 5*time.Millisecond,
		"the built-in loop flushes local operations")

	code, body := get(t, base+"/v1/members")
	require.Equal(t, http.StatusOK, code)
	var members struct {
		Node    string
		Members []gossip.Member
	}
	require.NoError(t, json.Unmarshal([]byte(body), &members))
	require.Equal(t, "solo", members.Node)
	require.Len(t, members.Members, 1)
	require.True(t, members.Members[0].Self)
	require.Equal(t, n.Tracker().Self().Epoch, members.Members[0].Epoch)

	code, body = get(t, base+"/metrics")
	require.Equal(t, http.StatusOK, code)
	for _, m := range []string{`headcount_tracker_presences{node="solo"} 2`, `headcount_gateway_connections{node="solo"} 1`} {
		require.Contains(t, body, m)
	}
	code, _ = get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code)

	require.NoError(t, n.Leave(context.Background()))
	require.False(t, n.Ready())
	requireGoingAway(t, ws)
	require.ErrorIs(t, n.Leave(context.Background()), node.ErrClosed)
	require.NoError(t, n.Close())
	_, err = n.Tracker().Track(n.Tracker().NewOwner(), "lobby", "", nil)
	require.Error(t, err, "a node that left refuses new presences")
}

// requireGoingAway reads ws until it closes and requires close code 1001.
func requireGoingAway(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	require.NoError(t, ws.SetReadDeadline(time.Now().Add(waitFor)))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		require.True(t, errors.As(err, &ce), "socket ended with %v, not a close frame", err)
		require.Equal(t, websocket.CloseGoingAway, ce.Code)
		return
	}
}

// Every node's /v1/members lists the whole cluster, with each member's HTTP address (the
// embedding example's promise).
func TestMembersListWholeCluster(t *testing.T) {
	ca, cb := testConfig(t, "a"), testConfig(t, "b")
	a := start(t, ca)
	cb.Gossip.Label, cb.Gossip.Join = ca.Gossip.Label, []string{a.Gossip().Addr()}
	b := start(t, cb)
	for _, n := range []*node.Node{a, b} {
		require.Eventually(t, func() bool {
			_, body := get(t, "http://"+n.HTTPAddr()+"/v1/members")
			return strings.Contains(body, `"name":"a"`) && strings.Contains(body, `"name":"b"`) &&
				strings.Contains(body, `"http":"`+a.HTTPAddr()+`"`) && strings.Contains(body, `"http":"`+b.HTTPAddr()+`"`)
		}, waitFor, 10*time.Millisecond, "%s's /v1/members", n.Name())
	}
	require.Len(t, b.Members(), 2)
}

// Several nodes may share one registry: each metric carries its node's label, and a stopped
// node's metrics go away so a new one can take its name.
func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	ca, cb := testConfig(t, "a"), testConfig(t, "b")
	ca.Registerer, cb.Registerer = reg, reg
	ca.Gossip, cb.Gossip = nil, nil
	a := start(t, ca)
	start(t, cb)
	series := func() string {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		var b strings.Builder
		for _, mf := range mfs {
			if mf.GetName() == "headcount_tracker_presences" {
				for _, m := range mf.GetMetric() {
					b.WriteString(m.GetLabel()[0].GetValue() + " ")
				}
			}
		}
		return b.String()
	}
	require.Equal(t, "a b ", series())
	require.NoError(t, a.Close())
	require.Equal(t, "b ", series())
	ca2 := testConfig(t, "a")
	ca2.Registerer, ca2.Gossip = reg, nil
	start(t, ca2)
	require.Equal(t, "a b ", series())
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for field, mutate := range map[string]func(*node.Config){
		"Name":            func(c *node.Config) { c.Name = "" },
		"Tracker.Name":    func(c *node.Config) { c.Tracker.Name = "other" },
		"Gossip.Name":     func(c *node.Config) { c.Gossip.Name = "other" },
		"Stop.Goodbye":    func(c *node.Config) { c.Stop.Goodbye = 0 },
		"Stop.Drain":      func(c *node.Config) { c.Stop.Drain = -1 },
		"Stop.Sockets":    func(c *node.Config) { c.Stop.Sockets = 0 },
		"Gateway.Tracker": func(c *node.Config) { c.Gateway.Tracker = newTracker(t) },
	} {
		cfg := node.LocalConfig()
		cfg.Name = "n"
		mutate(&cfg)
		_, err := node.New(cfg)
		require.ErrorIs(t, err, node.ErrInvalidConfig, field)
		require.Contains(t, err.Error(), field)
	}
	// A section's own error names the section.
	cfg := node.LocalConfig()
	cfg.Name = "n"
	cfg.Tracker.MaxDeltaOps = 0
	_, err := node.New(cfg)
	require.ErrorContains(t, err, "node: Tracker:")
	require.ErrorContains(t, err, "MaxDeltaOps")
}

func newTracker(t *testing.T) *tracker.Tracker {
	cfg := tracker.LocalConfig()
	cfg.Name = "other"
	tr, err := tracker.New(cfg)
	require.NoError(t, err)
	return tr
}

// TestSeparateAdmin pins issue 10: /metrics and /v1/members (node names, gossip addresses,
// epochs) were public on the browser port. With SeparateAdmin they are only on AdminHandler.
func TestSeparateAdmin(t *testing.T) {
	cfg := testConfig(t, "admin")
	cfg.Gossip, cfg.SeparateAdmin = nil, true
	n := start(t, cfg)
	admin := httptest.NewServer(n.AdminHandler())
	defer admin.Close()
	base := "http://" + n.HTTPAddr()
	for _, path := range []string{"/metrics", "/v1/members"} {
		code, _ := get(t, base+path)
		require.Equal(t, http.StatusNotFound, code, "%s on the public handler", path)
		code, body := get(t, admin.URL+path)
		require.Equal(t, http.StatusOK, code, path)
		require.NotEmpty(t, body)
	}
	code, _ := get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code)
	code, _ = get(t, admin.URL+"/healthz")
	require.Equal(t, http.StatusNotFound, code)
	joinSocket(t, n, "room:a") // sockets stay on the public handler
}

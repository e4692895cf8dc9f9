package wsgateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/internal/solo"
	"github.com/headcount-io/headcount/internal/testlog"
	"github.com/headcount-io/headcount/tracker"
)

// waitFor bounds every eventual outcome in these tests; generous for a loaded machine.
const waitFor = 20 * time.Second

var testSecret = []byte("test-secret-0123456789")

// testLogger routes slog to t.Log.
func testLogger(t testing.TB) *slog.Logger { return testlog.New(t, slog.LevelDebug) }

type testGateway struct {
	g   *Gateway
	tr  *tracker.Tracker
	reg *prometheus.Registry // the gateway's metrics, served at /metrics
	srv *httptest.Server
	url string // ws://127.0.0.1:port/socket/websocket
}

func newTracker(t testing.TB) *tracker.Tracker {
	cfg := tracker.LocalConfig()
	cfg.Name = "test"
	tr, err := tracker.New(cfg)
	require.NoError(t, err)
	t.Cleanup(solo.Start(tr)) // no peers: the single node's tick loop flushes its operations
	return tr
}

// startGateway runs a gateway on loopback with a real tracker; mutate adjusts its Config.
func startGateway(t testing.TB, mutate func(*Config)) *testGateway {
	t.Helper()
	return startGatewayOn(t, newTracker(t), mutate)
}

// testConfig is the tests' gateway Config over tr (changed by mutate, if not nil) and the
// registry it reports to.
func testConfig(t testing.TB, tr *tracker.Tracker, mutate func(*Config)) (Config, *prometheus.Registry) {
	cfg := DefaultConfig()
	reg := prometheus.NewRegistry()
	cfg.Tracker = tr
	cfg.Registerer = reg
	cfg.JWTSecret = testSecret
	cfg.Logger = testLogger(t)
	if mutate != nil {
		mutate(&cfg)
	}
	return cfg, reg
}

// startGatewayOn runs a gateway on loopback over tr.
func startGatewayOn(t testing.TB, tr *tracker.Tracker, mutate func(*Config)) *testGateway {
	t.Helper()
	cfg, reg := testConfig(t, tr, mutate)
	g, err := New(cfg)
	require.NoError(t, err)
	mux := http.NewServeMux() // /metrics as package node serves it
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", g.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		require.NoError(t, g.Shutdown(ctx))
		srv.Close()
	})
	return &testGateway{g: g, tr: tr, reg: reg, srv: srv, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket/websocket"}
}

// client is a test WebSocket client speaking raw frames.
type client struct {
	t  testing.TB
	ws *websocket.Conn
}

// dial connects with the given query (e.g. "vsn=2.0.0&token=...") and fails the test on error.
func (tg *testGateway) dial(t testing.TB, query string) *client {
	t.Helper()
	c, resp, err := tg.tryDial(query, nil, nil)
	if resp != nil {
		resp.Body.Close()
	}
	require.NoError(t, err)
	t.Cleanup(func() { c.ws.Close() })
	c.t = t
	return c
}

// tryDial connects and returns the handshake response (status for refusals).
func (tg *testGateway) tryDial(query string, header http.Header, subprotocols []string) (*client, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: waitFor, Subprotocols: subprotocols}
	u := tg.url
	if query != "" {
		u += "?" + query
	}
	ws, resp, err := d.Dial(u, header)
	if err != nil {
		return nil, resp, err
	}
	return &client{ws: ws}, resp, nil
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	require.NoError(c.t, c.ws.WriteMessage(websocket.TextMessage, []byte(s)))
}

// read returns the next frame as raw text.
func (c *client) read() string {
	c.t.Helper()
	require.NoError(c.t, c.ws.SetReadDeadline(time.Now().Add(waitFor)))
	mt, data, err := c.ws.ReadMessage()
	require.NoError(c.t, err)
	require.Equal(c.t, websocket.TextMessage, mt)
	return string(data)
}

// expect reads the next frame and compares it, as JSON, with want.
func (c *client) expect(want string) {
	c.t.Helper()
	got := c.read()
	requireJSONEq(c.t, want, got)
}

func requireJSONEq(t testing.TB, want, got string) {
	t.Helper()
	var w, g any
	require.NoError(t, json.Unmarshal([]byte(want), &w), "want is not JSON: %s", want)
	require.NoError(t, json.Unmarshal([]byte(got), &g), "got is not JSON: %s", got)
	if !reflect.DeepEqual(w, g) {
		t.Fatalf("frame mismatch\nwant %s\n got %s", want, got)
	}
}

// expectCloseFrame reads until the server closes and returns the close frame.
func (c *client) expectCloseFrame() *websocket.CloseError {
	c.t.Helper()
	require.NoError(c.t, c.ws.SetReadDeadline(time.Now().Add(waitFor)))
	for {
		_, _, err := c.ws.ReadMessage()
		if err == nil {
			continue
		}
		ce, ok := err.(*websocket.CloseError)
		require.True(c.t, ok, "want a close frame, got %v", err)
		return ce
	}
}

// expectClose reads until the server closes and returns the close code.
func (c *client) expectClose() int {
	c.t.Helper()
	return c.expectCloseFrame().Code
}

// join sends a V2 join with join_ref == ref == jr and checks the reply.
func (c *client) join(topic, jr string) {
	c.t.Helper()
	c.sendRaw(fmt.Sprintf(`[%q,%q,%q,"phx_join",{}]`, jr, jr, topic))
	c.expect(fmt.Sprintf(`[%q,%q,%q,"phx_reply",{"status":"ok","response":{}}]`, jr, jr, topic))
}

func token(t testing.TB, user string, ttl time.Duration) string {
	t.Helper()
	tok, err := MintToken(testSecret, user, "", "", ttl, time.Now())
	require.NoError(t, err)
	return tok
}

func stateFrame(jr, topic string, viewers, users int) string {
	return fmt.Sprintf(`[%q,null,%q,"presence_state",{"viewers":{"count":%d},"users":{"count":%d}}]`, jr, topic, viewers, users)
}

func diffFrame(topic string, jv, ju, lv, lu int) string {
	return fmt.Sprintf(`[null,null,%q,"presence_diff",{"joins":{"viewers":{"count":%d},"users":{"count":%d}},"leaves":{"viewers":{"count":%d},"users":{"count":%d}}}]`,
		topic, jv, ju, lv, lu)
}

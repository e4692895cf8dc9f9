package wsgateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/headcount-io/headcount/internal/solo"
	"github.com/headcount-io/headcount/tracker"
	"github.com/stretchr/testify/require"
)

// TestTextFrameNotUTF8ClosesWith1007 pins issue 10: a text frame with invalid UTF-8 fails the
// connection with 1007 (RFC 6455 section 8.1) instead of joining "room:\ufffd\ufffd".
func TestTextFrameNotUTF8ClosesWith1007(t *testing.T) {
	tg := startGateway(t, nil)
	for _, vsn := range []string{"vsn=2.0.0", "vsn=1.0.0"} {
		c := tg.dial(t, vsn)
		frame := "[\"1\",\"1\",\"room:\xff\xfe\",\"phx_join\",{}]"
		if vsn == "vsn=1.0.0" {
			frame = "{\"topic\":\"room:\xff\xfe\",\"event\":\"phx_join\",\"payload\":{},\"ref\":\"1\"}"
		}
		require.NoError(t, c.ws.WriteMessage(websocket.TextMessage, []byte(frame)))
		require.Equal(t, websocket.CloseInvalidFramePayloadData, c.expectClose(), vsn)
		require.Equal(t, tracker.Counts{}, tg.tr.Count("room:\ufffd\ufffd"), vsn)
	}
}

// TestOriginDefaultDoesNotTrustHost pins issue 10: the default Origin rule compared the Origin
// with the request's Host, which a DNS-rebinding page controls too.
func TestOriginDefaultDoesNotTrustHost(t *testing.T) {
	var logs lockedLog
	tg := startGateway(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	port := tg.srv.Listener.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		origin, host string
		ok           bool
	}{
		{"http://rebind.evil.example:" + strconv.Itoa(port), "rebind.evil.example:" + strconv.Itoa(port), false},
		{"http://rebind.evil.example", "rebind.evil.example", false},
		{"http://10.0.0.5:4000", "10.0.0.5:4000", false}, // not named by the operator
		{"http://127.0.0.1:" + strconv.Itoa(port), "127.0.0.1:" + strconv.Itoa(port), true},
		{"http://localhost:" + strconv.Itoa(port), "localhost:" + strconv.Itoa(port), true},
		{"http://[::1]:4000", "[::1]:4000", true},
		{"http://127.0.0.1:9999", "127.0.0.1:" + strconv.Itoa(port), false}, // another local page
	} {
		h := http.Header{"Origin": {tc.origin}}
		h.Set("Host", tc.host)
		status := dialStatus(t, tg, h)
		if tc.ok != (status == http.StatusSwitchingProtocols) {
			t.Errorf("Origin %s Host %s: status %d, want allowed=%v", tc.origin, tc.host, status, tc.ok)
		}
	}
	// The refusal is logged once (rate-limited), naming the flag to set.
	require.Equal(t, 1, strings.Count(logs.String(), "--allowed-origins"), logs.String())
	require.Contains(t, logs.String(), "rebind.evil.example")
}

func TestOriginNamedByTheOperator(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.AllowedOrigins = []string{"https://count.example.com/"} })
	for origin, want := range map[string]int{
		"https://count.example.com":     http.StatusSwitchingProtocols,
		"https://COUNT.example.com":     http.StatusSwitchingProtocols,
		"https://rebind.evil.example":   http.StatusForbidden,
		"http://count.example.com":      http.StatusForbidden,
		"https://count.example.com:444": http.StatusForbidden,
	} {
		h := http.Header{"Origin": {origin}}
		h.Set("Host", strings.TrimPrefix(strings.TrimPrefix(origin, "https://"), "http://"))
		require.Equal(t, want, dialStatus(t, tg, h), origin)
	}
}

func TestOriginLogIsRateLimited(t *testing.T) {
	var l originLog
	t0 := time.Unix(1000, 0)
	ok, n := l.allow(t0)
	require.True(t, ok)
	require.Zero(t, n)
	for i := 1; i <= 5; i++ {
		ok, _ = l.allow(t0.Add(time.Duration(i) * time.Second))
		require.False(t, ok)
	}
	ok, n = l.allow(t0.Add(originLogEvery))
	require.True(t, ok)
	require.Equal(t, 5, n)
}

// dialStatus opens a socket with header and returns the handshake's HTTP status.
func dialStatus(t *testing.T, tg *testGateway, header http.Header) int {
	t.Helper()
	c, resp, err := tg.tryDial("vsn=2.0.0", header, nil)
	if err == nil {
		c.ws.Close()
	}
	require.NotNil(t, resp, "dial: %v", err)
	resp.Body.Close()
	return resp.StatusCode
}

// lockedLog is a log sink safe for concurrent writers.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemoTokensHaveAKeyOfTheirOwn pins issue 10: demo tokens were signed with the real JWT
// key, so they were valid on every node of the cluster and made an oracle.
func TestDemoTokensHaveAKeyOfTheirOwn(t *testing.T) {
	tr := newTracker(t)
	demo := startGatewayOn(t, tr, func(c *Config) { c.DemoTokens = true })
	plain := startGatewayOn(t, tr, nil) // same JWTSecret, no --demo-tokens
	tok := demoToken(t, demo, "eve")

	c := demo.dial(t, "vsn=2.0.0&token="+tok)
	c.join("room:a", "1")
	c.expect(stateFrame("1", "room:a", 0, 1))
	// Real tokens still work on the demo node.
	c2 := demo.dial(t, "vsn=2.0.0&token="+token(t, "bob", time.Hour))
	c2.join("room:b", "1")
	c2.expect(stateFrame("1", "room:b", 0, 1))

	_, resp, err := plain.tryDial("vsn=2.0.0&token="+tok, nil, nil)
	require.Error(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "a demo token must not be valid on a node without demo tokens")
	real, err := NewJWTAuthenticator(JWTConfig{Keys: Keys{HMAC: [][]byte{testSecret}}})
	require.NoError(t, err)
	_, err = real.Authenticate(nil, tok)
	require.ErrorIs(t, err, ErrUnauthorized, "a demo token must not be signed with the real JWT key")

	// Nodes given one DemoTokenKey accept each other's demo tokens; it needs no JWT key.
	key := []byte("demo-key-0123456789abcdef")
	a := startGatewayOn(t, tr, func(c *Config) { c.DemoTokens, c.DemoTokenKey, c.JWTSecret = true, key, nil })
	b := startGatewayOn(t, tr, func(c *Config) { c.DemoTokens, c.DemoTokenKey, c.JWTSecret = true, key, nil })
	cb := b.dial(t, "vsn=2.0.0&token="+demoToken(t, a, "zoe"))
	cb.join("room:c", "1")
	cb.expect(stateFrame("1", "room:c", 0, 1))
}

func demoToken(t *testing.T, tg *testGateway, user string) string {
	t.Helper()
	resp, err := http.Post(tg.srv.URL+"/v1/demo/token?user="+user, "", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out struct {
		Token string `json:"token"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.Token
}

// TestNodeCapsRefuseJoins pins issue 10: joins over the node's caps on presences and topics
// get a clear error reply and count in a metric; the socket and others' presences are kept.
func TestNodeCapsRefuseJoins(t *testing.T) {
	cfg := tracker.LocalConfig()
	cfg.Name = "test"
	cfg.MaxLocalPresences, cfg.MaxLocalTopics = 3, 2
	tr, err := tracker.New(cfg)
	require.NoError(t, err)
	t.Cleanup(solo.Start(tr))
	tg := startGatewayOn(t, tr, nil)
	c := tg.dial(t, "vsn=2.0.0")
	c.join("room:a", "1")
	c.expect(stateFrame("1", "room:a", 1, 0))
	c.join("room:b", "2")
	c.expect(stateFrame("2", "room:b", 1, 0))
	c.sendRaw(`["3","3","room:c","phx_join",{}]`)
	c.expect(`["3","3","room:c","phx_reply",{"status":"error","response":{"reason":"too many topics on this node"}}]`)
	d := tg.dial(t, "vsn=2.0.0")
	d.join("room:a", "1")
	d.expect(stateFrame("1", "room:a", 2, 0))
	d.sendRaw(`["2","2","room:b","phx_join",{}]`)
	d.expect(`["2","2","room:b","phx_reply",{"status":"error","response":{"reason":"too many presences on this node"}}]`)
	require.Equal(t, 1.0, metricValue(t, tg, `headcount_gateway_errors_total{kind="node_topic_limit"}`))
	require.Equal(t, 1.0, metricValue(t, tg, `headcount_gateway_errors_total{kind="node_presence_limit"}`))
	// Still open, still counted (d gets no diffs: room:a has not changed since it joined).
	d.sendRaw(`[null,"9","phoenix","heartbeat",{}]`)
	d.expect(`[null,"9","phoenix","phx_reply",{"status":"ok","response":{}}]`)
	require.Equal(t, tracker.Counts{Viewers: 2, Connections: 2}, tr.Count("room:a"))
}

// TestPipelinedRejoinIsNotASlowConsumer pins issue 10: a client that pipelines one leave+join
// batch of 100 channels (400 answers) before reading was closed with 1008, because the limit
// counted frames. Unread bytes are bounded instead, and the reader waits for room.
func TestPipelinedRejoinIsNotASlowConsumer(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.JoinRate, c.JoinBurst = 1e6, 1000 })
	c := tg.dial(t, "vsn=2.0.0")
	for i := 0; i < 100; i++ {
		c.sendRaw(fmt.Sprintf(`["j%d","j%d","old:%d","phx_join",{}]`, i, i, i))
	}
	for i := 0; i < 200; i++ { // reply and presence_state of each join
		c.read()
	}
	var batch []string
	for i := 0; i < 100; i++ {
		batch = append(batch, fmt.Sprintf(`["j%d","l%d","old:%d","phx_leave",{}]`, i, i, i),
			fmt.Sprintf(`["n%d","n%d","new:%d","phx_join",{}]`, i, i, i))
	}
	for _, f := range batch { // all sent before reading anything
		c.sendRaw(f)
	}
	oks := 0
	for i := 0; i < 400; i++ {
		if strings.Contains(c.read(), `"status":"ok"`) {
			oks++
		}
	}
	require.Equal(t, 200, oks, "every leave and join answered ok")
	require.Equal(t, 0.0, metricValue(t, tg, `headcount_gateway_errors_total{kind="slow_consumer"}`))
	require.Equal(t, 1, tg.tr.Count("new:99").Connections)
}

package wsgateway

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// trackN joins topic from n new anonymous sockets (and users, one socket each).
func trackN(t *testing.T, tg *testGateway, topic string, n int, users ...string) {
	t.Helper()
	for range n {
		c := tg.dial(t, "vsn=2.0.0")
		c.join(topic, "1")
		c.read() // presence_state
	}
	for _, u := range users {
		c := tg.dial(t, "vsn=2.0.0&token="+token(t, u, time.Hour))
		c.join(topic, "1")
		c.read()
	}
}

func TestTopicsAPIList(t *testing.T) {
	tg := startGateway(t, nil)
	trackN(t, tg, "video:1", 2, "alice")
	trackN(t, tg, "video:2", 0, "alice", "bob")
	status, body := get(t, tg.srv.URL+"/v1/topics?topic=video:2&topic=nobody&topic=video:1&topic="+url.QueryEscape("video:*"))
	require.Equal(t, http.StatusOK, status, body)
	requireJSONEq(t, `{"topics":[
		{"topic":"video:2","viewers":{"count":0},"users":{"count":2},"connections":{"count":2}},
		{"topic":"nobody","viewers":{"count":0},"users":{"count":0},"connections":{"count":0}},
		{"topic":"video:1","viewers":{"count":2},"users":{"count":1},"connections":{"count":3}},
		{"topic":"video:*","viewers":{"count":2},"users":{"count":2},"connections":{"count":5}}]}`, body)

	// The single-topic endpoint serves roll-ups too.
	status, body = get(t, tg.srv.URL+"/v1/topics/"+url.PathEscape("video:*"))
	require.Equal(t, http.StatusOK, status)
	requireJSONEq(t, `{"viewers":{"count":2},"users":{"count":2},"connections":{"count":5}}`, body)

	many := strings.Repeat("topic=a&", maxTopicsPerRequest+1)
	for _, q := range []string{"", "topic=a&prefix=b", many, "topic=" + strings.Repeat("x", 300), "prefix=a&limit=0", "prefix=a&limit=x", "prefix=a&limit=1001"} {
		status, _ := get(t, tg.srv.URL+"/v1/topics?"+q)
		require.Equal(t, http.StatusBadRequest, status, q)
	}
	status, _ = get(t, tg.srv.URL+"/v1/topics?"+strings.Repeat("topic=a&", maxTopicsPerRequest))
	require.Equal(t, http.StatusOK, status, "1,000 topics are allowed")
}

func TestTopicsAPIBusiest(t *testing.T) {
	tg := startGateway(t, nil)
	trackN(t, tg, "video:a", 1)
	trackN(t, tg, "video:b", 3, "u1")
	trackN(t, tg, "video:c", 0, "u1", "u2")
	trackN(t, tg, "live:x", 6)
	status, body := get(t, tg.srv.URL+"/v1/topics?prefix=video:&limit=2")
	require.Equal(t, http.StatusOK, status, body)
	requireJSONEq(t, `{"topics":[
		{"topic":"video:b","viewers":{"count":3},"users":{"count":1},"connections":{"count":4}},
		{"topic":"video:c","viewers":{"count":0},"users":{"count":2},"connections":{"count":2}}],
		"total":{"viewers":{"count":4},"users":{"count":2},"connections":{"count":7}}}`, body)

	status, body = get(t, tg.srv.URL+"/v1/topics?prefix=")
	require.Equal(t, http.StatusOK, status, body)
	requireJSONEq(t, `{"topics":[
		{"topic":"live:x","viewers":{"count":6},"users":{"count":0},"connections":{"count":6}},
		{"topic":"video:b","viewers":{"count":3},"users":{"count":1},"connections":{"count":4}},
		{"topic":"video:c","viewers":{"count":0},"users":{"count":2},"connections":{"count":2}},
		{"topic":"video:a","viewers":{"count":1},"users":{"count":0},"connections":{"count":1}}],
		"total":{"viewers":{"count":10},"users":{"count":2},"connections":{"count":13}}}`, body)

	// The ranking follows churn without a rescan.
	trackN(t, tg, "video:a", 4)
	status, body = get(t, tg.srv.URL+"/v1/topics?prefix=video:&limit=1")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"topic":"video:a","viewers":{"count":5}`)
	require.Equal(t, uint64(2), tg.tr.Stats().RollupBuilds)
}

// sseStream opens an event stream and returns a line reader.
func sseStream(t *testing.T, tg *testGateway, path string, header http.Header) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, tg.srv.URL+path, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp, bufio.NewReader(resp.Body)
}

// nextEvent reads one SSE event (skipping comments unless wantComment) as "event|data" or
// ":comment".
func nextEvent(t *testing.T, r *bufio.Reader, wantComment bool) string {
	t.Helper()
	var event, data string
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "" && event != "":
			return event + "|" + data
		case strings.HasPrefix(line, ":"):
			if wantComment {
				return line
			}
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		}
	}
}

func TestSSE(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.SSEHeartbeat = 20 * time.Millisecond })
	trackN(t, tg, "room:a", 1)
	resp, r := sseStream(t, tg, "/v1/topics/room:a/events", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	ev := nextEvent(t, r, false)
	require.Equal(t, `presence_state|{"viewers":{"count":1},"users":{"count":0}}`, ev)
	require.Equal(t, 1, tg.tr.Stats().Presences, "the stream counts no one")

	trackN(t, tg, "room:a", 0, "alice")
	ev = nextEvent(t, r, false)
	require.Equal(t, `presence_diff|{"joins":{"viewers":{"count":0},"users":{"count":1}},"leaves":{"viewers":{"count":0},"users":{"count":0}}}`, ev)
	require.Equal(t, ": heartbeat", nextEvent(t, r, true))

	// A roll-up stream, asking for partial.
	_, r = sseStream(t, tg, "/v1/topics/"+url.PathEscape("room:*")+"/events?partial=true", nil)
	require.Equal(t, `presence_state|{"viewers":{"count":1},"users":{"count":1},"partial":false}`, nextEvent(t, r, false))

	status, _ := get(t, tg.srv.URL+"/v1/topics/phoenix/events")
	require.Equal(t, http.StatusBadRequest, status)
}

func TestSSEStreamEndsAtShutdown(t *testing.T) {
	tg := startGateway(t, nil)
	_, r := sseStream(t, tg, "/v1/topics/room:a/events", nil)
	nextEvent(t, r, false)
	require.NoError(t, tg.g.Shutdown(t.Context()))
	_, err := r.ReadString('\n')
	require.Error(t, err, "the stream ends")
}

func TestCORS(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.CORSOrigins = []string{"https://*.example.com", "http://localhost:3000"} })
	do := func(method, path, origin string, hdr ...string) *http.Response {
		req, err := http.NewRequest(method, tg.srv.URL+path, nil)
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	for _, path := range []string{"/v1/topics?topic=a", "/v1/topics/a"} {
		resp := do(http.MethodGet, path, "https://app.example.com")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Equal(t, "https://app.example.com", resp.Header.Get("Access-Control-Allow-Origin"), path)
		resp = do(http.MethodGet, path, "http://LOCALHOST:3000")
		require.Equal(t, "http://LOCALHOST:3000", resp.Header.Get("Access-Control-Allow-Origin"), path)
		resp = do(http.MethodGet, path, "https://example.com.evil.org")
		require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), path)
	}
	resp := do(http.MethodOptions, "/v1/topics/a/events", "https://app.example.com",
		"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "https://app.example.com", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")
	resp = do(http.MethodOptions, "/v1/topics", "https://evil.org", "Access-Control-Request-Method", "GET")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp = do(http.MethodOptions, "/v1/topics", "https://app.example.com", "Access-Control-Request-Method", "DELETE")
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)

	plain := startGateway(t, nil) // no --cors-origins: no CORS headers
	req, err := http.NewRequest(http.MethodGet, plain.srv.URL+"/v1/topics/a", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "https://app.example.com")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
}

func TestOriginMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, origin string
		ok              bool
	}{
		{"*", "https://x.org", true},
		{"https://a.org", "https://A.org", true},
		{"https://a.org", "https://a.org:8443", false},
		{"https://*.a.org", "https://b.a.org", true},
		{"https://*.a.org", "https://a.org", false},
		{"https://*.a.org", "https://b.a.org.evil", false},
		{"http://localhost:*", "http://localhost:5173", true},
	} {
		require.Equal(t, c.ok, originMatch(c.pattern, c.origin), "%s vs %s", c.pattern, c.origin)
	}
}

// TestPartial: while a member is suspect, HTTP counts say "partial": true, a channel that
// asked for it is told (and told again when the member is back), and a channel that did not
// ask never sees the field.
func TestPartial(t *testing.T) {
	var suspect atomic.Bool
	tg := startGateway(t, func(c *Config) {
		c.Partial = suspect.Load
	})
	asks := tg.dial(t, "vsn=2.0.0")
	asks.sendRaw(`["1","1","room:a","phx_join",{"observe":true,"partial":true}]`)
	asks.expect(`["1","1","room:a","phx_reply",{"status":"ok","response":{}}]`)
	asks.expect(`["1",null,"room:a","presence_state",{"viewers":{"count":0},"users":{"count":0},"partial":false}]`)
	plain := tg.dial(t, "vsn=2.0.0")
	plain.observe("room:a", "1")
	plain.expect(stateFrame("1", "room:a", 0, 0))
	_, body := get(t, tg.srv.URL+"/v1/topics?prefix=room:")
	require.NotContains(t, body, "partial")

	suspect.Store(true)
	asks.expect(`[null,null,"room:a","presence_diff",{"joins":{"viewers":{"count":0},"users":{"count":0}},"leaves":{"viewers":{"count":0},"users":{"count":0}},"partial":true}]`)
	_, body = get(t, tg.srv.URL+"/v1/topics?prefix=room:")
	require.Contains(t, body, `"partial":true`)
	_, body = get(t, tg.srv.URL+"/v1/topics?topic=room:a")
	require.Contains(t, body, `"partial":true`)

	trackN(t, tg, "room:a", 1)
	asks.expect(`[null,null,"room:a","presence_diff",{"joins":{"viewers":{"count":1},"users":{"count":0}},"leaves":{"viewers":{"count":0},"users":{"count":0}},"partial":true}]`)
	plain.expect(diffFrame("room:a", 1, 0, 0, 0)) // its first frame since the join: no partial diff
	suspect.Store(false)
	asks.expect(`[null,null,"room:a","presence_diff",{"joins":{"viewers":{"count":0},"users":{"count":0}},"leaves":{"viewers":{"count":0},"users":{"count":0}},"partial":false}]`)
	_, body = get(t, tg.srv.URL+"/v1/topics/room:a")
	require.NotContains(t, body, "partial", fmt.Sprint(body))
}

// TestReadersAreGuarded: the access rules apply to every reader: observer joins (asked as
// AccessObserve), the topics API (a prefix as its roll-up) and event streams.
func TestReadersAreGuarded(t *testing.T) {
	var asked sync.Map // topic -> Access
	tg := startGateway(t, func(c *Config) {
		c.Authorizer = AuthorizerFunc(func(id Identity, topic string, a Access) bool {
			asked.Store(topic, a)
			return MatchTopic([]string{"public:*"}, topic)
		})
	})
	c := tg.dial(t, "vsn=2.0.0")
	c.sendRaw(`["1","1","secret","phx_join",{"observe":true}]`)
	c.expect(errorReply("1", "secret", "unauthorized"))
	c.observe("public:*", "2")
	c.expect(stateFrame("2", "public:*", 0, 0))
	a, _ := asked.Load("public:*")
	require.Equal(t, AccessObserve, a)

	for _, path := range []string{"/v1/topics?topic=public:a&topic=secret", "/v1/topics?prefix=sec", "/v1/topics/secret", "/v1/topics/secret/events"} {
		status, _ := get(t, tg.srv.URL+path)
		require.Equal(t, http.StatusForbidden, status, path)
	}
	status, _ := get(t, tg.srv.URL+"/v1/topics?prefix=public:")
	require.Equal(t, http.StatusOK, status)
	a, _ = asked.Load("public:*")
	require.Equal(t, AccessRead, a, "a prefix listing is a read of its roll-up")
}

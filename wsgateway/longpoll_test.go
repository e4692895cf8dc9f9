package wsgateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/headcount-io/headcount/tracker"
	"github.com/stretchr/testify/require"
)

// lpClient drives /socket/longpoll through the gateway's handler, without a network, so that
// the same helpers work inside a synctest bubble.
type lpClient struct {
	t      testing.TB
	h      http.Handler
	query  string // the socket's params, e.g. "vsn=2.0.0&token=JWT"
	header http.Header
	token  string // the session token, once opened
}

// lpAnswer is one long-poll response.
type lpAnswer struct {
	HTTP     int
	Status   int      `json:"status"`
	Token    string   `json:"token"`
	Messages []string `json:"messages"`
	Header   http.Header
}

func (l *lpClient) do(method, body string) lpAnswer {
	l.t.Helper()
	u := "/socket/longpoll?" + l.query
	if l.token != "" {
		u += "&token=" + url.QueryEscape(l.token)
	}
	req := httptest.NewRequest(method, u, strings.NewReader(body))
	for k, vs := range l.header {
		req.Header[k] = vs
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-ndjson")
	}
	rec := httptest.NewRecorder()
	l.h.ServeHTTP(rec, req)
	a := lpAnswer{HTTP: rec.Code, Header: rec.Header()}
	if method != http.MethodOptions {
		require.NoError(l.t, json.Unmarshal(rec.Body.Bytes(), &a), "body %q", rec.Body.String())
	}
	return a
}

// open starts a session: the first GET is answered 410 with a token.
func (l *lpClient) open() {
	l.t.Helper()
	a := l.do(http.MethodGet, "")
	require.Equal(l.t, http.StatusOK, a.HTTP)
	require.Equal(l.t, 410, a.Status)
	require.True(l.t, strings.HasPrefix(a.Token, lpTokenPrefix), "token %q", a.Token)
	l.token = a.Token
}

// send POSTs frames as one ndjson batch and checks they were taken.
func (l *lpClient) send(frames ...string) {
	l.t.Helper()
	a := l.do(http.MethodPost, strings.Join(frames, "\n"))
	require.Equal(l.t, lpAnswer{HTTP: 200, Status: 200}, lpAnswer{HTTP: a.HTTP, Status: a.Status})
}

// poll GETs once and returns the messages of a 200 (nil for a 204).
func (l *lpClient) poll() []string {
	l.t.Helper()
	a := l.do(http.MethodGet, "")
	require.Equal(l.t, http.StatusOK, a.HTTP)
	require.Contains(l.t, []int{200, 204}, a.Status)
	require.Equal(l.t, l.token, a.Token)
	return a.Messages
}

// expect polls until n frames came and compares them, as JSON, with want.
func (l *lpClient) expect(want ...string) {
	l.t.Helper()
	var got []string
	for i := 0; i < 100 && len(got) < len(want); i++ {
		got = append(got, l.poll()...)
	}
	require.Len(l.t, got, len(want), "frames %v", got)
	for i := range want {
		requireJSONEq(l.t, want[i], got[i])
	}
}

func (tg *testGateway) longPoll(t testing.TB, query string) *lpClient {
	return &lpClient{t: t, h: tg.g.Handler(), query: query}
}

// bubbleGateway is a gateway over a fresh tracker without a listener, for synctest bubbles
// (a real socket would keep the bubble's clock from advancing).
func bubbleGateway(t *testing.T, mutate func(*Config)) *testGateway {
	tr := newTracker(t)
	cfg, reg := testConfig(t, tr, mutate)
	g, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, g.Shutdown(context.Background())) })
	return &testGateway{g: g, tr: tr, reg: reg}
}

const okEmptyReply = `{"status":"ok","response":{}}`

// TestLongPollProtocol walks a session as the phoenix LongPoll client does: 410 with a
// token, ndjson POSTs, 200 with frames in order, 204 when nothing came, and the same channel
// behaviour as a WebSocket (a WebSocket in the topic sees the long-poll client come and go).
func TestLongPollProtocol(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.LongPollHold = 20 * time.Millisecond })
	ws := tg.dial(t, "vsn=2.0.0")
	ws.join("room:a", "1")
	ws.expect(stateFrame("1", "room:a", 1, 0))

	lp := tg.longPoll(t, "vsn=2.0.0")
	lp.open()
	require.Equal(t, 2, tg.g.Connections())
	require.Nil(t, lp.poll(), "a fresh session has nothing to say: 204")

	lp.send(`["3","3","room:a","phx_join",{}]`, `[null,"4","phoenix","heartbeat",{}]`)
	lp.expect(
		`["3","3","room:a","phx_reply",`+okEmptyReply+`]`,
		stateFrame("3", "room:a", 2, 0),
		`[null,"4","phoenix","phx_reply",`+okEmptyReply+`]`,
	)
	require.Equal(t, 2, tg.tr.Count("room:a").Viewers)
	ws.expect(diffFrame("room:a", 1, 0, 0, 0))

	// A diff shared with the WebSocket reaches the long-poll client too.
	other := tg.dial(t, "vsn=2.0.0")
	other.join("room:a", "1")
	lp.expect(diffFrame("room:a", 1, 0, 0, 0))
	ws.expect(diffFrame("room:a", 1, 0, 0, 0))

	lp.send(`["3","5","room:a","phx_leave",{}]`)
	lp.expect(`["3","5","room:a","phx_reply",`+okEmptyReply+`]`, `["3","3","room:a","phx_close",{}]`)
	ws.expect(diffFrame("room:a", 0, 0, 1, 0))
	require.Equal(t, 2, tg.tr.Count("room:a").Viewers)
}

// TestLongPollV1: a session without vsn speaks V1 objects, as a V1 socket does.
func TestLongPollV1(t *testing.T) {
	tg := startGateway(t, nil)
	lp := tg.longPoll(t, "")
	lp.open()
	lp.send(`{"topic":"room:a","event":"phx_join","payload":{},"ref":"1"}`)
	lp.expect(
		`{"join_ref":"1","ref":"1","topic":"room:a","event":"phx_reply","payload":`+okEmptyReply+`}`,
		`{"join_ref":"1","ref":null,"topic":"room:a","event":"presence_state","payload":{"viewers":{"count":1},"users":{"count":0}}}`,
	)
}

// TestLongPollUser: the socket's JWT comes first in the query (the client appends its
// session token after the socket's params) or in X-Phoenix-AuthToken; both count the user.
func TestLongPollUser(t *testing.T) {
	tg := startGateway(t, nil)
	byParam := tg.longPoll(t, "token="+token(t, "alice", time.Hour)+"&vsn=2.0.0")
	byParam.open()
	byParam.send(`["1","1","room:a","phx_join",{}]`)
	byParam.expect(`["1","1","room:a","phx_reply",`+okEmptyReply+`]`, stateFrame("1", "room:a", 0, 1))

	byHeader := tg.longPoll(t, "vsn=2.0.0")
	byHeader.header = http.Header{"X-Phoenix-Authtoken": {token(t, "bob", time.Hour)}}
	byHeader.open()
	byHeader.send(`["1","1","room:a","phx_join",{}]`)
	byHeader.expect(`["1","1","room:a","phx_reply",`+okEmptyReply+`]`, stateFrame("1", "room:a", 0, 2))
}

// TestLongPollRefusals: the WebSocket's rules, answered in the statuses the client acts on.
func TestLongPollRefusals(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxConns = 2; c.AllowedOrigins = []string{"https://ok.example"} })
	refused := func(name, query string, header http.Header, method string, httpStatus, status int) {
		t.Run(name, func(t *testing.T) {
			l := &lpClient{t: t, h: tg.g.Handler(), query: query, header: header}
			a := l.do(method, "")
			require.Equal(t, httpStatus, a.HTTP)
			require.Equal(t, status, a.Status)
			require.Empty(t, a.Token, "no session for a refused request")
		})
	}
	forged, err := MintToken([]byte("another-secret-0123456789"), "mallory", "", "", time.Hour, time.Now())
	require.NoError(t, err)
	refused("vsn", "vsn=3.0.0", nil, http.MethodGet, 403, 403)
	refused("forged token", "vsn=2.0.0&token="+forged, nil, http.MethodGet, 403, 403)
	refused("expired token", "vsn=2.0.0&token="+token(t, "alice", -time.Minute), nil, http.MethodGet, 403, 403)
	refused("forged header", "vsn=2.0.0", http.Header{"X-Phoenix-Authtoken": {forged}}, http.MethodGet, 403, 403)
	refused("origin", "vsn=2.0.0", http.Header{"Origin": {"https://evil.example"}}, http.MethodGet, 403, 403)
	refused("unknown session GET", "vsn=2.0.0&token="+lpToken(), nil, http.MethodGet, 200, 410)
	refused("unknown session POST", "vsn=2.0.0&token="+lpToken(), nil, http.MethodPost, 200, 410)
	refused("POST without session", "vsn=2.0.0", nil, http.MethodPost, 200, 410)
	refused("method", "vsn=2.0.0", nil, http.MethodPut, 400, 500)

	// Sessions count against MaxConns with sockets.
	tg.longPoll(t, "vsn=2.0.0").open()
	tg.dial(t, "vsn=2.0.0")
	refused("conn limit", "vsn=2.0.0", nil, http.MethodGet, 503, 500)
	_, resp, err := tg.tryDial("vsn=2.0.0", nil, nil)
	require.Error(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// TestLongPollCORS: a cross-origin page allowed by AllowedOrigins may read the answers, and
// its preflight (the client sends Content-Type x-ndjson) is answered.
func TestLongPollCORS(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.AllowedOrigins = []string{"https://ok.example"} })
	l := tg.longPoll(t, "vsn=2.0.0")
	l.header = http.Header{"Origin": {"https://ok.example"}, "Access-Control-Request-Method": {"POST"}}
	pre := l.do(http.MethodOptions, "")
	require.Equal(t, http.StatusNoContent, pre.HTTP)
	require.Equal(t, "https://ok.example", pre.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, pre.Header.Get("Access-Control-Allow-Methods"), "POST")
	require.Contains(t, pre.Header.Get("Access-Control-Allow-Headers"), "Content-Type")
	l.open()
	require.Equal(t, 1, tg.g.Connections())

	evil := tg.longPoll(t, "vsn=2.0.0")
	evil.header = http.Header{"Origin": {"https://evil.example"}}
	a := evil.do(http.MethodOptions, "")
	require.Equal(t, http.StatusForbidden, a.HTTP)
	require.Empty(t, a.Header.Get("Access-Control-Allow-Origin"))
}

// TestLongPollBadInputClosesOnlyThatSession: a malformed frame or an oversized line closes
// the session (its presences leave), never another connection.
func TestLongPollBadInputClosesOnlyThatSession(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxFrameBytes = 1024 })
	good := tg.dial(t, "vsn=2.0.0")
	good.join("room:a", "1")
	good.expect(stateFrame("1", "room:a", 1, 0))
	for name, body := range map[string]string{
		"malformed": `["1","1","room:b","phx_join",{}]` + "\n" + `not json`,
		"too big":   `["1","1","room:b","phx_join",{}]` + "\n" + `["1","2","room:b","x",{"p":"` + strings.Repeat("x", 2000) + `"}]`,
		"not utf-8": `["1","1","room:b","phx_join",{}]` + "\n" + "[\"1\",\"2\",\"room:b\",\"x\",{\"p\":\"\xff\"}]",
	} {
		t.Run(name, func(t *testing.T) {
			lp := tg.longPoll(t, "vsn=2.0.0")
			lp.open()
			a := lp.do(http.MethodPost, body)
			require.Equal(t, http.StatusBadRequest, a.HTTP)
			require.Equal(t, 500, a.Status)
			require.Eventually(t, func() bool { return tg.g.Connections() == 1 }, waitFor, 5*time.Millisecond)
			require.Equal(t, 410, lp.do(http.MethodGet, "").Status)
			require.Equal(t, tracker.Counts{}, tg.tr.Count("room:b"), "its join was undone")
			require.Equal(t, 1, tg.tr.Count("room:a").Viewers)
		})
	}
	good.sendRaw(`[null,"9","phoenix","heartbeat",{}]`)
	good.expect(`[null,"9","phoenix","phx_reply",` + okEmptyReply + `]`)
}

// TestLongPollSessionTimeout: a session nobody polls is closed after LongPollSessionTimeout
// and its presence leaves the counts; a client that keeps polling is kept however long.
func TestLongPollSessionTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tg := bubbleGateway(t, func(c *Config) {
			c.LongPollHold = 10 * time.Second
			c.LongPollSessionTimeout = 15 * time.Second
		})
		kept := tg.longPoll(t, "vsn=2.0.0")
		kept.open()
		kept.send(`["1","1","room:a","phx_join",{}]`)
		kept.expect(`["1","1","room:a","phx_reply",`+okEmptyReply+`]`, stateFrame("1", "room:a", 1, 0))

		dropped := tg.longPoll(t, "vsn=2.0.0")
		dropped.open()
		dropped.send(`["1","1","room:a","phx_join",{}]`)
		dropped.expect(`["1","1","room:a","phx_reply",`+okEmptyReply+`]`, stateFrame("1", "room:a", 2, 0))
		require.Equal(t, 2, tg.tr.Count("room:a").Viewers)

		// kept polls in a loop (each poll waits LongPollHold, then 204); dropped stopped.
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		var frames []string
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				frames = append(frames, kept.poll()...)
			}
		}()
		time.Sleep(15*time.Second - time.Millisecond)
		synctest.Wait()
		require.Equal(t, 2, tg.tr.Count("room:a").Viewers, "not yet timed out")
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		require.Equal(t, tracker.Counts{Viewers: 1, Connections: 1}, tg.tr.Count("room:a"))
		require.Equal(t, 1, tg.g.Connections())
		a := dropped.do(http.MethodGet, "")
		require.Equal(t, 410, a.Status, "its token is gone")
		require.Empty(t, a.Token)

		time.Sleep(4 * time.Minute) // far past the timeout: polling keeps a session
		synctest.Wait()
		close(stop)
		wg.Wait()
		require.Equal(t, tracker.Counts{Viewers: 1, Connections: 1}, tg.tr.Count("room:a"))
		require.Len(t, frames, 2, "kept was told of the join and the leave: %v", frames)
		requireJSONEq(t, diffFrame("room:a", 1, 0, 0, 0), frames[0])
		requireJSONEq(t, diffFrame("room:a", 0, 0, 1, 0), frames[1])
	})
}

// TestLongPollShutdown: a waiting poll is answered 410 when the gateway shuts down, so the
// client reconnects (to another node).
func TestLongPollShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tg := bubbleGateway(t, nil)
		lp := tg.longPoll(t, "vsn=2.0.0")
		lp.open()
		lp.send(`["1","1","room:a","phx_join",{}]`)
		lp.expect(`["1","1","room:a","phx_reply",`+okEmptyReply+`]`, stateFrame("1", "room:a", 1, 0))
		answer := make(chan lpAnswer)
		go func() { answer <- lp.do(http.MethodGet, "") }()
		synctest.Wait() // the poll waits
		require.NoError(t, tg.g.Shutdown(context.Background()))
		require.Equal(t, 410, (<-answer).Status)
		require.Equal(t, tracker.Counts{}, tg.tr.Count("room:a"))
		require.Equal(t, 0, tg.g.Connections())
	})
}

// TestLongPollClientThatNeverPolls: frames wait for a poll in a bounded outbox; a client that
// never polls fills it, its writer gives up after WriteTimeout and the session is closed.
func TestLongPollClientThatNeverPolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tg := bubbleGateway(t, func(c *Config) {
			c.WriteTimeout = time.Second
			c.LongPollSessionTimeout = time.Hour // only the writer's timeout can close it
		})
		lp := tg.longPoll(t, "vsn=2.0.0")
		lp.open()
		frames := make([]string, lpOutboxFrames+1)
		for i := range frames {
			frames[i] = fmt.Sprintf(`[null,"%d","phoenix","heartbeat",{}]`, i)
		}
		lp.send(frames[:lpMaxBatch]...)
		lp.send(frames[lpMaxBatch:]...)
		synctest.Wait()
		require.Equal(t, 1, tg.g.Connections(), "the writer waits for a poll")
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, 0, tg.g.Connections())
		require.Equal(t, 1.0, counterOf(t, tg, "write"))
	})
}

// counterOf reads headcount_gateway_errors_total{kind} from the gateway's registry.
func counterOf(t *testing.T, tg *testGateway, kind string) float64 {
	mfs, err := tg.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "headcount_gateway_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" && l.GetValue() == kind {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestLongPollPlainJSONPost: a POST that is not ndjson carries one frame (older clients), and
// a batch over lpMaxBatch frames closes the session.
func TestLongPollPlainJSONPost(t *testing.T) {
	tg := startGateway(t, nil)
	lp := tg.longPoll(t, "vsn=2.0.0")
	lp.open()
	req := httptest.NewRequest(http.MethodPost, "/socket/longpoll?vsn=2.0.0&token="+lp.token,
		strings.NewReader("[\"1\",\"1\",\n\"room:a\",\"phx_join\",{}]"))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	tg.g.Handler().ServeHTTP(rec, req)
	requireJSONEq(t, `{"status":200}`, rec.Body.String())
	lp.expect(`["1","1","room:a","phx_reply",`+okEmptyReply+`]`, stateFrame("1", "room:a", 1, 0))

	batch := make([]string, lpMaxBatch+1)
	for i := range batch {
		batch[i] = fmt.Sprintf(`[null,"%d","phoenix","heartbeat",{}]`, i)
	}
	a := lp.do(http.MethodPost, strings.Join(batch, "\n"))
	require.Equal(t, 500, a.Status)
	require.Eventually(t, func() bool { return tg.g.Connections() == 0 }, waitFor, 5*time.Millisecond)
	require.Equal(t, tracker.Counts{}, tg.tr.Count("room:a"))
}

// TestLongPollTokenExpiry: a session whose token expires is closed as a socket would be
// (4001 for a socket); its presence leaves and its next poll gets 410, so the client opens
// a new session, with a new token or none.
func TestLongPollTokenExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tg := bubbleGateway(t, func(c *Config) { c.LongPollSessionTimeout, c.LongPollHold = time.Hour, time.Minute })
		lp := tg.longPoll(t, "vsn=2.0.0&token="+token(t, "alice", 30*time.Second))
		lp.open()
		lp.send(`["1","1","room:a","phx_join",{}]`)
		lp.expect(`["1","1","room:a","phx_reply",`+okEmptyReply+`]`, stateFrame("1", "room:a", 0, 1))
		answer := make(chan lpAnswer)
		go func() { answer <- lp.do(http.MethodGet, "") }()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		require.Equal(t, 410, (<-answer).Status)
		require.Equal(t, tracker.Counts{}, tg.tr.Count("room:a"))
		require.Equal(t, 1.0, counterOf(t, tg, "token_expired"))
	})
}

// TestLongPollOutlivesServerWriteTimeout: a poll held longer than the http.Server's
// WriteTimeout is still answered (the handler extends its own write deadline).
func TestLongPollOutlivesServerWriteTimeout(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.LongPollHold = 300 * time.Millisecond })
	srv := httptest.NewUnstartedServer(tg.g.Handler())
	srv.Config.WriteTimeout = 50 * time.Millisecond
	srv.Start()
	t.Cleanup(srv.Close)
	get := func(token string) map[string]any {
		u := srv.URL + "/socket/longpoll?vsn=2.0.0"
		if token != "" {
			u += "&token=" + token
		}
		resp, err := http.Get(u)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return body
	}
	opened := get("")
	require.Equal(t, 410.0, opened["status"])
	require.Equal(t, 204.0, get(opened["token"].(string))["status"])
}

// TestLongPollListPageRejoin: a list page over long-poll joins 1,000 observed channels in
// POSTs of 100 (as the client batches them) while it polls; its answers outrun the session's
// outbox, so the POSTs wait for room (as a WebSocket's reader does) instead of the session
// being closed as a slow consumer.
func TestLongPollListPageRejoin(t *testing.T) {
	tg := startGateway(t, nil)
	lp := tg.longPoll(t, "vsn=2.0.0")
	lp.open()
	const n = 1000
	var got []string
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for i := 0; i < 10*n && len(got) < 2*n; i++ {
			a := lp.do(http.MethodGet, "")
			if a.Status != 200 && a.Status != 204 {
				return
			}
			got = append(got, a.Messages...)
		}
	}()
	for b := 0; b < n/lpMaxBatch; b++ {
		batch := make([]string, lpMaxBatch)
		for i := range batch {
			k := b*lpMaxBatch + i
			batch[i] = fmt.Sprintf(`["%d","%d","list:%d","phx_join",{"observe":true}]`, k, k, k)
		}
		lp.send(batch...)
	}
	<-polled
	require.Len(t, got, 2*n, "a reply and a presence_state per join")
	for i := 0; i < n; i++ {
		requireJSONEq(t, fmt.Sprintf(`["%d","%d","list:%d","phx_reply",`+okEmptyReply+`]`, i, i, i), got[2*i])
	}
	require.Equal(t, 0.0, counterOf(t, tg, "slow_consumer"))
	require.Equal(t, 1, tg.g.Connections())
}

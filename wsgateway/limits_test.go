package wsgateway

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/headcount-io/headcount/tracker"
	"github.com/stretchr/testify/require"
)

func TestMaxConns(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxConns = 2 })
	tg.dial(t, "vsn=2.0.0")
	second := tg.dial(t, "vsn=2.0.0")
	_, resp, err := tg.tryDial("vsn=2.0.0", nil, nil)
	require.Error(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	// A freed slot can be used again.
	require.NoError(t, second.ws.Close())
	require.Eventually(t, func() bool { return tg.g.Connections() == 1 }, waitFor, 5*time.Millisecond)
	tg.dial(t, "vsn=2.0.0")
}

func TestMaxConnsPerIP(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxConnsPerIP = 1 })
	tg.dial(t, "vsn=2.0.0")
	_, resp, err := tg.tryDial("vsn=2.0.0", nil, nil)
	require.Error(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
}

// TestIdleTimeout checks that a silent socket is closed with 1001 (so a live phoenix client
// reconnects) and its presence untracked.
func TestIdleTimeout(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.IdleTimeout = time.Second })
	c := tg.dial(t, "vsn=2.0.0")
	c.join("room:a", "1")
	c.expect(stateFrame("1", "room:a", 1, 0))
	require.Equal(t, websocket.CloseGoingAway, c.expectClose())
	require.Eventually(t, func() bool { return tg.tr.Count("room:a") == tracker.Counts{} }, waitFor, 5*time.Millisecond)
}

// TestHeartbeatsKeepSocketOpen: frames reset the idle timer.
func TestHeartbeatsKeepSocketOpen(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.IdleTimeout = 2 * time.Second })
	c := tg.dial(t, "vsn=2.0.0")
	deadline := time.Now().Add(3 * time.Second) // longer than IdleTimeout
	for i := 0; time.Now().Before(deadline); i++ {
		c.sendRaw(`[null,"1","phoenix","heartbeat",{}]`)
		c.expect(`[null,"1","phoenix","phx_reply",` + okEmpty + `]`)
		time.Sleep(100 * time.Millisecond) // pacing the client, not synchronising
	}
	require.Equal(t, 1, tg.g.Connections())
}

// TestShutdown closes sockets with 1001, untracks them, refuses new ones and is idempotent.
func TestShutdown(t *testing.T) {
	tg := startGateway(t, nil)
	c := tg.dial(t, "vsn=2.0.0")
	c.join("room:a", "1")
	c.expect(stateFrame("1", "room:a", 1, 0))
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, tg.g.Shutdown(ctx))
	require.Equal(t, websocket.CloseGoingAway, c.expectClose())
	require.Equal(t, 0, tg.tr.Count("room:a").Connections)
	require.NoError(t, tg.g.Shutdown(ctx))
	_, resp, err := tg.tryDial("vsn=2.0.0", nil, nil)
	require.Error(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	r, err := http.Get(tg.srv.URL + "/readyz")
	require.NoError(t, err)
	r.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, r.StatusCode)
}

// newBareConn is a socket without a network connection or writer, to test queueing.
func newBareConn(t *testing.T, g *Gateway) *conn {
	return &conn{g: g, id: g.cfg.Tracker.NewOwner(), vsn: vsn2, writing: true, // as if a writer were stuck
		done: make(chan struct{}), writerDone: make(chan struct{}), chans: map[string]*sub{}}
}

// TestSlowConsumerClosed: a socket whose unread bytes would overflow is closed with 1008.
func TestSlowConsumerClosed(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxFrameBytes, c.MaxQueuedBytes = 100, 1200 })
	c := newBareConn(t, tg.g)
	frame := []byte(strings.Repeat("x", 300))
	for i := 0; i < 4; i++ {
		c.enqueue(frame)
	}
	require.False(t, c.closing)
	c.enqueue([]byte(`[]`))
	require.True(t, c.closing)
	require.Equal(t, websocket.ClosePolicyViolation, c.code)
}

// TestNewestCountsWin: a socket that does not drain holds at most one presence diff per
// channel, rewritten to take it from what it holds to the newest counts.
func TestNewestCountsWin(t *testing.T) {
	tg := startGateway(t, nil)
	c := newBareConn(t, tg.g)
	s := &sub{c: c, topic: "room:a", base: Counts{Viewers: 1}, target: Counts{Viewers: 1}}
	counts := []Counts{{Viewers: 2}, {Viewers: 5, Users: 1}, {Viewers: 3, Users: 2}}
	prev := Counts{Viewers: 1}
	for _, now := range counts {
		c.pushCounts(s, &sharedDiffs{topic: "room:a", from: prev, to: now, h: tg.g.hub})
		prev = now
	}
	require.Len(t, c.queue, 1)
	f := c.queue[0]
	require.Nil(t, f.shared, "the rewritten diff starts from the socket's counts, not the broadcast's")
	requireJSONEq(t, diffFrame("room:a", 2, 2, 0, 0), string(f.data))

	// Back to what it holds: the queued diff becomes a no-op.
	c.pushCounts(s, &sharedDiffs{topic: "room:a", from: prev, to: Counts{Viewers: 1}, h: tg.g.hub})
	require.Len(t, c.queue, 1)
	require.True(t, c.queue[0].skip)
}

// TestStuckClientDoesNotDelayOthers: a client that sends but never reads fills its socket;
// its reader waits for room in its queue (backpressure.go) and its writer gives up after
// WriteTimeout, closing it, while another client in the same topic keeps getting its diffs.
func TestStuckClientDoesNotDelayOthers(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxQueuedBytes = 256 << 10; c.WriteTimeout = 2 * time.Second })
	good := tg.dial(t, "vsn=2.0.0")
	good.join("room:a", "1")
	good.expect(stateFrame("1", "room:a", 1, 0))

	stuck := tg.dial(t, "vsn=2.0.0")
	stuck.join("room:a", "1") // then it never reads again
	good.expect(diffFrame("room:a", 1, 0, 0, 0))

	// Heartbeats whose replies (which echo their 30 KB refs) are never read, until the
	// server gives up on the socket.
	deadline := time.Now().Add(waitFor)
	hb := []byte(`[null,"` + strings.Repeat("x", 30_000) + `","phoenix","heartbeat",{}]`)
	for i := 0; i < 1_000_000 && time.Now().Before(deadline); i++ {
		if err := stuck.ws.WriteMessage(websocket.TextMessage, hb); err != nil {
			break
		}
		if i%1000 == 0 && stuckClosed(t, tg) {
			break
		}
	}
	require.Eventually(t, func() bool { return stuckClosed(t, tg) }, waitFor, 10*time.Millisecond)
	// The stuck socket's presence is gone and the good client was told.
	good.expect(diffFrame("room:a", 0, 0, 1, 0))
	other := tg.dial(t, "vsn=2.0.0")
	other.join("room:a", "1")
	good.expect(diffFrame("room:a", 1, 0, 0, 0))
}

// stuckClosed reports whether the gateway closed a socket for not reading: its queue
// overflowed (1008) or a write timed out.
func stuckClosed(t *testing.T, tg *testGateway) bool {
	return metricValue(t, tg, `headcount_gateway_errors_total{kind="slow_consumer"}`)+
		metricValue(t, tg, `headcount_gateway_errors_total{kind="write"}`) == 1
}

// metricValue reads one sample from /metrics (0 when absent).
func metricValue(t *testing.T, tg *testGateway, series string) float64 {
	_, body := get(t, tg.srv.URL+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	return 0
}

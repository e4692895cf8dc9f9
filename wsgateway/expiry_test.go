package wsgateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/headcount-io/headcount/tracker"
	"github.com/stretchr/testify/require"
)

// heartbeat does a heartbeat round trip, proving the socket is open and has handled
// everything sent before; presence diffs on the way are skipped.
func (c *client) heartbeat() {
	c.t.Helper()
	c.sendRaw(`[null,"hb","phoenix","heartbeat",{}]`)
	for {
		f := c.read()
		if strings.Contains(f, `"presence_diff"`) {
			continue
		}
		requireJSONEq(c.t, `[null,"hb","phoenix","phx_reply",{"status":"ok","response":{}}]`, f)
		return
	}
}

// TestTokenExpiryClosesSocket: a socket is closed with 4001 "token expired" when its
// token's exp plus the leeway passes, not a moment before, and its presences leave.
func TestTokenExpiryClosesSocket(t *testing.T) {
	for _, leeway := range []time.Duration{0, 5 * time.Second} {
		t.Run("leeway "+leeway.String(), func(t *testing.T) {
			clk := newFakeClock()
			tg := startGateway(t, func(c *Config) { c.Clock = clk; c.JWTLeeway = leeway })
			exp := clk.Now().Add(10 * time.Second)
			short := tg.dial(t, "vsn=2.0.0&token="+tokenWith(t, jwt.MapClaims{"sub": "sam", "exp": exp.Unix()}))
			short.join("room:a", "1")
			short.expect(stateFrame("1", "room:a", 0, 1))
			long := tg.dial(t, "vsn=2.0.0&token="+tokenWith(t, jwt.MapClaims{"sub": "lou", "exp": exp.Add(time.Hour).Unix()}))
			long.join("room:a", "1")
			long.expect(stateFrame("1", "room:a", 0, 2))
			anon := tg.dial(t, "vsn=2.0.0")
			anon.join("room:a", "1")
			anon.expect(stateFrame("1", "room:a", 1, 2))
			long.expect(diffFrame("room:a", 1, 0, 0, 0))

			clk.Advance(exp.Add(leeway).Sub(clk.Now()) - time.Millisecond)
			short.heartbeat() // still open 1 ms before
			clk.Advance(time.Millisecond)
			ce := short.expectCloseFrame()
			require.Equal(t, 4001, ce.Code)
			require.Equal(t, "token expired", ce.Text)

			// Its presence leaves like any close; the others stay.
			long.expect(diffFrame("room:a", 0, 0, 0, 1))
			require.Eventually(t, func() bool { return tg.tr.Count("room:a") == tracker.Counts{Viewers: 1, Users: 1, Connections: 2} },
				waitFor, 5*time.Millisecond)
			long.heartbeat()
			anon.heartbeat()
			require.EqualValues(t, 1, metricValue(t, tg, `headcount_gateway_errors_total{kind="token_expired"}`))
		})
	}
}

// TestTokenExpiryTimerStops: a socket that closes before its token expires leaves no timer.
func TestTokenExpiryTimerStops(t *testing.T) {
	clk := newFakeClock()
	tg := startGateway(t, func(c *Config) { c.Clock = clk })
	c := tg.dial(t, "vsn=2.0.0&token="+tokenWith(t, jwt.MapClaims{"sub": "sam", "exp": clk.Now().Add(time.Hour).Unix()}))
	c.heartbeat()
	require.Equal(t, 1, clk.pending())
	c.ws.Close()
	require.Eventually(t, func() bool { return tg.g.Connections() == 0 }, waitFor, 5*time.Millisecond)
	require.Equal(t, 0, clk.pending())
	anon := tg.dial(t, "vsn=2.0.0")
	anon.heartbeat()
	require.Equal(t, 0, clk.pending(), "a token without exp, or none, sets no timer")
}

// TestUpgradeUsesClock: the token checks at the upgrade use the gateway's clock.
func TestUpgradeUsesClock(t *testing.T) {
	clk := newFakeClock()
	tg := startGateway(t, func(c *Config) { c.Clock = clk })
	tok := tokenWith(t, jwt.MapClaims{"sub": "sam", "exp": clk.Now().Add(time.Minute).Unix()})
	c, resp, err := tg.tryDial("vsn=2.0.0&token="+tok, nil, nil)
	require.NoError(t, err)
	resp.Body.Close()
	c.ws.Close()
	clk.Advance(time.Minute)
	_, resp, err = tg.tryDial("vsn=2.0.0&token="+tok, nil, nil)
	require.Error(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}

// TestSSEStreamEndsWithItsToken: an event stream opened with a token ends when the token
// expires, as a socket would be closed.
func TestSSEStreamEndsWithItsToken(t *testing.T) {
	clk := newFakeClock()
	tg := startGateway(t, func(c *Config) { c.Clock = clk; c.SSEHeartbeat = time.Hour })
	exp := clk.Now().Add(time.Minute)
	tok := tokenWith(t, jwt.MapClaims{"sub": "sam", "exp": exp.Unix()})
	_, r := sseStream(t, tg, "/v1/topics/room:a/events", http.Header{"Authorization": {"Bearer " + tok}})
	require.Equal(t, `presence_state|{"viewers":{"count":0},"users":{"count":0}}`, nextEvent(t, r, false))
	require.Equal(t, 1, clk.pending())
	clk.Advance(time.Minute)
	_, err := r.ReadString('\n')
	require.Error(t, err, "the stream ends at the token's exp")
	require.Eventually(t, func() bool { return clk.pending() == 0 && tg.g.Connections() == 0 }, waitFor, 5*time.Millisecond)
}

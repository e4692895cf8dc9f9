package wsgateway

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestHTTPAPI(t *testing.T) {
	tg := startGateway(t, func(c *Config) {
		c.Partial = func() bool { return true } // as if member b were suspect
	})
	anon := tg.dial(t, "vsn=2.0.0")
	anon.join("video:42", "1")
	anon.expect(stateFrame("1", "video:42", 1, 0))
	for i := 0; i < 2; i++ { // two tabs of one user
		c := tg.dial(t, "vsn=2.0.0&token="+token(t, "dana", time.Hour))
		c.join("video:42", "1")
	}

	status, body := get(t, tg.srv.URL+"/v1/topics/video:42")
	require.Equal(t, http.StatusOK, status)
	// Member b is suspect: the counts say they may miss its presences.
	requireJSONEq(t, `{"viewers":{"count":1},"users":{"count":1},"connections":{"count":3},"partial":true}`, body)

	status, body = get(t, tg.srv.URL+"/v1/topics/nobody:here")
	require.Equal(t, http.StatusOK, status)
	requireJSONEq(t, `{"viewers":{"count":0},"users":{"count":0},"connections":{"count":0},"partial":true}`, body)

	status, _ = get(t, tg.srv.URL+"/v1/topics/"+strings.Repeat("t", 300))
	require.Equal(t, http.StatusBadRequest, status)

	status, _ = get(t, tg.srv.URL+"/healthz")
	require.Equal(t, http.StatusOK, status)
	status, _ = get(t, tg.srv.URL+"/readyz")
	require.Equal(t, http.StatusOK, status)
	tg.g.SetReady(false)
	status, _ = get(t, tg.srv.URL+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, status)
	tg.g.SetReady(true)

	status, body = get(t, tg.srv.URL+"/metrics")
	require.Equal(t, http.StatusOK, status)
	for _, name := range []string{"headcount_gateway_connections 3", "headcount_gateway_channels 3", "headcount_gateway_joins_total 3",
		"headcount_gateway_topics 1", "headcount_gateway_frames_in_total", "headcount_gateway_frames_out_total",
		"headcount_gateway_diffs_sent_total", "headcount_gateway_diff_broadcasts_total", "headcount_gateway_topic_changes_total"} {
		require.Contains(t, body, name)
	}

	status, body = get(t, tg.srv.URL+"/")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, strings.ToLower(body), "<html")
	status, _ = get(t, tg.srv.URL+"/no-such-file")
	require.Equal(t, http.StatusNotFound, status)
}

func TestDemoTokens(t *testing.T) {
	off := startGateway(t, nil)
	resp, err := http.Post(off.srv.URL+"/v1/demo/token?user=eve", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)

	on := startGateway(t, func(c *Config) { c.DemoTokens = true })
	resp, err = http.Post(on.srv.URL+"/v1/demo/token?user=eve", "", nil)
	require.NoError(t, err)
	var out struct {
		Token string `json:"token"`
		User  string `json:"user"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "eve", out.User)

	c := on.dial(t, "vsn=2.0.0&token="+out.Token)
	c.join("room:a", "1")
	c.expect(stateFrame("1", "room:a", 0, 1))

	resp, err = http.Post(on.srv.URL+"/v1/demo/token", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestConfigValidation(t *testing.T) {
	tr := newTracker(t)
	cases := map[string]func(*Config){
		"Tracker":        func(c *Config) { c.Tracker = nil },
		"CoalesceWindow": func(c *Config) { c.CoalesceWindow = 0 },
		"MaxFrameBytes":  func(c *Config) { c.MaxFrameBytes = 0 },
		"MaxTopicBytes":  func(c *Config) { c.MaxTopicBytes = -1 },
		"MaxChannels":    func(c *Config) { c.MaxChannels = 0 },
		"JoinRate":       func(c *Config) { c.JoinRate = 0 },
		"JoinBurst":      func(c *Config) { c.JoinBurst = 0 },
		"MaxConns":       func(c *Config) { c.MaxConns = -1 },
		"MaxConnsPerIP":  func(c *Config) { c.MaxConnsPerIP = -1 },
		"MaxQueuedBytes": func(c *Config) { c.MaxQueuedBytes = 1000 },
		"IdleTimeout":    func(c *Config) { c.IdleTimeout = 0 },
		"WriteTimeout":   func(c *Config) { c.WriteTimeout = 0 },
		"AllowedOrigins": func(c *Config) { c.AllowedOrigins = []string{""} },
	}
	for field, mutate := range cases {
		cfg := DefaultConfig()
		cfg.Tracker = tr
		mutate(&cfg)
		_, err := New(cfg)
		require.ErrorIs(t, err, ErrInvalidConfig, field)
		require.Contains(t, err.Error(), field)
	}
}

package wsload_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/headcount-io/headcount/node"
	"github.com/headcount-io/headcount/wsgateway"
	"github.com/headcount-io/headcount/wsgateway/wsload"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startGateway runs a single node with a gateway on loopback, with limits opened for load.
func startGateway(t *testing.T, mutate ...func(*wsgateway.Config)) string {
	cfg := node.LocalConfig()
	cfg.Name = "load"
	cfg.Gossip = nil // a single node: its own loop ticks the tracker
	cfg.Gateway.MaxConnsPerIP = 0
	cfg.Gateway.JoinRate, cfg.Gateway.JoinBurst = 1e6, 1e6
	for _, m := range mutate {
		m(cfg.Gateway)
	}
	nd, err := node.New(cfg)
	require.NoError(t, err)
	srv := httptest.NewServer(nd.Handler())
	t.Cleanup(func() {
		require.NoError(t, nd.Close()) // sockets first: the server does not track them
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket/websocket"
}

func TestRun(t *testing.T) {
	cfg := wsload.DefaultConfig(startGateway(t))
	cfg.Conns, cfg.Changes, cfg.ChurnDuration, cfg.ChurnSockets, cfg.Timeout = 50, 3, 300*time.Millisecond, 20, time.Minute
	sampled := false
	cfg.AfterJoin = func(context.Context) error { sampled = true; return nil }
	res, err := wsload.Run(context.Background(), cfg)
	require.NoError(t, err)
	t.Log(res)
	require.True(t, sampled)
	require.Equal(t, 50, res.Conns)
	require.Equal(t, 50*3, res.Delivery.N)
	require.Equal(t, 3, res.Everyone.N)
	require.Positive(t, res.Delivery.P50)
	require.LessOrEqual(t, res.Delivery.Max, res.Everyone.Max)
	require.Equal(t, 3, res.First.N)
	require.LessOrEqual(t, res.First.P50, res.Everyone.P50, "the first socket has a change no later than the last")
	require.Positive(t, res.First.P50)
	require.Positive(t, res.ChurnChanges)
	require.Positive(t, res.ChurnFrames)
	require.Positive(t, res.FramesPerSec)
}

func TestStorm(t *testing.T) {
	cfg := wsload.DefaultStormConfig(startGateway(t))
	cfg.Conns, cfg.Rate, cfg.Timeout = 100, 1000, time.Minute
	res, err := wsload.Storm(context.Background(), cfg)
	require.NoError(t, err)
	t.Log(res)
	require.Equal(t, 100, res.Conns)
	require.Equal(t, 100, res.Join.N)
	require.Positive(t, res.JoinsPerSec)
	require.GreaterOrEqual(t, res.Settled, res.Joined)
}

func TestRunRejectsBadConfig(t *testing.T) {
	_, err := wsload.Run(context.Background(), wsload.Config{})
	require.Error(t, err)
	_, err = wsload.Storm(context.Background(), wsload.StormConfig{})
	require.Error(t, err)
}

// TestHeartbeatsKeepSocketsOpen: a run longer than the gateway's idle timeout survives because
// the watchers heartbeat; without heartbeats it fails as soon as the gateway closes them.
func TestHeartbeatsKeepSocketsOpen(t *testing.T) {
	idle := func(c *wsgateway.Config) { c.IdleTimeout = time.Second }
	cfg := wsload.DefaultConfig(startGateway(t, idle))
	cfg.Conns, cfg.Changes, cfg.ChangeGap, cfg.ChurnDuration, cfg.Timeout = 20, 6, 400*time.Millisecond, 0, time.Minute
	cfg.Heartbeat = 200 * time.Millisecond
	_, err := wsload.Run(context.Background(), cfg)
	require.NoError(t, err)

	cfg = wsload.DefaultConfig(startGateway(t, idle))
	cfg.Conns, cfg.Changes, cfg.ChangeGap, cfg.ChurnDuration, cfg.Timeout = 20, 6, 400*time.Millisecond, 0, time.Minute
	cfg.Heartbeat = time.Hour
	_, err = wsload.Run(context.Background(), cfg)
	require.Error(t, err) // fails (the gateway closed the sockets) rather than hanging
}

// TestRunWithinDefaultLimits: apart from the per-IP socket limit, a run fits a gateway with
// default limits (the churners stay under the per-socket join rate).
func TestRunWithinDefaultLimits(t *testing.T) {
	url := startGateway(t, func(c *wsgateway.Config) {
		c.JoinRate, c.JoinBurst = wsgateway.DefaultConfig().JoinRate, wsgateway.DefaultConfig().JoinBurst
	})
	cfg := wsload.DefaultConfig(url)
	cfg.Conns, cfg.Changes, cfg.ChurnDuration, cfg.ChurnSockets, cfg.Timeout = 30, 2, 2*time.Second, 10, time.Minute
	res, err := wsload.Run(context.Background(), cfg)
	require.NoError(t, err)
	require.Positive(t, res.ChurnFrames)
}

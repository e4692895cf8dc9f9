package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/wsgateway"
	"github.com/headcount-io/headcount/wsgateway/wsload"
)

// fanoutFlags configure the WebSocket fan-out run.
type fanoutFlags struct {
	clients int
	changes int
	churn   time.Duration
	url     string // an external gateway's socket URL; empty = an in-process one
}

// benchFanout runs the wsload generator against a gateway: one started in
// this process on loopback (a single node with its own tracker), or the one
// at f.url. It returns the table rows.
func benchFanout(ctx context.Context, f fanoutFlags, timeout time.Duration) ([]benchResult, error) {
	url, where := f.url, "external gateway"
	if url == "" {
		gwURL, stop, err := startBenchGateway()
		if err != nil {
			return nil, err
		}
		defer stop()
		url, where = gwURL, "in-process gateway, loopback"
	}
	cfg := wsload.DefaultConfig(url)
	cfg.Conns = f.clients
	cfg.Changes = f.changes
	cfg.ChurnDuration = f.churn
	cfg.Timeout = timeout
	res, err := wsload.Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	note := fmt.Sprintf("%d sockets in 1 topic, %s", f.clients, where)
	everyone := fmt.Sprintf("%s; opened at %.0f/s", note, res.OpenRate)
	if f.churn > 0 {
		everyone += fmt.Sprintf("; churn %.0f frames/s", res.FramesPerSec)
	}
	return []benchResult{
		fromPercentiles("count change delivered, per socket", res.Delivery, note),
		fromPercentiles("count change delivered to every socket", res.Everyone, everyone),
	}, nil
}

// fromPercentiles turns a wsload distribution into a table row.
func fromPercentiles(name string, p wsload.Percentiles, note string) benchResult {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return benchResult{Name: name, Samples: p.N, P50: ms(p.P50), P90: ms(p.P90), P99: ms(p.P99), Max: ms(p.Max), Note: note}
}

// startBenchGateway serves a gateway over a fresh tracker on a loopback port,
// with no connection limits, and returns its socket URL and a stop function.
func startBenchGateway() (string, func(), error) {
	tcfg := tracker.LocalConfig()
	tcfg.Name = "bench-fanout"
	tr, err := tracker.New(tcfg)
	if err != nil {
		return "", nil, err
	}
	// A one-node gossip cluster drives the tracker (Tick) as in an agent;
	// without a driver its batched operations would pile up.
	ncfg := gossip.LocalConfig()
	ncfg.Name = tcfg.Name
	ncfg.BindPort = 0
	node, err := gossip.New(ncfg, tr)
	if err != nil {
		return "", nil, err
	}
	gcfg := wsgateway.DefaultConfig()
	gcfg.Tracker = tr
	gcfg.NodeName = tcfg.Name
	gcfg.MaxConns = 0
	gcfg.MaxConnsPerIP = 0
	gw, err := wsgateway.New(gcfg)
	if err != nil {
		_ = node.Close()
		return "", nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = gw.Shutdown(context.Background())
		_ = node.Close()
		return "", nil, err
	}
	srv, _ := serveHTTP(ln, gw.Handler(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = gw.Shutdown(ctx)
		_ = srv.Close()
		_ = node.Close()
	}
	return "ws://" + ln.Addr().String() + "/socket/websocket", stop, nil
}

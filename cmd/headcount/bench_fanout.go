package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/headcount-io/headcount/node"
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

// startBenchGateway serves a one-node cluster (gossip drives the tracker as
// in an agent) on a loopback port, with no connection limits, and returns
// its socket URL and a stop function.
func startBenchGateway() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	cfg := node.LocalConfig()
	cfg.Name = "bench-fanout"
	cfg.Listener = ln
	cfg.Gateway.MaxConns = 0
	cfg.Gateway.MaxConnsPerIP = 0
	nd, err := node.New(cfg)
	if err != nil {
		_ = ln.Close()
		return "", nil, err
	}
	stop := func() { _ = nd.Close() }
	return "ws://" + ln.Addr().String() + "/socket/websocket", stop, nil
}

package main

import (
	"context"
	"errors"
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

// benchFanout runs the wsload generator against a gateway: one started in this process on
// loopback (a single node with its own tracker), or the one at f.url. First it measures the
// floor: the same number of loopback WebSocket sockets in this process, one bare frame each
// per round, written by as many goroutines as GOMAXPROCS and read by the fan-out's own client
// read loop; once with a write(2) per socket and, where the kernel has io_uring, once with
// the sends handed over 32 at a time as the gateway's writers hand them. It returns the table
// rows: each floor's, the fan-out's, and the fan-out's time and CPU over the lower floor's.
func benchFanout(ctx context.Context, f fanoutFlags, timeout time.Duration) ([]benchResult, error) {
	var floors []wsload.FloorResult
	for _, ring := range []bool{false, true} {
		fcfg := wsload.DefaultFloorConfig()
		fcfg.Conns, fcfg.Rounds, fcfg.Timeout, fcfg.IOUring = f.clients, f.changes, timeout, ring
		floor, err := wsload.Floor(ctx, fcfg)
		if err != nil {
			if ring && errors.Is(err, wsload.ErrNoIOUring) {
				continue // no io_uring here: the write(2) floor is the floor
			}
			return nil, err
		}
		floors = append(floors, floor)
	}
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
	everyone := fmt.Sprintf("%s; first socket p50 %.2f ms; opened at %.0f/s", note, ms(res.First.P50), res.OpenRate)
	if f.churn > 0 {
		everyone += fmt.Sprintf("; churn %.0f frames/s", res.FramesPerSec)
	}
	fanoutCPU := perFrame(res.ChangesCPU, res.ChangesFrames)
	if fanoutCPU > 0 {
		everyone += fmt.Sprintf("; %.2f CPU µs per frame", fanoutCPU)
	}
	var rows []benchResult
	fastest, cheapest := -1, -1 // the floors with the lowest time to every socket, and CPU
	var cheapestCPU float64
	for i, floor := range floors {
		floorNote := fmt.Sprintf("%d loopback sockets, %d-byte frames, %d writers (GOMAXPROCS), read as the fan-out's", floor.Conns, floor.FrameBytes, floor.Writers)
		floorEveryone := fmt.Sprintf("%s; first socket p50 %.2f ms", floorNote, ms(floor.First.P50))
		if cpu := perFrame(floor.CPU, floor.Frames); cpu > 0 {
			floorEveryone += fmt.Sprintf("; %.2f CPU µs per frame", cpu)
			if cheapest < 0 || cpu < cheapestCPU {
				cheapest, cheapestCPU = i, cpu
			}
		}
		if fastest < 0 || floor.Everyone.P50 < floors[fastest].Everyone.P50 {
			fastest = i
		}
		rows = append(rows,
			fromPercentiles("floor ("+floor.Method+"): one frame to a socket", floor.Delivery, floorNote),
			fromPercentiles("floor ("+floor.Method+"): one frame to every socket", floor.Everyone, floorEveryone))
	}
	rows = append(rows,
		fromPercentiles("count change delivered, per socket", res.Delivery, note),
		fromPercentiles("count change delivered to every socket", res.Everyone, everyone),
		floorRatio(res.Everyone, floors[fastest]))
	if f.url == "" && cheapest >= 0 && fanoutCPU > 0 { // an external gateway's CPU is not ours to see
		rows = append(rows, cpuRatio(fanoutCPU, cheapestCPU, floors[cheapest].Method))
	}
	return rows, nil
}

// perFrame is cpu per frame in microseconds (0 when unknown).
func perFrame(cpu time.Duration, frames int) float64 {
	if cpu <= 0 || frames <= 0 {
		return 0
	}
	return float64(cpu) / float64(time.Microsecond) / float64(frames)
}

// cpuRatio is the row "fan-out / floor, CPU per frame": this process's CPU time per frame
// delivered during the timed changes (the gateway's and its clients') over the floor's (its
// writers' and readers'). Unlike the times, it hardly depends on what else the machine runs.
func cpuRatio(fanout, floor float64, method string) benchResult {
	r := fanout / floor
	return benchResult{
		Name: "fan-out / floor, CPU per frame", Samples: 1, P50: r, P90: r, P99: r, Max: r, Mean: r,
		Note: fmt.Sprintf("a ratio, not ms: %.2f over %.2f CPU µs per frame (gateway and clients, over the cheaper floor, %s)", fanout, floor, method),
	}
}

// floorRatio is the row "fan-out / floor": the fan-out's time to every socket over the
// faster floor's, at each percentile (a ratio, not milliseconds).
func floorRatio(fanout wsload.Percentiles, fl wsload.FloorResult) benchResult {
	floor := fl.Everyone
	ratio := func(a, b time.Duration) float64 {
		if b <= 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	return benchResult{
		Name: "fan-out / floor, every socket", Samples: fanout.N,
		P50: ratio(fanout.P50, floor.P50), P90: ratio(fanout.P90, floor.P90),
		P99: ratio(fanout.P99, floor.P99), Max: ratio(fanout.Max, floor.Max),
		Note: "a ratio, not ms: the fan-out's time to every socket over the faster floor's, " + fl.Method + " (target <= 1.1 at p50)",
	}
}

// ms is d in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// fromPercentiles turns a wsload distribution into a table row.
func fromPercentiles(name string, p wsload.Percentiles, note string) benchResult {
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

package wsload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// FloorConfig configures Floor.
type FloorConfig struct {
	// Conns is the number of loopback TCP connections (> 0).
	Conns int
	// Rounds is the number of timed rounds, each one frame to every connection (> 0).
	Rounds int
	// Writers is the number of goroutines writing, each to its share of the connections in
	// turn; 0 means runtime.GOMAXPROCS(0), as many as the gateway's writers can run at once.
	Writers int
	// Gap is the pause between rounds.
	Gap time.Duration
	// Timeout bounds the whole run.
	Timeout time.Duration
}

// DefaultFloorConfig returns a floor run matching DefaultConfig's fan-out.
func DefaultFloorConfig() FloorConfig {
	return FloorConfig{Conns: 1000, Rounds: 20, Gap: 100 * time.Millisecond, Timeout: 5 * time.Minute}
}

// FloorResult is what Floor measured: the same distributions as Result's Delivery and
// Everyone, for bare writes.
type FloorResult struct {
	Conns, Writers, FrameBytes int
	// Delivery is the time from a round's start to its frame at one connection, over every
	// connection and round; Everyone is, per round, the time until the last connection had it.
	Delivery Percentiles
	Everyone Percentiles
	// CPU is this process's CPU time (every goroutine's, readers' too) over the timed rounds,
	// 0 when the system does not say; Frames is the number of frames they wrote.
	CPU    time.Duration
	Frames int
}

func (r FloorResult) String() string {
	return fmt.Sprintf("%d connections, %d writers, %d-byte frames: delivery %v; everyone %v",
		r.Conns, r.Writers, r.FrameBytes, r.Delivery, r.Everyone)
}

// diffPayload is the presence_diff a Phoenix V2 socket of the fan-out topic gets when one
// anonymous viewer joins.
const diffPayload = `[null,null,"bench:fanout","presence_diff",{"joins":{"viewers":{"count":1},"users":{"count":0}},"leaves":{"viewers":{"count":0},"users":{"count":0}}}]`

// diffFrame returns diffPayload as the gateway writes it: an unmasked WebSocket text frame.
func diffFrame() []byte {
	return append([]byte{0x81, byte(len(diffPayload))}, diffPayload...) // len < 126: one length byte
}

// Floor measures what the hardware allows a fan-out: Conns loopback TCP connections in this
// process, and per round one presence_diff frame written to each of them by Writers
// goroutines with nothing else (no WebSocket library, no deadlines, no queues), while one
// goroutine per connection reads it and takes its count, as a watcher of Run does. A fan-out
// of one count change to Conns sockets cannot beat it on the same machine; `headcount bench`
// prints the ratio.
func Floor(ctx context.Context, cfg FloorConfig) (FloorResult, error) {
	if cfg.Writers == 0 {
		cfg.Writers = runtime.GOMAXPROCS(0)
	}
	frame := diffFrame()
	res := FloorResult{Conns: cfg.Conns, Writers: cfg.Writers, FrameBytes: len(frame)}
	if cfg.Conns <= 0 || cfg.Rounds <= 0 || cfg.Writers < 0 || cfg.Timeout <= 0 {
		return res, errors.New("wsload: Floor needs Conns, Rounds and Timeout > 0 and Writers >= 0")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	servers, clients, err := loopbackPairs(ctx, cfg.Conns)
	defer func() {
		for _, c := range append(servers, clients...) {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err != nil {
		return res, err
	}
	stop := context.AfterFunc(ctx, func() { // unblocks readers and writers at the timeout
		for _, c := range append(servers, clients...) {
			c.Close()
		}
	})
	defer stop()

	// One reader per connection stamps each frame's arrival in at[round][i]; the last reader
	// of a round closes done[round].
	at := make([][]int64, cfg.Rounds)
	left := make([]atomic.Int64, cfg.Rounds)
	done := make([]chan struct{}, cfg.Rounds)
	for k := range at {
		at[k] = make([]int64, cfg.Conns)
		left[k].Store(int64(cfg.Conns))
		done[k] = make(chan struct{})
	}
	var readers sync.WaitGroup
	for i, c := range clients {
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, len(frame))
			for k := range cfg.Rounds {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				if _, ok := diffDelta(buf[2:]); !ok { // what a watcher does with it
					return
				}
				at[k][i] = time.Now().UnixNano()
				if left[k].Add(-1) == 0 {
					close(done[k])
				}
			}
		}()
	}
	defer readers.Wait()

	var delivery, everyone []time.Duration
	cpu0 := processCPU()
	for k := range cfg.Rounds {
		if k > 0 && cfg.Gap > 0 {
			select {
			case <-time.After(cfg.Gap):
			case <-ctx.Done():
				return res, ErrTimeout
			}
		}
		t0 := time.Now()
		if err := writeAll(servers, cfg.Writers, frame); err != nil {
			return res, fmt.Errorf("wsload: floor round %d: %w", k, err)
		}
		select {
		case <-done[k]:
		case <-ctx.Done():
			return res, ErrTimeout
		}
		var last time.Duration
		for _, ns := range at[k] {
			d := time.Duration(ns - t0.UnixNano())
			delivery = append(delivery, d)
			last = max(last, d)
		}
		everyone = append(everyone, last)
	}
	if cpu0 > 0 {
		res.CPU = processCPU() - cpu0
	}
	res.Frames = cfg.Conns * cfg.Rounds
	res.Delivery, res.Everyone = percentiles(delivery), percentiles(everyone)
	return res, nil
}

// writeAll writes frame once to every connection, with writers goroutines each taking a
// contiguous share.
func writeAll(conns []net.Conn, writers int, frame []byte) error {
	var wg sync.WaitGroup
	errs := make([]error, writers)
	per := (len(conns) + writers - 1) / writers
	for w := range writers {
		lo, hi := min(w*per, len(conns)), min((w+1)*per, len(conns))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range conns[lo:hi] {
				if _, err := c.Write(frame); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// loopbackPairs opens n TCP connections on 127.0.0.1: the accepted ends and the dialled ends.
func loopbackPairs(ctx context.Context, n int) (servers, clients []net.Conn, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer ln.Close()
	var d net.Dialer
	for range n {
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return servers, clients, fmt.Errorf("wsload: floor dial: %w", err)
		}
		clients = append(clients, c)
		s, err := ln.Accept()
		if err != nil {
			return servers, clients, fmt.Errorf("wsload: floor accept: %w", err)
		}
		servers = append(servers, s)
	}
	return servers, clients, nil
}

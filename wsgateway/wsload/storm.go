package wsload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// StormConfig configures Storm.
type StormConfig struct {
	// URL is the gateway's socket endpoint, ws://host:port/socket/websocket.
	URL string
	// Topic all sockets join.
	Topic string
	// Conns is the number of sockets that arrive (> 0).
	Conns int
	// Rate is how many arrive per second (> 0): socket i dials at i/Rate seconds.
	Rate int
	// MaxInFlight bounds the sockets being dialed and joined at once.
	MaxInFlight int
	// Timeout bounds the whole storm.
	Timeout time.Duration
}

// DefaultStormConfig returns 5000 sockets in one second against url.
func DefaultStormConfig(url string) StormConfig {
	return StormConfig{URL: url, Topic: "bench:storm", Conns: 5000, Rate: 5000, MaxInFlight: 512, Timeout: 5 * time.Minute}
}

// StormResult is what Storm measured.
type StormResult struct {
	// Conns sockets arrived; Joined is the time from the first dial to the last join reply,
	// JoinsPerSec = Conns / Joined.
	Conns       int
	Joined      time.Duration
	JoinsPerSec float64
	// Join is the time from a socket's scheduled arrival to its join reply and
	// presence_state (dial, upgrade, join), including any wait for an in-flight slot.
	Join Percentiles
	// Settled is the time from the first dial until every socket counts all Conns.
	Settled time.Duration
	// Frames is the number of presence_diff frames the sockets received until then.
	Frames int64
}

func (r StormResult) String() string {
	return fmt.Sprintf("%d joins in %v (%.0f/s); join %v; all sockets counted everyone after %v (%d presence_diff frames)",
		r.Conns, r.Joined.Round(time.Millisecond), r.JoinsPerSec, r.Join, r.Settled.Round(time.Millisecond), r.Frames)
}

// Storm makes cfg.Conns sockets arrive on cfg.Topic at cfg.Rate per second, each dialing and
// joining, and waits until every one of them counts everyone. It closes every socket before
// returning. The topic should be empty before the storm.
func Storm(ctx context.Context, cfg StormConfig) (StormResult, error) {
	var res StormResult
	if cfg.Conns <= 0 || cfg.Rate <= 0 || cfg.MaxInFlight <= 0 || cfg.URL == "" || cfg.Topic == "" || cfg.Timeout <= 0 {
		return res, errors.New("wsload: URL, Topic, Conns, Rate, MaxInFlight and Timeout are required")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	socks := make([]*socket, cfg.Conns)
	hb := startHeartbeats(30 * time.Second)
	defer func() {
		hb.halt()
		closeAll(socks)
	}()
	lat := make([]time.Duration, cfg.Conns)
	var lastReply atomic.Int64
	slots := make(chan struct{}, cfg.MaxInFlight)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Second / time.Duration(cfg.Rate)
schedule:
	for i := 0; i < cfg.Conns; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				break schedule
			}
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			break schedule
		}
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			defer func() { <-slots }()
			s, err := openJoined(ctx, cfg.URL, "", cfg.Topic, hb)
			if err == nil {
				now := time.Now()
				lat[i] = now.Sub(due)
				lastReply.Store(now.UnixNano())
				socks[i] = s
			}
			if err != nil {
				select {
				case errc <- fmt.Errorf("wsload: storm socket %d: %w", i, err):
				default:
				}
				cancel()
			}
		}(i, due)
	}
	wg.Wait()
	select {
	case err := <-errc:
		return res, err
	default:
	}
	if ctx.Err() != nil {
		return res, ErrTimeout
	}
	res.Conns = cfg.Conns
	res.Joined = time.Duration(lastReply.Load() - start.UnixNano())
	res.JoinsPerSec = float64(cfg.Conns) / res.Joined.Seconds()
	res.Join = percentiles(lat)
	if err := hb.wait(ctx, func() bool { return allAt(socks, int64(cfg.Conns)) }); err != nil {
		return res, fmt.Errorf("wsload: settling after the storm: %w", err)
	}
	res.Settled = time.Since(start)
	res.Frames = totalFrames(socks)
	return res, nil
}

package wsload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures Run.
type Config struct {
	// URL is the gateway's socket endpoint, ws://host:port/socket/websocket (vsn is added).
	URL string
	// Topic all sockets join.
	Topic string
	// Conns is the number of watcher sockets (> 0).
	Conns int
	// DialConcurrency is the number of sockets being opened at once.
	DialConcurrency int
	// Token, when not nil, returns the token of watcher i ("" = anonymous).
	Token func(i int) string `json:"-"`
	// Changes is the number of timed count changes (each a new probe socket joining).
	Changes int
	// ChangeGap is the pause between the delivery of one timed change and the next change;
	// more than the gateway's coalescing window times isolated changes, less times changes
	// that wait for the window.
	ChangeGap time.Duration
	// ChurnDuration is how long ChurnSockets probes join one after another and then leave one
	// after another (so the count moves in every coalescing window), as fast as the gateway
	// answers, to measure the sustained frames per second pushed to the watchers; 0 skips it.
	ChurnDuration time.Duration
	// ChurnSockets is the number of churning probes.
	ChurnSockets int
	// Heartbeat is how often each watcher sends a Phoenix heartbeat (the phoenix client
	// sends one every 30 s; the gateway closes sockets silent for its idle timeout).
	Heartbeat time.Duration
	// Timeout bounds the whole run.
	Timeout time.Duration
	// AfterJoin, when not nil, is called once every watcher is joined and has settled, before
	// anything is timed (a benchmark samples the server's memory there).
	AfterJoin func(ctx context.Context) error `json:"-"`
}

// DefaultConfig returns a 1000-socket run against url.
func DefaultConfig(url string) Config {
	return Config{
		URL:             url,
		Topic:           "bench:fanout",
		Conns:           1000,
		DialConcurrency: 64,
		Changes:         20,
		ChangeGap:       100 * time.Millisecond,
		ChurnDuration:   2 * time.Second,
		ChurnSockets:    100,
		Heartbeat:       30 * time.Second,
		Timeout:         5 * time.Minute,
	}
}

// Result is what Run measured.
type Result struct {
	// Conns is the number of watcher sockets.
	Conns int
	// Open is the time to open and join them all; OpenRate is Conns/Open in sockets per second.
	Open     time.Duration
	OpenRate float64
	// Delivery is the time from a count change (a probe's join sent) to its presence_diff at
	// one socket, over every socket and change.
	Delivery Percentiles
	// Everyone is, per change, the time until the last socket had it; BurstFramesPerSec is
	// Conns / Everyone.P50, the rate at which one change's frames leave the gateway.
	Everyone          Percentiles
	BurstFramesPerSec float64
	// First is, per change, the time until the first socket had it: what a change waits
	// before its frames reach anyone (the gateway's join and broadcast, the clients'
	// scheduling), which Everyone includes.
	First Percentiles
	// ChurnChanges count changes made during the churn phase; ChurnFrames presence_diff
	// frames received by all watchers for them; FramesPerSec = ChurnFrames / ChurnTime, where
	// ChurnTime runs from the first change to the last frame.
	// ChangesCPU is this process's CPU time over the timed changes (with the gateway's when
	// it runs in this process), 0 when the system does not say; ChangesFrames is the number
	// of presence_diff frames they delivered: one per watcher and change, and one per
	// earlier probe (a probe stays joined, so change k also reaches probes 1 to k-1).
	ChangesCPU    time.Duration
	ChangesFrames int
	ChurnChanges  int
	ChurnFrames   int64
	ChurnTime     time.Duration
	FramesPerSec  float64
}

func (r Result) String() string {
	return fmt.Sprintf("%d sockets opened in %v (%.0f/s); delivery %v; everyone %v; churn %d changes -> %d frames in %v (%.0f frames/s)",
		r.Conns, r.Open.Round(time.Millisecond), r.OpenRate, r.Delivery, r.Everyone, r.ChurnChanges, r.ChurnFrames,
		r.ChurnTime.Round(time.Millisecond), r.FramesPerSec)
}

// churnPeriod is the shortest time between two joins of one churning probe (a default gateway
// allows a socket 10 joins per second).
const churnPeriod = 150 * time.Millisecond

// fanout is the state of one Run.
type fanout struct {
	cfg      Config
	base     int64          // count with every watcher joined
	reached  []atomic.Int64 // reached[k]: watchers whose count reached base+k
	at       [][]int64      // at[k][i]: when watcher i reached base+k (unix ns)
	lastSeen atomic.Int64   // latest presence_diff arrival (unix ns)
}

// Run opens cfg.Conns watcher sockets on cfg.Topic, times cfg.Changes count changes, then
// churns. It closes every socket before returning.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	if cfg.Conns <= 0 || cfg.URL == "" || cfg.Topic == "" || cfg.DialConcurrency <= 0 || cfg.Changes < 0 || cfg.Timeout <= 0 || cfg.Heartbeat <= 0 {
		return res, errors.New("wsload: URL, Topic, Conns, DialConcurrency, Heartbeat and Timeout are required")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	f := &fanout{cfg: cfg, reached: make([]atomic.Int64, cfg.Changes+1), at: make([][]int64, cfg.Changes+1)}
	for k := range f.at {
		f.at[k] = make([]int64, cfg.Conns)
	}
	watchers := make([]*socket, cfg.Conns)
	var extra []*socket
	hb := startHeartbeats(cfg.Heartbeat)
	defer func() {
		hb.halt()
		closeAll(append(watchers, extra...))
	}()

	// Open and join every watcher.
	start := time.Now()
	if err := openAll(ctx, cfg, watchers, hb); err != nil {
		return res, err
	}
	res.Conns, res.Open = cfg.Conns, time.Since(start)
	res.OpenRate = float64(cfg.Conns) / res.Open.Seconds()
	probes := make([]*socket, cfg.Changes)
	for i := range probes {
		p, err := dialSocket(ctx, cfg.URL, "")
		if err != nil {
			return res, fmt.Errorf("wsload: probe: %w", err)
		}
		probes[i] = p
		extra = append(extra, p)
		hb.add(p)
	}
	// Settle: every watcher counts everyone (a watcher may only be counted by the others
	// once it joined, so wait for the final count everywhere).
	base := int64(cfg.Conns)
	if err := hb.wait(ctx, func() bool { return allAt(watchers, base) }); err != nil {
		return res, fmt.Errorf("wsload: settling after open: %w", err)
	}
	f.base = base
	for i, w := range watchers {
		fn := countFunc(func(n int64, at time.Time) { f.observe(i, n, at) })
		w.onCount.Store(&fn)
	}
	if cfg.AfterJoin != nil {
		if err := cfg.AfterJoin(ctx); err != nil {
			return res, err
		}
	}

	// Timed changes: probe k joins, moving the count to base+k.
	var delivery, everyone, firsts []time.Duration
	cpu0 := processCPU()
	for k := 1; k <= cfg.Changes; k++ {
		if cfg.ChangeGap > 0 {
			select {
			case <-time.After(cfg.ChangeGap):
			case <-ctx.Done():
				return res, ErrTimeout
			}
		}
		t0 := time.Now()
		if err := probes[k-1].sendJoin(cfg.Topic); err != nil {
			return res, fmt.Errorf("wsload: probe %d: %w", k, err)
		}
		if err := hb.wait(ctx, func() bool { return f.reached[k].Load() == int64(cfg.Conns) }); err != nil {
			return res, fmt.Errorf("wsload: change %d reached %d of %d sockets: %w", k, f.reached[k].Load(), cfg.Conns, err)
		}
		var last time.Duration
		first := time.Duration(math.MaxInt64)
		for _, ns := range f.at[k] {
			d := time.Duration(ns - t0.UnixNano())
			delivery = append(delivery, d)
			last = max(last, d)
			first = min(first, d)
		}
		everyone = append(everyone, last)
		firsts = append(firsts, first)
	}
	if cpu0 > 0 {
		res.ChangesCPU = processCPU() - cpu0
	}
	res.ChangesFrames = cfg.Conns*cfg.Changes + cfg.Changes*(cfg.Changes-1)/2
	res.Delivery, res.Everyone, res.First = percentiles(delivery), percentiles(everyone), percentiles(firsts)
	if res.Everyone.P50 > 0 {
		res.BurstFramesPerSec = float64(cfg.Conns) / res.Everyone.P50.Seconds()
	}

	// Churn: one probe joins and leaves as fast as the gateway answers.
	if cfg.ChurnDuration > 0 {
		final := base + int64(cfg.Changes)
		seen := countFunc(func(_ int64, at time.Time) { f.lastSeen.Store(at.UnixNano()) })
		for _, w := range watchers {
			w.onCount.Store(&seen)
		}
		churners := make([]*socket, max(1, cfg.ChurnSockets))
		for i := range churners {
			p, err := dialSocket(ctx, cfg.URL, "")
			if err != nil {
				return res, fmt.Errorf("wsload: churn probe: %w", err)
			}
			extra = append(extra, p)
			hb.add(p)
			p.replies = make(chan reply, 4)
			p.start(p.drain)
			churners[i] = p
		}
		before := totalFrames(watchers)
		start := time.Now()
		for round := start; time.Since(start) < cfg.ChurnDuration; round = time.Now() {
			for _, ref := range []string{"1", "2"} { // everyone joins, then everyone leaves
				for _, p := range churners {
					if err := p.request(cfg.Topic, ref); err != nil {
						return res, err
					}
					res.ChurnChanges++
				}
			}
			// At most one join per churner every churnPeriod, within a default gateway's
			// per-socket join rate.
			if d := churnPeriod - time.Since(round); d > 0 {
				time.Sleep(d)
			}
		}
		if err := hb.wait(ctx, func() bool { return allAt(watchers, final) }); err != nil {
			return res, fmt.Errorf("wsload: settling after churn: %w", err)
		}
		res.ChurnFrames = totalFrames(watchers) - before
		res.ChurnTime = time.Duration(f.lastSeen.Load() - start.UnixNano())
		if res.ChurnTime > 0 {
			res.FramesPerSec = float64(res.ChurnFrames) / res.ChurnTime.Seconds()
		}
	}
	return res, nil
}

// observe records that watcher i's count is n.
func (f *fanout) observe(i int, n int64, at time.Time) {
	for j := min(n-f.base, int64(len(f.at)-1)); j >= 1; j-- {
		if f.at[j][i] != 0 {
			break
		}
		f.at[j][i] = at.UnixNano()
		f.reached[j].Add(1)
	}
}

func allAt(ws []*socket, n int64) bool {
	for _, w := range ws {
		if w.count.Load() != n {
			return false
		}
	}
	return true
}

func totalFrames(ws []*socket) int64 {
	var n int64
	for _, w := range ws {
		n += w.frames.Load()
	}
	return n
}

// openJoined dials a socket, joins topic and starts its reader and
// heartbeat; the socket's count starts at the presence_state it was sent.
func openJoined(ctx context.Context, url, token, topic string, hb *heartbeater) (*socket, error) {
	s, err := dialSocket(ctx, url, token)
	if err != nil {
		return nil, err
	}
	n, err := s.join(topic)
	if err != nil {
		s.ws.Close()
		return nil, err
	}
	s.count.Store(n)
	hb.add(s)
	s.start(s.run)
	return s, nil
}

// openAll dials and joins len(out) sockets with cfg.DialConcurrency workers.
func openAll(ctx context.Context, cfg Config, out []*socket, hb *heartbeater) error {
	next := make(chan int)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for w := 0; w < cfg.DialConcurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				token := ""
				if cfg.Token != nil {
					token = cfg.Token(i)
				}
				s, err := openJoined(ctx, cfg.URL, token, cfg.Topic, hb)
				if err == nil {
					out[i] = s
				}
				if err != nil {
					select {
					case errc <- fmt.Errorf("wsload: socket %d: %w", i, err):
					default:
					}
				}
			}
		}()
	}
	var err error
feed:
	for i := range out {
		select {
		case next <- i:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ErrTimeout
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	return err
}

func closeAll(ss []*socket) {
	var wg sync.WaitGroup
	work := make(chan *socket)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				s.close()
			}
		}()
	}
	for _, s := range ss {
		if s != nil {
			work <- s
		}
	}
	close(work)
	wg.Wait()
}

// sendJoin sends a join without waiting for the reply (the probe's reader discards frames).
func (s *socket) sendJoin(topic string) error {
	if !s.started.Load() {
		s.start(s.drain)
	}
	return s.send(fmt.Appendf(nil, `["1","1",%q,"phx_join",{}]`, topic))
}

// drain reads and discards frames, forwarding replies to s.replies when set, until the
// socket closes.
func (s *socket) drain() {
	defer close(s.done)
	if s.replies != nil {
		defer close(s.replies)
	}
	for {
		f, err := readFrame(s.ws)
		if err != nil {
			return
		}
		if f.event == "phx_reply" && s.replies != nil {
			s.replies <- reply{ref: f.ref, ok: bytes.Contains(f.payload, []byte(`"status":"ok"`))}
		}
	}
}

// request sends a join (ref "1") or a leave (ref "2") and waits for its reply.
func (s *socket) request(topic, ref string) error {
	event := "phx_join"
	if ref == "2" {
		event = "phx_leave"
	}
	msg := fmt.Sprintf(`["1",%q,%q,%q,{}]`, ref, topic, event)
	if err := s.send([]byte(msg)); err != nil {
		return err
	}
	for r := range s.replies {
		if r.ref != ref {
			continue
		}
		if !r.ok {
			return fmt.Errorf("wsload: churn %s refused (is the gateway's JoinRate high enough?)", event)
		}
		return nil
	}
	return errors.New("wsload: churn probe closed")
}

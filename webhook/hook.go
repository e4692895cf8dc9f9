package webhook

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/headcount-io/headcount/tracker"
)

// Hook runs a Core against a tracker, the members alive and an HTTP receiver: one goroutine
// owns the Core, at most one POST is in flight. Create it with New, stop it with Close.
type Hook struct {
	cfg    Config
	core   *Core
	sub    *tracker.Subscription
	client *http.Client
	log    *slog.Logger
	m      *metrics

	mu    sync.Mutex
	stats Stats // published by the worker after every step

	epochs map[string]uint64 // worker-owned: the incarnation of every member up, by name

	warnMu     sync.Mutex
	lastWarn   time.Time
	suppressed int

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// warnEvery is the least time between two failure warnings; the ones in between are counted
// in the next.
const warnEvery = 10 * time.Second

// New validates cfg, subscribes to cfg.Tracker and starts the worker. Topics the tracker
// already holds are observed as they are now. It returns an error wrapping ErrConfig for a bad
// cfg, or the Registerer's error.
func New(cfg Config) (*Hook, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	self := cfg.Tracker.Self()
	if cfg.Name == "" {
		cfg.Name = self.Name
	}
	if cfg.IDPrefix == "" {
		cfg.IDPrefix = cfg.Name + "-" + strconv.FormatUint(self.Epoch, 36)
	}
	core, err := NewCore(cfg, cfg.Name, cfg.IDPrefix)
	if err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	client := cfg.Client
	if client == nil {
		client = &http.Client{
			Transport:     http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	h := &Hook{
		cfg:    cfg,
		core:   core,
		client: client,
		log:    lg.With("component", "webhook"),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if cfg.Registerer != nil {
		if h.m, err = newMetrics(cfg.Registerer, h); err != nil {
			return nil, fmt.Errorf("webhook: register metrics: %w", err)
		}
	}
	h.sub = cfg.Tracker.Subscribe()
	go h.run()
	return h, nil
}

// Stats returns the Core's counters as of the worker's last step.
func (h *Hook) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}

// Close stops the worker, abandoning the batch in flight and the queue (the members that take
// this node's topics over send their state). It is idempotent and waits for the worker.
func (h *Hook) Close() error {
	h.closeOnce.Do(func() {
		close(h.stop)
		<-h.done
		h.sub.Close()
		if h.cfg.Client == nil {
			h.client.CloseIdleConnections()
		}
	})
	return nil
}

type result struct {
	err    error
	status int
	took   time.Duration
	batch  *Batch
}

func (h *Hook) run() {
	defer close(h.done)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	results := make(chan result, 1)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	members := time.NewTicker(h.cfg.MembersInterval)
	defer members.Stop()

	now := time.Now()
	h.setMembers(now)
	for _, t := range h.cfg.Tracker.Topics() {
		h.core.Observe(now, t, h.cfg.Tracker.Count(t))
	}
	posting := false
	for {
		now = time.Now()
		h.core.Tick(now)
		if !posting {
			if b := h.core.Next(now); b != nil {
				posting = true
				wg.Add(1)
				go func() {
					defer wg.Done()
					results <- h.post(ctx, b)
				}()
			}
		}
		h.publish()
		if d := h.core.Deadline(); !d.IsZero() {
			timer.Reset(max(d.Sub(now), 0))
		} else {
			timer.Stop()
		}
		select {
		case <-h.stop:
			return
		case <-h.sub.C():
			// Membership first: gossip updates its member table before it hands the tracker
			// the data of a member that appeared or hides that of one that failed, so a change
			// read after the table is judged against the right owners (a node that just joined
			// would otherwise send occupied for every topic of its first snapshot).
			now := time.Now()
			h.setMembers(now)
			for _, t := range h.sub.Topics() {
				h.core.Observe(now, t, h.cfg.Tracker.Count(t))
			}
		case <-members.C:
			h.setMembers(time.Now())
		case r := <-results:
			posting = false
			h.finish(r)
		case <-timer.C:
		}
	}
}

// setMembers gives the Core the members alive, and tells it when one of them came back under
// its name as a new incarnation (the tracker's replicas carry the incarnation; the names do not
// change, so SetMembers alone would not notice a fast restart).
func (h *Hook) setMembers(now time.Time) {
	h.core.SetMembers(now, h.cfg.Members())
	seen := make(map[string]uint64, len(h.epochs))
	for _, r := range h.cfg.Tracker.Replicas() {
		if r.Self || !r.Up {
			continue
		}
		seen[r.Replica.Name] = r.Replica.Epoch
		if prev, ok := h.epochs[r.Replica.Name]; ok && prev != r.Replica.Epoch {
			h.core.MemberRestarted(now, r.Replica.Name)
		}
	}
	h.epochs = seen
}

// finish reports a POST's outcome to the Core, then logs and measures it.
func (h *Hook) finish(r result) {
	now := time.Now()
	delivered := h.core.Done(now, r.err == nil)
	if r.err == nil {
		h.log.Debug("webhook: delivered", "events", len(delivered), "attempt", r.batch.Attempt,
			"status", r.status, "took", r.took)
		if h.m != nil {
			for _, ev := range delivered {
				h.m.latency.Observe(now.Sub(ev.created).Seconds())
			}
		}
		return
	}
	h.warn("webhook: delivery failed", "url", h.cfg.URL, "events", len(r.batch.Events),
		"attempt", r.batch.Attempt, "max_attempts", h.cfg.MaxAttempts, "err", r.err)
}

// warn logs at most one failure per warnEvery.
func (h *Hook) warn(msg string, args ...any) {
	h.warnMu.Lock()
	now := time.Now()
	if !h.lastWarn.IsZero() && now.Sub(h.lastWarn) < warnEvery {
		h.suppressed++
		h.warnMu.Unlock()
		return
	}
	h.lastWarn = now
	n := h.suppressed
	h.suppressed = 0
	h.warnMu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	h.log.Warn(msg, args...)
}

func (h *Hook) publish() {
	s := h.core.Stats()
	h.mu.Lock()
	h.stats = s
	h.mu.Unlock()
}

// post sends one batch; the batch's Attempt is read before the worker can change it.
func (h *Hook) post(ctx context.Context, b *Batch) result {
	start := time.Now()
	r := result{batch: &Batch{TimeMS: b.TimeMS, Events: b.Events, Attempt: b.Attempt}}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(b.Body))
	if err != nil {
		r.err = fmt.Errorf("webhook: request: %w", err)
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "headcount-webhook")
	req.Header.Set(SignatureHeader, Sign(h.cfg.Secret, b.Body))
	resp, err := h.client.Do(req)
	r.took = time.Since(start)
	if err != nil {
		r.err = fmt.Errorf("webhook: post: %w", err)
		return r
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	r.status = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		r.err = fmt.Errorf("%w: HTTP %d", ErrStatus, resp.StatusCode)
	}
	return r
}

package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/webhook"
	"github.com/headcount-io/headcount/webhook/webhooktest"
)

var secret = []byte("test-secret")

// waitFor polls cond until it returns nil or timeout passes, then fails with its last error.
func waitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("after %v: %v", timeout, err)
		case <-tick.C:
		}
	}
}

func newTracker(t *testing.T, name string) *tracker.Tracker {
	t.Helper()
	cfg := tracker.LocalConfig()
	cfg.Name = name
	tr, err := tracker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func startHook(t *testing.T, tr *tracker.Tracker, rcv *webhooktest.Receiver, mut func(*webhook.Config)) *webhook.Hook {
	t.Helper()
	cfg := webhook.TestConfig()
	cfg.URL, cfg.Secret, cfg.Tracker = rcv.URL(), secret, tr
	cfg.Members = func() []string { return nil }
	cfg.Logger = testLogger(t)
	if mut != nil {
		mut(&cfg)
	}
	h, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// ownedBy is in core_test.go.

func names(evs []webhook.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, strings.TrimPrefix(e.Name, "topic_"))
	}
	return strings.Join(s, ",")
}

func TestHookDeliversSignedEvents(t *testing.T) {
	rcv := webhooktest.New(secret)
	defer rcv.Close()
	tr := newTracker(t, "a")
	reg := prometheus.NewRegistry()
	startHook(t, tr, rcv, func(c *webhook.Config) {
		c.Events.Counts = true
		c.Registerer = reg
	})
	if _, err := tr.Track(1, "room", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Track(2, "room", "alice", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if got := names(rcv.Of("room")); got != "occupied,counts" {
			return fmt.Errorf("events %q", got)
		}
		return nil
	})
	if err := tr.Untrack(1, "room"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Untrack(2, "room"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if got := names(rcv.Of("room")); got != "occupied,counts,vacated" {
			return fmt.Errorf("events %q", got)
		}
		return nil
	})
	evs := rcv.Of("room")
	if c := evs[1]; c.Viewers != 1 || c.Users != 1 {
		t.Fatalf("counts %+v", c)
	}
	if v := evs[2]; v.Viewers != 1 || v.Users != 1 || v.OccupiedMS < 0 {
		t.Fatalf("vacated %+v", v)
	}
	ids := map[string]bool{}
	for _, d := range rcv.Deliveries() {
		if !d.Verified || d.Status != http.StatusOK {
			t.Fatalf("delivery %s: verified %v, status %d", d.Body, d.Verified, d.Status)
		}
		if d.Payload.TimeMS <= 0 {
			t.Fatalf("time_ms %d", d.Payload.TimeMS)
		}
		for _, e := range d.Payload.Events {
			if ids[e.ID] || !strings.HasPrefix(e.ID, "a-") {
				t.Fatalf("id %q repeated or without the node prefix", e.ID)
			}
			ids[e.ID] = true
		}
	}
	waitFor(t, time.Second, func() error {
		if n := testutil.ToFloat64(mustCollector(t, reg, "headcount_webhook_events_sent_total")); n != 3 {
			return fmt.Errorf("events_sent_total = %v", n)
		}
		return nil
	})
	if n, err := testutil.GatherAndCount(reg, "headcount_webhook_delivery_latency_seconds"); err != nil || n != 1 {
		t.Fatalf("latency histogram: %d, %v", n, err)
	}
}

func mustCollector(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func() float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return -1
	})
}

type collectorFunc func() float64

func (f collectorFunc) Describe(ch chan<- *prometheus.Desc) {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("x", "x", nil, nil), prometheus.GaugeValue, f())
}

func TestHookRetries500ThenSameIDs(t *testing.T) {
	rcv := webhooktest.New(secret)
	defer rcv.Close()
	rcv.FailNext(http.StatusInternalServerError, http.StatusServiceUnavailable)
	tr := newTracker(t, "a")
	h := startHook(t, tr, rcv, nil)
	if _, err := tr.Track(1, "room", "", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if len(rcv.Of("room")) != 1 {
			return errors.New("not delivered")
		}
		return nil
	})
	ds := rcv.Deliveries()
	if len(ds) != 3 || ds[0].Status != 500 || ds[1].Status != 503 || ds[2].Status != 200 {
		t.Fatalf("deliveries: %d", len(ds))
	}
	for _, d := range ds[1:] {
		if string(d.Body) != string(ds[0].Body) || !d.Verified {
			t.Fatalf("retry %s differs from %s", d.Body, ds[0].Body)
		}
	}
	waitFor(t, 5*time.Second, func() error { // the hook has read the 200
		if s := h.Stats(); s.Retries != 2 || s.Sent != 1 {
			return fmt.Errorf("stats %+v, want 1 sent after 2 retries", s)
		}
		return nil
	})
}

func TestHookRetriesTimeouts(t *testing.T) {
	rcv := webhooktest.New(secret)
	defer rcv.Close()
	tr := newTracker(t, "a")
	var calls atomic.Int32
	h := startHook(t, tr, rcv, func(c *webhook.Config) {
		c.Timeout = 100 * time.Millisecond
		c.Client = &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				<-r.Context().Done() // the first attempt hangs until the timeout
				return nil, r.Context().Err()
			}
			return http.DefaultTransport.RoundTrip(r)
		})}
	})
	if _, err := tr.Track(1, "room", "", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if len(rcv.Of("room")) != 1 {
			return errors.New("not delivered")
		}
		return nil
	})
	if s := h.Stats(); s.Retries != 1 {
		t.Fatalf("stats %+v, want one retry after the timeout", s)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestHookSeesTopicsTrackedBeforeStart(t *testing.T) {
	rcv := webhooktest.New(secret)
	defer rcv.Close()
	tr := newTracker(t, "a")
	if _, err := tr.Track(1, "early", "", nil); err != nil {
		t.Fatal(err)
	}
	startHook(t, tr, rcv, nil)
	waitFor(t, 5*time.Second, func() error {
		if names(rcv.Of("early")) != "occupied" {
			return errors.New("no occupied for a topic tracked before the hook started")
		}
		return nil
	})
}

func TestNewRefusesBadConfig(t *testing.T) {
	tr := newTracker(t, "a")
	base := func() webhook.Config {
		c := webhook.DefaultConfig()
		c.URL, c.Secret, c.Tracker = "http://127.0.0.1:1/hook", secret, tr
		c.Members = func() []string { return nil }
		return c
	}
	for name, mut := range map[string]func(*webhook.Config){
		"URL":      func(c *webhook.Config) { c.URL = "" },
		"scheme":   func(c *webhook.Config) { c.URL = "ftp://x/y" },
		"Secret":   func(c *webhook.Config) { c.Secret = nil },
		"Tracker":  func(c *webhook.Config) { c.Tracker = nil },
		"Members":  func(c *webhook.Config) { c.Members = nil },
		"Events":   func(c *webhook.Config) { c.Events = webhook.Events{} },
		"Debounce": func(c *webhook.Config) { c.Debounce = 0 },
		"Grace":    func(c *webhook.Config) { c.VacateGrace = -1 },
		"Settle":   func(c *webhook.Config) { c.Settle = time.Millisecond; c.Handover = time.Second },
	} {
		c := base()
		mut(&c)
		if h, err := webhook.New(c); !errors.Is(err, webhook.ErrConfig) {
			if h != nil {
				_ = h.Close()
			}
			t.Fatalf("%s: err %v, want ErrConfig", name, err)
		}
	}
	h, err := webhook.New(base())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}

// Regression: the hook read members only every MembersInterval, so changes from a snapshot that
// arrived right after a join were judged as if the node were still alone, and it sent occupied
// for topics another member owns.
func TestHookReadsMembersBeforeJudgingChanges(t *testing.T) {
	rcv := webhooktest.New(secret)
	defer rcv.Close()
	tr := newTracker(t, "a")
	var joined atomic.Bool
	h := startHook(t, tr, rcv, func(c *webhook.Config) {
		c.MembersInterval = time.Hour
		c.Members = func() []string {
			if joined.Load() {
				return []string{"a", "b"}
			}
			return nil
		}
	})
	theirs := ownedBy(t, "b", []string{"a", "b"}, "theirs")
	mine := ownedBy(t, "a", []string{"a", "b"}, "mine")
	waitFor(t, 5*time.Second, func() error { // the worker has read the lone view
		if h.Stats().Members != 1 {
			return errors.New("hook has not started")
		}
		return nil
	})
	joined.Store(true)
	if _, err := tr.Track(1, theirs, "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Track(2, mine, "", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if len(rcv.Of(mine)) != 1 {
			return errors.New("no occupied for the own topic")
		}
		return nil
	})
	if evs := rcv.Of(theirs); len(evs) != 0 {
		t.Fatalf("sent %q for a topic b owns", names(evs))
	}
}

func TestHookCloseAbandonsAHangingPost(t *testing.T) {
	hang := make(chan struct{})
	defer close(hang)
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client going away
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	tr := newTracker(t, "a")
	cfg := webhook.TestConfig()
	cfg.URL, cfg.Secret, cfg.Tracker = srv.URL, secret, tr
	cfg.Members = func() []string { return nil }
	cfg.Timeout = time.Hour
	h, err := webhook.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Track(1, "room", "", nil); err != nil {
		t.Fatal(err)
	}
	<-arrived
	done := make(chan struct{})
	go func() { _ = h.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a POST that never ends")
	}
}

// countingHandler counts log records by level.
type countingHandler struct {
	mu     sync.Mutex
	counts map[slog.Level]int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[r.Level]++
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
func (h *countingHandler) count(l slog.Level) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[l]
}

func TestHookLogsDeliveriesAtDebugAndFailuresRateLimited(t *testing.T) {
	rcv := webhooktest.New(secret)
	defer rcv.Close()
	rcv.FailNext(500, 500, 500, 500, 500)
	tr := newTracker(t, "a")
	lh := &countingHandler{counts: map[slog.Level]int{}}
	h := startHook(t, tr, rcv, func(c *webhook.Config) { c.Logger = slog.New(lh) })
	if _, err := tr.Track(1, "room", "", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() error {
		if len(rcv.Of("room")) != 1 {
			return errors.New("not delivered")
		}
		return nil
	})
	waitFor(t, 5*time.Second, func() error { // the hook has read the 200
		if s := h.Stats(); s.Sent != 1 || s.Retries != 5 {
			return fmt.Errorf("stats %+v, want 1 sent after 5 retries", s)
		}
		return nil
	})
	if w, d := lh.count(slog.LevelWarn), lh.count(slog.LevelDebug); w != 1 || d != 1 {
		t.Fatalf("%d warnings and %d debug lines for 5 failures and 1 delivery within 10 s, want 1 and 1", w, d)
	}
}

// Regression (found by the simulator): a member that restarted under its name, fast enough
// that the member list never lost it, changed nothing SetMembers could see, so no settle
// re-send superseded what it had sent from its partial first view.
func TestHookRestartedMemberSettles(t *testing.T) {
	rcv := webhooktest.New(secret)
	defer rcv.Close()
	tr := newTracker(t, "a")
	tr.ReplicaUp(crdt.Replica{Name: "b", Epoch: 1})
	h := startHook(t, tr, rcv, func(c *webhook.Config) {
		c.Members = func() []string { return []string{"a", "b"} }
		c.Handover, c.Settle = 10*time.Millisecond, 100*time.Millisecond
	})
	mine := ownedBy(t, "a", []string{"a", "b"}, "mine")
	settled := func(n int) func() error {
		return func() error {
			if s := h.Stats(); s.Members != 2 || s.Settling || len(rcv.Of(mine)) != n {
				return fmt.Errorf("%d members, settling %v, %q", s.Members, s.Settling, names(rcv.Of(mine)))
			}
			return nil
		}
	}
	waitFor(t, 5*time.Second, settled(0)) // b appeared at start: that settle is over
	if _, err := tr.Track(1, mine, "", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, settled(1))
	tr.ReplicaUp(crdt.Replica{Name: "b", Epoch: 2})
	waitFor(t, 5*time.Second, settled(2)) // the settle re-send after the restart
}

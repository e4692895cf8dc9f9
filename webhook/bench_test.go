package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/testcluster"
	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/webhook"
)

// countingReceiver verifies each body's signature and counts its events.
func countingReceiver(b *testing.B) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !webhook.Verify(secret, body, r.Header.Get(webhook.SignatureHeader)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		n.Add(int64(bytes.Count(body, []byte(`"id":`))))
	}))
	b.Cleanup(srv.Close)
	return srv, &n
}

// BenchmarkHookEventsPerSecond measures how many events one node delivers per second: b.N
// topics become occupied at once on one tracker, and the clock stops when a real HTTP receiver
// on loopback has verified and counted all b.N topic_occupied events. Default batching.
func BenchmarkHookEventsPerSecond(b *testing.B) {
	for _, batch := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			srv, got := countingReceiver(b)
			tcfg := tracker.LocalConfig()
			tcfg.Name = "a"
			cfg, err := tracker.New(tcfg)
			if err != nil {
				b.Fatal(err)
			}
			var h *webhook.Hook
			h, err = webhook.New(func() webhook.Config {
				c := webhook.DefaultConfig()
				c.URL, c.Secret, c.Tracker, c.Members = srv.URL, secret, cfg, func() []string { return nil }
				c.BatchMax = batch
				return c
			}())
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				if _, err := cfg.Track(tracker.Owner(i+1), fmt.Sprintf("t%d", i), "", nil); err != nil {
					b.Fatal(err)
				}
			}
			deadline := time.Now().Add(time.Minute)
			for got.Load() < int64(b.N) {
				if time.Now().After(deadline) {
					b.Fatalf("%d of %d events after a minute", got.Load(), b.N)
				}
				time.Sleep(time.Millisecond) // polling the outcome
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkVacateLatency measures, on a 3-node in-memory cluster with the default webhook
// settings but VacateGrace 0, the time from the last Untrack (on a node that is not the
// topic's sender) to the receiver getting topic_vacated: replication, the owner's decision,
// batching and the POST. The grace is excluded by construction. quiet: the leave comes after an
// idle spell, so the vacate leaves at once (leading edge); busy: the leave comes right after the
// previous batch, so it waits for BatchWait (50 ms), as under steady load.
func BenchmarkVacateLatency(b *testing.B) {
	b.Run("quiet", func(b *testing.B) { benchVacate(b, 100*time.Millisecond) })
	b.Run("busy", func(b *testing.B) { benchVacate(b, 0) })
}

func benchVacate(b *testing.B, idle time.Duration) {
	srv, _ := countingReceiver(b)
	arrivals := make(chan string, 1024)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p webhook.Payload
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &p); err == nil {
			for _, e := range p.Events {
				arrivals <- e.Name + " " + e.Topic
			}
		}
	})
	hooks := map[int]*webhook.Hook{}
	c, err := testcluster.New(testcluster.Options{
		Nodes: 3,
		OnNodeStart: func(n *testcluster.Node) {
			cfg := webhook.DefaultConfig()
			cfg.URL, cfg.Secret, cfg.Tracker = srv.URL, secret, n.Tracker()
			cfg.VacateGrace = 0
			g := n.Gossip()
			cfg.Members = func() []string {
				var out []string
				for _, m := range g.Members() {
					if m.Status == gossip.StatusAlive {
						out = append(out, m.Name)
					}
				}
				return out
			}
			h, err := webhook.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			hooks[n.Index()] = h
		},
		OnNodeStop: func(n *testcluster.Node) { _ = hooks[n.Index()].Close() },
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	c.RequireConverged(b, 10*time.Second)
	names := []string{c.Node(0).Name(), c.Node(1).Name(), c.Node(2).Name()}
	deadline := time.Now().Add(10 * time.Second)
	for hooks[0].Stats().Members != 3 || hooks[1].Stats().Members != 3 || hooks[2].Stats().Members != 3 {
		if time.Now().After(deadline) {
			b.Fatal("hooks do not see 3 members")
		}
		time.Sleep(time.Millisecond) // polling the outcome
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := range b.N {
		topic := fmt.Sprintf("lat:%d", i)
		owner := webhook.Owner(topic, names)
		on := 0
		if names[0] == owner {
			on = 1
		}
		o, err := c.Node(on).Track(topic, "")
		if err != nil {
			b.Fatal(err)
		}
		await := func(want string) {
			select {
			case got := <-arrivals:
				if got != want {
					b.Fatalf("received %s, want %s", got, want)
				}
			case <-time.After(10 * time.Second):
				b.Fatal("nothing received")
			}
		}
		await(webhook.NameOccupied + " " + topic) // delivered before the clock starts
		time.Sleep(idle)                          // pacing, not measured
		start := time.Now()
		if err := c.Node(on).Tracker().Untrack(o, topic); err != nil {
			b.Fatal(err)
		}
		await(webhook.NameVacated + " " + topic)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// BenchmarkCoreOutbox measures the Core alone (no HTTP): b.N topics become occupied, and
// Next/Done drain them in default batches. allocs/event and B/event do not depend on the
// machine's load; ns/event does.
func BenchmarkCoreOutbox(b *testing.B) {
	cfg := webhook.DefaultConfig()
	cfg.Seed = 1
	c, err := webhook.NewCore(cfg, "a", "a")
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, b.N)
	for i := range names {
		names[i] = fmt.Sprintf("room:%d", i)
	}
	now := time.Unix(1_700_000_000, 0)
	one := tracker.Counts{Viewers: 1, Connections: 1}
	b.ReportAllocs()
	b.ResetTimer()
	sent := 0
	for _, n := range names {
		c.Observe(now, n, one)
	}
	for sent < b.N {
		now = now.Add(cfg.BatchWait)
		c.Tick(now)
		bt := c.Next(now)
		if bt == nil {
			b.Fatalf("stuck at %d of %d events", sent, b.N)
		}
		sent += len(c.Done(now, true))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
}

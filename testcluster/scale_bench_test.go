package testcluster_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/testcluster"
	"github.com/headcount-io/headcount/tracker"
)

var (
	scaleNodes  = flag.String("scale.nodes", "8,16,32", "cluster sizes of BenchmarkScaleChurn, comma-separated")
	scaleRate   = flag.Float64("scale.rate", 165, "BenchmarkScaleChurn: tracks/s and untracks/s per node (165 = 3,300/s on 20 nodes)")
	scaleHeld   = flag.Int("scale.held", 1000, "BenchmarkScaleChurn: presences each node holds before and during the churn")
	scaleWindow = flag.Duration("scale.window", 5*time.Second, "BenchmarkScaleChurn: how long the churn is measured")
	scaleProf   = flag.String("scale.cpuprofile", "", "BenchmarkScaleChurn: write a CPU profile of the measured window only (setup excluded) to this file, suffixed .N for each cluster size N")
)

// BenchmarkScaleChurn runs N nodes on the in-memory network with the production profiles, each
// holding -scale.held presences in 1,000 topics and replacing them at -scale.rate tracks/s plus as
// many untracks/s, for -scale.window. It reports per node: the datagrams and frame bytes our
// replication sent per second (deltas, digests, catch-up; memnet's packet count adds memberlist's
// own probes and gossip), the process CPU per node, and the lag of probe tracks (one every 20 ms
// on a rotating node, in a topic of their own) until every node counts them, and the Go heap in
// use per node once every node holds every presence (all nodes share one process, so this is the
// whole heap divided by N).
//
// Drops per second per node count the network's, the inbox's and memberlist's handler queue's
// (its "handler queue full" lines). Load-independent figures: the process CPU per datagram the network delivered (ours and
// memberlist's) and per delivered change (every track and untrack of the window, probes
// included, counts once per receiving node: N-1 deliveries each). memberlist's failure detector
// during the window: suspicions raised, suspicions refuted by the suspect (so false), and nodes
// marked failed (every node is healthy, so every one is false); and how many probes slower than
// 100 ms started within a second of a suspicion. A probe not visible everywhere within 10 s is
// logged (with how the node that misses it sees its sender), counted as lost and as a 10 s lag.
//
// It is bounded: one window per size, and every wait has a deadline. All nodes share the
// machine's cores, so at large N the CPU per node, not the network, is what the lag shows first.
func BenchmarkScaleChurn(b *testing.B) {
	for _, f := range strings.Split(*scaleNodes, ",") {
		nodes, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || nodes < 2 {
			b.Fatalf("bad -scale.nodes entry %q", f)
		}
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			for k := 0; k < b.N; k++ {
				scaleChurn(b, nodes)
			}
		})
	}
}

func scaleChurn(b *testing.B, nodes int) {
	fd := &fdCounter{}
	c, err := testcluster.New(testcluster.Options{
		Nodes:   nodes,
		Gossip:  func(int) gossip.Config { return gossip.DefaultConfig() },
		Tracker: func(int) tracker.Config { return tracker.DefaultConfig() },
		Logger:  slog.New(fd),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	waitMembers(b, c, 2*time.Minute)
	held := make([][]held1, nodes)
	for i, n := range c.Nodes() {
		for j := 0; j < *scaleHeld; j++ {
			topic := fmt.Sprintf("t%d", (i*(*scaleHeld)+j)%1000)
			o, err := n.Track(topic, "")
			if err != nil {
				b.Fatal(err)
			}
			held[i] = append(held[i], held1{o, topic})
		}
	}
	waitConverged(b, c, 5*time.Minute)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapPerNode := float64(ms.HeapInuse) / float64(nodes)

	sent0 := make([]gossip.Stats, nodes)
	tr0 := make([]tracker.Stats, nodes)
	for i, n := range c.Nodes() {
		sent0[i] = n.Gossip().Stats()
		tr0[i] = n.Tracker().Stats()
	}
	if *scaleProf != "" {
		f, err := os.Create(fmt.Sprintf("%s.%d", *scaleProf, nodes))
		if err != nil {
			b.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
	}
	var ops atomic.Int64 // tracks and untracks made in the window, probes included
	mem0 := c.Network().Stats()
	fd.start()
	cpu0 := cpuTime()
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var churnErr error
	wg.Add(1)
	go func() { // the churn: every 10 ms, each node replaces its due share of presences
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		due := make([]float64, nodes)
		next := 0
		last := time.Now()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				dt := now.Sub(last).Seconds()
				last = now
				for i, n := range c.Nodes() {
					due[i] += *scaleRate * dt
					for ; due[i] >= 1; due[i]-- {
						old := held[i][0]
						held[i] = held[i][1:]
						ops.Add(2)
						if err := n.Tracker().Untrack(old.o, old.topic); err != nil {
							churnErr = err
							return
						}
						topic := fmt.Sprintf("t%d", next%1000)
						next++
						o, err := n.Track(topic, "")
						if err != nil {
							churnErr = err
							return
						}
						held[i] = append(held[i], held1{o, topic})
					}
				}
			}
		}
	}()
	var lag []time.Duration
	var slowAt []time.Time // starts of the probes slower than 100 ms
	lost := 0              // probes not visible everywhere within 10 s
	probes := time.NewTicker(20 * time.Millisecond)
	for k := 0; time.Since(start) < *scaleWindow; k++ {
		<-probes.C
		topic := fmt.Sprintf("probe-%d", k)
		t0 := time.Now()
		if _, err := c.Node(k%nodes).Track(topic, ""); err != nil {
			b.Fatal(err)
		}
		ops.Add(1)
		deadline := t0.Add(10 * time.Second)
		src := c.Node(k % nodes).Name()
	wait:
		for _, n := range c.Nodes() {
			for n.Tracker().Count(topic).Viewers != 1 {
				if time.Now().After(deadline) {
					// Counted as a 10 s lag, and said: a probe is not lost in silence.
					lost++
					status := "not a member"
					for _, m := range n.Gossip().Members() {
						if m.Name == src {
							status = m.Status
						}
					}
					b.Logf("%s (from %s) not visible on %s within 10 s; %s sees %s as %s", topic, src, n.Name(), n.Name(), src, status)
					break wait
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
		lag = append(lag, time.Since(t0))
		if lag[len(lag)-1] > 100*time.Millisecond {
			slowAt = append(slowAt, t0)
		}
	}
	probes.Stop()
	close(stop)
	wg.Wait()
	secs := time.Since(start).Seconds()
	cpu := (cpuTime() - cpu0).Seconds()
	if *scaleProf != "" {
		pprof.StopCPUProfile()
	}
	det := fd.stop()
	if churnErr != nil {
		b.Fatal(churnErr)
	}
	var pkts, bytes, streams, streamBytes, inboxDropped, failed, gaps, requests uint64
	for i, n := range c.Nodes() {
		s := n.Gossip().Stats()
		pkts += s.PacketsSent - sent0[i].PacketsSent + s.StreamsSent - sent0[i].StreamsSent
		bytes += s.PacketBytesSent - sent0[i].PacketBytesSent + s.StreamBytesSent - sent0[i].StreamBytesSent
		streams += s.StreamsSent - sent0[i].StreamsSent
		streamBytes += s.StreamBytesSent - sent0[i].StreamBytesSent
		inboxDropped += s.InboxDropped - sent0[i].InboxDropped
		failed += s.Failed - sent0[i].Failed
		ts := n.Tracker().Stats()
		gaps += ts.Gaps - tr0[i].Gaps
		requests += ts.Requests - tr0[i].Requests
	}
	mem := c.Network().Stats()
	per := float64(nodes) * secs
	delivered := mem.Packets - mem0.Packets
	b.ReportMetric(float64(pkts)/per, "ours-pkts/s/node")
	b.ReportMetric(float64(bytes)/per, "ours-B/s/node")
	b.ReportMetric(float64(streams)/per, "ours-streams/s/node")
	b.ReportMetric(float64(streamBytes)/per, "ours-stream-B/s/node")
	b.ReportMetric(float64(delivered)/per, "all-pkts/s/node")
	b.ReportMetric(float64(mem.PacketsDropped-mem0.PacketsDropped+inboxDropped+uint64(det.queueFull))/per, "dropped/s/node")
	b.ReportMetric(cpu/secs/float64(nodes)*100, "cpu%/node")
	b.ReportMetric(cpu*1e6/float64(max(delivered, 1)), "cpu-us/datagram")
	b.ReportMetric(cpu*1e6/float64(max(ops.Load()*int64(nodes-1), 1)), "cpu-us/change-delivered")
	b.ReportMetric(float64(det.suspected), "suspicions")
	b.ReportMetric(float64(det.refuted), "refuted")
	b.ReportMetric(float64(det.markedFailed+int(failed)), "false-downs")
	b.ReportMetric(float64(det.near(slowAt, time.Second)), "slow-probes-near-suspicion")
	b.ReportMetric(float64(len(slowAt)), "slow-probes")
	b.ReportMetric(float64(lost), "probes-lost")
	b.ReportMetric(float64(gaps), "gaps")
	b.ReportMetric(float64(requests), "catchup-requests")
	b.ReportMetric(percentile(lag, 0.50), "lag-p50-ms")
	b.ReportMetric(percentile(lag, 0.99), "lag-p99-ms")
	b.ReportMetric(float64(len(lag)), "probes")
	b.ReportMetric(heapPerNode/(1<<20), "heap-MiB/node")
	b.ReportMetric(0, "ns/op")
}

// fdCounter is a slog.Handler that counts memberlist's failure-detector lines (memberlist v0.7
// logs them through gossip's log writer at debug level) between start and stop, and drops every
// other record.
type fdCounter struct {
	mu           sync.Mutex
	on           bool
	suspected    int // "Suspect X has failed, no acks received": this node suspects X
	refuted      int // "Refuting a suspect message": a suspect heard of it and refuted
	markedFailed int // "Marking X as failed, suspect timeout reached"
	queueFull    int // "handler queue full, dropping message": a datagram memberlist dropped
	at           []time.Time
}

func (f *fdCounter) Enabled(context.Context, slog.Level) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.on
}

func (f *fdCounter) Handle(_ context.Context, r slog.Record) error {
	m := r.Message
	if !strings.Contains(m, "memberlist: ") {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on {
		return nil
	}
	switch {
	case strings.Contains(m, "] memberlist: Suspect "):
		f.suspected++
		f.at = append(f.at, r.Time)
	case strings.Contains(m, "] memberlist: Refuting a suspect message"):
		f.refuted++
	case strings.Contains(m, "] memberlist: Marking ") && strings.Contains(m, " as failed"):
		f.markedFailed++
	case strings.Contains(m, "] memberlist: handler queue full"):
		f.queueFull++
	}
	return nil
}

func (f *fdCounter) WithAttrs([]slog.Attr) slog.Handler { return f }
func (f *fdCounter) WithGroup(string) slog.Handler      { return f }

func (f *fdCounter) start() {
	f.mu.Lock()
	f.on = true
	f.mu.Unlock()
}

type fdCounts struct {
	suspected, refuted, markedFailed, queueFull int
	at                                          []time.Time
}

func (f *fdCounter) stop() fdCounts {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.on = false
	return fdCounts{f.suspected, f.refuted, f.markedFailed, f.queueFull, f.at}
}

// near counts the instants in ts with a suspicion within d before or after them.
func (c fdCounts) near(ts []time.Time, d time.Duration) int {
	k := 0
	for _, t := range ts {
		for _, s := range c.at {
			if s.After(t.Add(-d)) && s.Before(t.Add(d)) {
				k++
				break
			}
		}
	}
	return k
}

type held1 struct {
	o     tracker.Owner
	topic string
}

// cpuTime is the process's user plus system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

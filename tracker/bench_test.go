package tracker_test

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// Benchmarks of one node's engine. Each keeps its memory bounded: a tracker
// is rebuilt every benchBatch operations, and the old one collected, with
// the timer stopped. Results and the
// commands that produced them: docs/bench/core.md.

const benchBatch = 100_000

// cpuMeter adds up the process's CPU time (user + system, all threads, the
// GC's included) over the timed parts of a benchmark. On a shared machine
// it shows the cost of an op when wall-clock ns/op mostly shows the load
// of other processes.
type cpuMeter struct{ total, since time.Duration }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (m *cpuMeter) start() { m.since = cpuTime() }
func (m *cpuMeter) stop()  { m.total += cpuTime() - m.since }

func (m *cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(m.total.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

func benchTracker(b *testing.B, name string) *tracker.Tracker {
	b.Helper()
	cfg := tracker.DefaultConfig()
	cfg.Name, cfg.Epoch = name, 1
	tr, err := tracker.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return tr
}

// benchTopics returns n realistic topic names ("video:10000", ...).
func benchTopics(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("video:%d", 10_000+i*37)
	}
	return out
}

// benchUsers returns n realistic user ids ("user-0123456").
func benchUsers(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("user-%07d", i*7919%9_999_991)
	}
	return out
}

// benchUser is presence i's user in a 50/50 mix: anonymous when i is even,
// users[i/2 % len(users)] otherwise.
func benchUser(users []string, i int) string {
	if i%2 == 0 {
		return ""
	}
	return users[(i/2)%len(users)]
}

// BenchmarkTrack measures local Track throughput on one node (target:
// >= 500k tracks/s), over 1,000 topics with a 50/50 anonymous/user mix.
// The tick variants add the cost of flushing the batched ops into deltas
// every 1,000 tracks, and of encoding those deltas for the wire.
func BenchmarkTrack(b *testing.B) {
	topics := benchTopics(1000)
	users := benchUsers(50_000)
	for _, v := range []struct {
		name      string
		tickEvery int
		encode    bool
	}{
		{"tick=none", 0, false},
		{"tick=every1000", 1000, false},
		{"tick=every1000+encode", 1000, true},
	} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			tr := benchTracker(b, "a")
			now := epochT0
			wire := 0
			n := 0
			var cpu cpuMeter
			cpu.start()
			for i := 0; i < b.N; i++ {
				if n == benchBatch {
					b.StopTimer()
					cpu.stop()
					tr = benchTracker(b, "a")
					n = 0
					runtime.GC() // collect the old tracker outside the timed part
					cpu.start()
					b.StartTimer()
				}
				if _, err := tr.Track(tracker.Owner(n), topics[n%len(topics)], benchUser(users, n), nil); err != nil {
					b.Fatal(err)
				}
				n++
				if v.tickEvery > 0 && n%v.tickEvery == 0 {
					now = now.Add(time.Millisecond)
					for _, o := range tr.Tick(now) {
						if v.encode {
							buf, err := crdt.Marshal(tr.Self(), o.Msg)
							if err != nil {
								b.Fatal(err)
							}
							wire += len(buf)
						}
					}
				}
			}
			cpu.stop()
			cpu.report(b)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tracks/s")
			if v.encode {
				b.ReportMetric(float64(wire)/float64(b.N), "wire-B/track")
			}
		})
	}
}

// BenchmarkUntrack measures Untrack and UntrackOwner throughput on a node
// holding 100k presences (target: >= 500k untracks/s). Each batch starts
// from 100k flushed presences over 1,000 topics; the tick variant flushes
// the removals every 1,000 ops.
func BenchmarkUntrack(b *testing.B) {
	topics := benchTopics(1000)
	users := benchUsers(50_000)
	for _, v := range []struct {
		name      string
		owner     bool
		tickEvery int
	}{
		{"Untrack/tick=none", false, 0},
		{"Untrack/tick=every1000", false, 1000},
		{"UntrackOwner/tick=none", true, 0},
		{"UntrackOwner/tick=every1000", true, 1000},
	} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			now := epochT0
			var cpu cpuMeter
			for done := 0; done < b.N; {
				b.StopTimer()
				tr := benchTracker(b, "a")
				for i := range benchBatch {
					if _, err := tr.Track(tracker.Owner(i), topics[i%len(topics)], benchUser(users, i), nil); err != nil {
						b.Fatal(err)
					}
				}
				now = now.Add(time.Millisecond)
				tr.Tick(now)
				chunk := min(b.N-done, benchBatch)
				runtime.GC() // collect the previous batch outside the timed part
				cpu.start()
				b.StartTimer()
				for i := range chunk {
					if v.owner {
						if tr.UntrackOwner(tracker.Owner(i)) != 1 {
							b.Fatal("UntrackOwner removed nothing")
						}
					} else if err := tr.Untrack(tracker.Owner(i), topics[i%len(topics)]); err != nil {
						b.Fatal(err)
					}
					if v.tickEvery > 0 && (i+1)%v.tickEvery == 0 {
						now = now.Add(time.Millisecond)
						tr.Tick(now)
					}
				}
				b.StopTimer()
				cpu.stop()
				done += chunk
			}
			cpu.report(b)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "untracks/s")
		})
	}
}

// BenchmarkCount measures Count on one topic of 1k, 10k and 100k presences
// (50/50 anonymous/users). It must not grow with the topic (target <= 1 µs).
func BenchmarkCount(b *testing.B) {
	users := benchUsers(50_000)
	for _, size := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("presences=%d", size), func(b *testing.B) {
			tr := benchTracker(b, "a")
			for i := range size {
				if _, err := tr.Track(tracker.Owner(i), "video:12345", benchUser(users, i), nil); err != nil {
					b.Fatal(err)
				}
			}
			if c := tr.Count("video:12345"); c.Connections != size {
				b.Fatalf("count %+v, want %d connections", c, size)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var sink tracker.Counts
			for i := 0; i < b.N; i++ {
				sink = tr.Count("video:12345")
			}
			if sink.Connections != size {
				b.Fatal(sink)
			}
		})
	}
}

// BenchmarkMemoryPerReplicatedPresence measures the heap a receiving node
// spends per presence of a remote owner: 1M presences over 1,000 topics,
// delivered by Handle as decoded deltas of 4,096 ops (so the receiver owns
// every byte, as in production). Target: <= 200 B per presence. Run with
// -benchtime=1x: one iteration builds 1M presences.
func BenchmarkMemoryPerReplicatedPresence(b *testing.B) {
	const total = 1_000_000
	topics := benchTopics(1000)
	users := benchUsers(250_000) // 500k logged-in presences: 2 tabs per user
	for _, mix := range []struct {
		name  string
		users bool
	}{{"anonymous", false}, {"mix=50/50", true}} {
		b.Run(mix.name, func(b *testing.B) {
			var perPresence float64
			for it := 0; it < b.N; it++ {
				perPresence = replicatedHeap(b, total, topics, func(i int) string {
					if !mix.users {
						return ""
					}
					return benchUser(users, i)
				})
			}
			b.ReportMetric(perPresence, "B/presence")
			b.ReportMetric(total, "presences")
		})
	}
}

func replicatedHeap(b *testing.B, total int, topics []string, user func(int) string) float64 {
	b.Helper()
	owner := crdt.Replica{Name: "hc-node-1", Epoch: 1_764_201_600_000_000_000}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	rx := benchTracker(b, "hc-node-2")
	rx.ReplicaUp(owner)
	var seq crdt.Seq
	const chunk = 4096
	for start := 0; start < total; start += chunk {
		n := min(chunk, total-start)
		d := &crdt.Delta{Owner: owner, From: seq, To: seq + crdt.Seq(n), Ops: make([]crdt.Op, n)}
		for k := range n {
			i := start + k
			ref := seq + crdt.Seq(k) + 1
			d.Ops[k] = crdt.Op{Ref: ref, Entry: &crdt.Entry{
				Ref: ref, Topic: topics[i%len(topics)], User: user(i), Conn: 1_000_000 + uint64(i),
			}}
		}
		seq = d.To
		wire, err := crdt.Marshal(owner, d)
		if err != nil {
			b.Fatal(err)
		}
		from, m, err := crdt.Unmarshal(wire)
		if err != nil {
			b.Fatal(err)
		}
		rx.Handle(from, m)
	}

	runtime.GC()
	runtime.ReadMemStats(&after)
	if st := rx.Stats(); st.Presences != total || st.Topics != len(topics) {
		b.Fatalf("receiver holds %d presences in %d topics, want %d in %d", st.Presences, st.Topics, total, len(topics))
	}
	runtime.KeepAlive(rx)
	return float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(total)
}

// BenchmarkMemoryPerLocalPresence measures the heap the owner node spends
// per presence it tracks itself (1M presences over 1,000 topics, 50/50
// anonymous/users, flushed by Tick every 4,096 tracks). There is no target;
// it shows what a node hosting the connections pays on top of the
// replicated entry. Run with -benchtime=1x.
func BenchmarkMemoryPerLocalPresence(b *testing.B) {
	const total = 1_000_000
	topics := benchTopics(1000)
	users := benchUsers(250_000)
	var perPresence float64
	for it := 0; it < b.N; it++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tr := benchTracker(b, "hc-node-1")
		now := epochT0
		for i := range total {
			if _, err := tr.Track(tracker.Owner(1_000_000+i), topics[i%len(topics)], benchUser(users, i), nil); err != nil {
				b.Fatal(err)
			}
			if (i+1)%4096 == 0 {
				now = now.Add(time.Millisecond)
				tr.Tick(now)
			}
		}
		tr.Tick(now.Add(time.Millisecond))
		runtime.GC()
		runtime.ReadMemStats(&after)
		if st := tr.Stats(); st.Presences != total {
			b.Fatalf("tracker holds %d presences, want %d", st.Presences, total)
		}
		runtime.KeepAlive(tr)
		perPresence = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / total
	}
	b.ReportMetric(perPresence, "B/presence")
	b.ReportMetric(total, "presences")
}

package tracker_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/headcount-io/headcount/tracker"
)

// rollupTracker returns a tracker holding presences presences in topics
// topics ("video:N"), half anonymous and half users, flushed.
func rollupTracker(b *testing.B, presences, topics int) (*tracker.Tracker, []string) {
	b.Helper()
	tr := benchTracker(b, "a")
	names := benchTopics(topics)
	users := benchUsers(presences / 4) // each user on about two videos
	for i := range presences {
		if _, err := tr.Track(tracker.Owner(i), names[i%topics], benchUser(users, i), nil); err != nil {
			b.Fatal(err)
		}
	}
	tr.Tick(epochT0)
	return tr, names
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkRollupChange measures the cost of one presence change (an
// Untrack and a Track of the same presence, so the state stays put) on a
// node with 100k presences in 10k topics, without a roll-up, with the
// video:* roll-up held, and with video:* and * both held. The roll-ups'
// share is the difference; it must not grow with the topics it covers.
// It also reports the roll-ups' memory (heap after HoldRollup minus before)
// and the one scan that builds video:* (build-ms).
func BenchmarkRollupChange(b *testing.B) {
	const presences, topics = 100_000, 10_000
	for _, held := range [][]string{nil, {"video:*"}, {"video:*", "*"}} {
		b.Run(fmt.Sprintf("rollups=%d", len(held)), func(b *testing.B) {
			tr, names := rollupTracker(b, presences, topics)
			users := benchUsers(presences / 4)
			before := heapInUse()
			var cpu cpuMeter
			cpu.start()
			for _, r := range held {
				if err := tr.HoldRollup(r); err != nil {
					b.Fatal(err)
				}
			}
			cpu.stop()
			buildMS := float64(cpu.total.Microseconds()) / 1000
			var perPresence float64
			if len(held) > 0 {
				perPresence = float64(heapInUse()-before) / float64(len(held)) / presences
			}
			cpu = cpuMeter{}
			b.ReportAllocs()
			b.ResetTimer()
			cpu.start()
			for i := 0; i < b.N; i++ {
				p := i % presences
				o := tracker.Owner(p)
				if err := tr.Untrack(o, names[p%topics]); err != nil {
					b.Fatal(err)
				}
				if _, err := tr.Track(o, names[p%topics], benchUser(users, p), nil); err != nil {
					b.Fatal(err)
				}
				if i%1000 == 999 {
					tr.Tick(epochT0)
				}
			}
			cpu.stop()
			b.StopTimer()
			cpu.report(b)
			if len(held) > 0 {
				// ResetTimer drops metrics reported before it: report these now.
				b.ReportMetric(buildMS/float64(len(held)), "build-ms")
				b.ReportMetric(perPresence, "B/presence/rollup")
				if c := tr.Count("video:*"); c.Connections != presences {
					b.Fatalf("video:* = %+v, want %d connections", c, presences)
				}
			}
		})
	}
}

// BenchmarkBusiest measures GET /v1/topics?prefix=video:&limit=N's tracker
// part on a node with 100k topics: O(N), not O(topics).
func BenchmarkBusiest(b *testing.B) {
	const presences, topics = 200_000, 100_000
	tr, _ := rollupTracker(b, presences, topics)
	var first cpuMeter
	first.start()
	if _, _, err := tr.Busiest("video:", 1); err != nil { // builds the roll-up: one scan
		b.Fatal(err)
	}
	first.stop()
	for _, limit := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("topics=100k/limit=%d", limit), func(b *testing.B) {
			b.ReportAllocs()
			var cpu cpuMeter
			cpu.start()
			defer func() {
				cpu.stop()
				cpu.report(b)
				b.ReportMetric(float64(first.total.Microseconds())/1000, "first-request-ms")
			}()
			for i := 0; i < b.N; i++ {
				_, top, err := tr.Busiest("video:", limit)
				if err != nil || len(top) != limit {
					b.Fatal(err, len(top))
				}
			}
		})
	}
}

package crdt_test

import (
	"testing"
	"time"

	"github.com/headcount-io/headcount/crdt"
)

// BenchmarkCatchUp100k splits answering a catch-up request for a 100k-presence local partition
// (the log does not reach back: a snapshot in two sorted parts) into State.CatchUp, the part a
// tracker does under its mutex, and CatchUp.Build, the part it does after releasing it; "since"
// is both in one call, which is what ran under the mutex before. cpu-ns/op is process CPU time,
// less sensitive to a loaded machine than ns/op.
func BenchmarkCatchUp100k(b *testing.B) {
	const n = 100_000
	s := crdt.NewState(benchSelf, crdt.Options{})
	for i := range n {
		e := benchEntry(0, i, mixHalf)
		s.Add(e.Topic, e.User, e.Conn, nil)
	}
	s.Flush(0)
	run := func(b *testing.B, take, build bool) {
		var cpu time.Duration
		for range b.N {
			b.StopTimer()
			var c crdt.CatchUp
			if !take {
				c = s.CatchUp(benchSelf, 0, 0)
			}
			c0 := cpuTime()
			b.StartTimer()
			if take {
				c = s.CatchUp(benchSelf, 0, 0)
			}
			if build {
				if msgs := c.Build(); len(msgs) != 2 {
					b.Fatalf("%d messages", len(msgs))
				}
			}
			b.StopTimer()
			cpu += cpuTime() - c0
			b.StartTimer()
		}
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
	b.Run("take", func(b *testing.B) { run(b, true, false) })
	b.Run("build", func(b *testing.B) { run(b, false, true) })
	b.Run("since", func(b *testing.B) { run(b, true, true) })
}

package densemap

import (
	"container/heap"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// op is one step of a workload: a Put of key (> 0) or a Delete of -key.
type op int64

// departures is a min-heap of (departure time, key), for the churn workloads.
type departures [][2]float64

func (d departures) Len() int           { return len(d) }
func (d departures) Less(i, j int) bool { return d[i][0] < d[j][0] }
func (d departures) Swap(i, j int)      { d[i], d[j] = d[j], d[i] }
func (d *departures) Push(x any)        { *d = append(*d, x.([2]float64)) }
func (d *departures) Pop() any {
	old := *d
	x := old[len(old)-1]
	*d = old[:len(old)-1]
	return x
}

// churn returns the operations of keys minted one per time unit, each deleted after a lifetime
// drawn by life, for mints keys; the keys still live at the end are what is measured.
func churn(mints int, life func(*rand.Rand) float64) []op {
	r := rand.New(rand.NewPCG(1, 2))
	ops := make([]op, 0, 2*mints)
	var due departures
	for k := 1; k <= mints; k++ {
		now := float64(k)
		for due.Len() > 0 && due[0][0] <= now {
			ops = append(ops, op(-int64(heap.Pop(&due).([2]float64)[1])))
		}
		ops = append(ops, op(k))
		heap.Push(&due, [2]float64{now + life(r), float64(k)})
	}
	return ops
}

// keepOneIn returns the operations of n keys minted in order of which every k-th stays: each
// other key is deleted once the next one is minted (a neighbour departs soon after it came).
func keepOneIn(n, k int) []op {
	ops := make([]op, 0, 2*n)
	for key := 1; key <= n; key++ {
		ops = append(ops, op(key))
		if key > 1 && (key-1)%k != 0 {
			ops = append(ops, op(-(key - 1)))
		}
	}
	if n%k != 0 {
		ops = append(ops, op(-n)) // the last key goes too unless it is a kept one
	}
	return ops
}

// drain returns the operations of n keys minted in order, then all but the last deleted in the
// same order (a burst that leaves).
func drain(n int) []op {
	ops := make([]op, 0, 2*n)
	for key := 1; key <= n; key++ {
		ops = append(ops, op(key))
	}
	for key := 1; key < n; key++ {
		ops = append(ops, op(-key))
	}
	return ops
}

// heapAfter returns the live heap bytes that apply(ops) leaves behind (after GC), and the number
// of live keys.
func heapAfter(ops []op, apply func([]op) (keep any, live int)) (bytes int64, live int) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	keep, live := apply(ops)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(keep)
	return int64(after.HeapAlloc) - int64(before.HeapAlloc), live
}

var shared = &val{} // every stored value: only the structures are measured

func applyDense(ops []op) (any, int) {
	m := New[*val](0)
	for _, o := range ops {
		if o > 0 {
			m.Put(uint64(o), shared)
		} else {
			m.Delete(uint64(-o))
		}
	}
	return &m, m.Len()
}

func applyGoMap(ops []op) (any, int) {
	m := map[uint64]*val{}
	for _, o := range ops {
		if o > 0 {
			m[uint64(o)] = shared
		} else {
			delete(m, uint64(-o))
		}
	}
	return m, len(m)
}

// BenchmarkMemoryPerLive measures the heap bytes a Map of pointers holds per live value, and a
// Go map[uint64]*V after the same operations, for keys minted in increasing order (each value
// is one shared pointer: only the structures count):
//   - full: every key is live (one chunk per 16 values);
//   - keep=1/16, keep=1/64: one key in 16 (64) stays, each other goes once the next is minted:
//     the worst case, one chunk per live value;
//   - churn=exp: keys live for an exponential time (mean 100k mints), measured in the steady
//     state (after 10 means): the package doc's typical case, H(16)/16 chunks per live value;
//   - churn=long10%, churn=long1%: 90% (99%) of the keys live a short exponential time (mean
//     1k mints) and the rest a long one (mean 100k): sessions of visitors that bounce and of
//     tabs left open, long-lived values among departed neighbours.
//
// Metrics: B/live (the Map), map-B/live (the Go map, which never shrinks: its table keeps the
// size of its largest population), x-map (their ratio) and live (values measured).
func BenchmarkMemoryPerLive(b *testing.B) {
	for _, w := range workloads() {
		if w.name == "drain" {
			continue // nothing is left to measure
		}
		b.Run(w.name, func(b *testing.B) {
			ops := w.ops()
			var dense, goMap int64
			var live int
			for range b.N {
				var goLive int
				dense, live = heapAfter(ops, applyDense)
				goMap, goLive = heapAfter(ops, applyGoMap)
				if live != goLive || live == 0 {
					b.Fatalf("%d live values in the Map, %d in the Go map", live, goLive)
				}
			}
			b.ReportMetric(float64(dense)/float64(live), "B/live")
			b.ReportMetric(float64(goMap)/float64(live), "map-B/live")
			b.ReportMetric(float64(dense)/float64(goMap), "x-map")
			b.ReportMetric(float64(live), "live")
		})
	}
}

// workload is a sequence of operations on keys minted in increasing order.
type workload struct {
	name string
	ops  func() []op
}

// workloads are BenchmarkMemoryPerLive's, also timed by BenchmarkOps.
func workloads() []workload {
	exp := func(mean float64) func(*rand.Rand) float64 {
		return func(r *rand.Rand) float64 { return r.ExpFloat64() * mean }
	}
	mix := func(long float64) func(*rand.Rand) float64 {
		return func(r *rand.Rand) float64 {
			if r.Float64() < long {
				return r.ExpFloat64() * 100_000
			}
			return r.ExpFloat64() * 1_000
		}
	}
	return []workload{
		{"full", func() []op { return keepOneIn(200_000, 1) }},
		{"drain", func() []op { return drain(200_000) }},
		{"keep=1/16", func() []op { return keepOneIn(16*50_000, 16) }},
		{"keep=1/64", func() []op { return keepOneIn(64*50_000, 64) }},
		{"churn=exp", func() []op { return churn(1_000_000, exp(100_000)) }},
		{"churn=long10%", func() []op { return churn(1_000_000, mix(0.10)) }},
		{"churn=long1%", func() []op { return churn(2_000_000, mix(0.01)) }},
	}
}

// BenchmarkOps times the workloads' Puts and Deletes (and drain's: every key deleted in the
// order minted but the last, a burst that leaves) into a fresh Map, and into a Go map in the
// same run: ns/op and cpu-ns/op are per Put or Delete (whole workload in each iteration), and
// x-map is the Map's time over the Go map's.
func BenchmarkOps(b *testing.B) {
	for _, w := range workloads() {
		b.Run(w.name, func(b *testing.B) {
			ops := w.ops()
			var dense, goMap time.Duration
			var cpu time.Duration
			for range b.N {
				c0, t0 := cpuTime(), time.Now()
				keep, _ := applyDense(ops)
				dense += time.Since(t0)
				cpu += cpuTime() - c0
				runtime.KeepAlive(keep)
				t1 := time.Now()
				keep, _ = applyGoMap(ops)
				goMap += time.Since(t1)
				runtime.KeepAlive(keep)
			}
			per := float64(b.N) * float64(len(ops))
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(dense.Nanoseconds())/per, "ns/map-op")
			b.ReportMetric(float64(cpu.Nanoseconds())/per, "cpu-ns/map-op")
			b.ReportMetric(float64(goMap.Nanoseconds())/per, "gomap-ns/map-op")
			b.ReportMetric(float64(dense)/float64(goMap), "x-map")
		})
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

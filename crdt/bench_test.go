package crdt_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/headcount-io/headcount/crdt"
)

// Benchmarks of the replicated set's merge and wire cost. Results and the
// commands that produced them: docs/bench/core.md.

// cpuTime is the process's CPU time (user + system, all threads). Summed
// over the timed parts of a benchmark it gives cpu-ns/op, which on a shared
// machine shows the cost of an op when wall-clock ns/op mostly shows the
// load of other processes.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Realistic identities: node names as an operator would pick them, boot
// epochs in wall-clock nanoseconds, connection ids and refs of a node that
// has been up for a while.
var (
	benchOwner = crdt.Replica{Name: "hc-node-1", Epoch: 1_764_201_600_123_456_789}
	benchSelf  = crdt.Replica{Name: "hc-node-2", Epoch: 1_764_201_600_987_654_321}
)

const (
	benchRef0  = 1_000_000 // the owner's chain is already this long
	benchConn0 = 2_000_000 // connection ids minted so far
)

// Who the presences of a benchmark are.
type benchMix int

const (
	mixAnonymous benchMix = iota // every presence anonymous
	mixUsers                     // every presence a logged-in user
	mixHalf                      // odd presences logged in, even ones anonymous
)

// benchEntry is presence i: topic "video:NNNNN" over 1,000 videos, with a
// user id ("user-0123456") or anonymous according to mix.
func benchEntry(ref crdt.Seq, i int, mix benchMix) *crdt.Entry {
	e := &crdt.Entry{Ref: ref, Topic: fmt.Sprintf("video:%d", 10_000+(i%1000)*37), Conn: benchConn0 + uint64(i)}
	if mix == mixUsers || (mix == mixHalf && i%2 == 1) {
		e.User = fmt.Sprintf("user-%07d", i*7919%9_999_991)
	}
	return e
}

// benchAddDelta returns a delta of n adds following seq from.
func benchAddDelta(from crdt.Seq, n int, mix benchMix) *crdt.Delta {
	d := &crdt.Delta{Owner: benchOwner, From: from, To: from + crdt.Seq(n), Ops: make([]crdt.Op, n)}
	for k := range n {
		ref := from + crdt.Seq(k) + 1
		d.Ops[k] = crdt.Op{Ref: ref, Entry: benchEntry(ref, k, mix)}
	}
	return d
}

// BenchmarkApplyDelta10k measures State.ApplyDelta of one delta of 10,000
// adds (50/50 anonymous/users) from a remote owner that is up (visible: the Change lists 10,000
// joins), in entries/s. The decode variant includes crdt.Unmarshal of the
// delta, as a receiving node pays it.
func BenchmarkApplyDelta10k(b *testing.B) {
	const n = 10_000
	for _, decode := range []bool{false, true} {
		name := "apply"
		if decode {
			name = "decode+apply"
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var wire []byte
			if decode {
				var err error
				if wire, err = crdt.Marshal(benchOwner, benchAddDelta(benchRef0, n, mixHalf)); err != nil {
					b.Fatal(err)
				}
			}
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s := crdt.NewState(benchSelf, crdt.Options{})
				s.Show(benchOwner)
				// The owner's earlier chain, so the delta is contiguous.
				if _, _, err := s.ApplySnapshot(&crdt.Snapshot{Owner: benchOwner, Seq: benchRef0}); err != nil {
					b.Fatal(err)
				}
				var d *crdt.Delta
				if !decode {
					d = benchAddDelta(benchRef0, n, mixHalf)
				}
				b.StartTimer()
				c0 := cpuTime()
				if decode {
					_, m, err := crdt.Unmarshal(wire)
					if err != nil {
						b.Fatal(err)
					}
					d = m.(*crdt.Delta)
				}
				ch, st, err := s.ApplyDelta(d)
				cpu += cpuTime() - c0
				if err != nil || st != crdt.Applied || len(ch.Joins) != n {
					b.Fatalf("apply: %v, %v, %d joins", err, st, len(ch.Joins))
				}
			}
			b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "entries/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkWireBytes measures the encoded bytes per replicated add and per
// remove, against the encoded size of the entry alone as it travels in a
// Snapshot (target: add <= 1.5x the entry; a remove a few bytes), for
// deltas of 1 to 1,000 ops. ns/op is the cost of Marshal for the delta.
func BenchmarkWireBytes(b *testing.B) {
	benchWireBytes(b, crdt.Marshal, "wire-B", "add/entry")
}

// benchWireBytes measures what marshal makes of deltas of 1-1,000 adds (three user mixes) and
// removes: bytes per op as <unit>/add and <unit>/remove, and for adds the ratio to the entries'
// size inside a snapshot as ratio.
func benchWireBytes(b *testing.B, marshal func(crdt.Replica, crdt.Message) ([]byte, error), unit, ratio string) {
	mixes := map[string]benchMix{"add/anonymous": mixAnonymous, "add/user": mixUsers, "add/mix=50/50": mixHalf}
	for _, kind := range []string{"add/anonymous", "add/user", "add/mix=50/50", "remove"} {
		for _, batch := range []int{1, 10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/ops=%d", kind, batch), func(b *testing.B) {
				var d *crdt.Delta
				switch kind {
				case "remove":
					d = &crdt.Delta{Owner: benchOwner, From: benchRef0, To: benchRef0 + crdt.Seq(batch), Ops: make([]crdt.Op, batch)}
					for k := range d.Ops {
						d.Ops[k] = crdt.Op{Ref: benchRef0 - 500_000 + crdt.Seq(k)*97} // removes of older entries
					}
				default:
					d = benchAddDelta(benchRef0, batch, mixes[kind])
				}
				var size int
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					buf, err := marshal(benchOwner, d)
					if err != nil {
						b.Fatal(err)
					}
					size = len(buf)
				}
				perOp := float64(size) / float64(batch)
				if kind == "remove" {
					b.ReportMetric(perOp, unit+"/remove")
					return
				}
				entry := entryBytes(b, d)
				b.ReportMetric(perOp, unit+"/add")
				b.ReportMetric(entry, "entry-B")
				b.ReportMetric(perOp/entry, ratio)
			})
		}
	}
}

// entryBytes is the encoded size of d's entries alone, per entry: a
// snapshot holding them minus an empty snapshot.
func entryBytes(b *testing.B, d *crdt.Delta) float64 {
	b.Helper()
	es := make([]*crdt.Entry, len(d.Ops))
	for i, op := range d.Ops {
		es[i] = op.Entry
	}
	full, err := crdt.Marshal(benchOwner, &crdt.Snapshot{Owner: benchOwner, Seq: d.To, Entries: es})
	if err != nil {
		b.Fatal(err)
	}
	empty, err := crdt.Marshal(benchOwner, &crdt.Snapshot{Owner: benchOwner, Seq: d.To})
	if err != nil {
		b.Fatal(err)
	}
	return float64(len(full)-len(empty)) / float64(len(es))
}

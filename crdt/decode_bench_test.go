package crdt_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/headcount-io/headcount/crdt"
)

// BenchmarkDecodeDelta measures UnmarshalBody of one delta of 4,096 anonymous adds (the
// tracker's default MaxDeltaOps), as the sender's own fresh flush arrives in a burst, with its
// entries in 1 topic or spread round-robin over 1,000. cpu-ns/op is the process's CPU time per
// decode; allocs/op and B/op are what the decoder leaves to the collector.
func BenchmarkDecodeDelta(b *testing.B) {
	const n = 4096
	for _, topics := range []int{1, 1000} {
		b.Run(fmt.Sprintf("topics=%d", topics), func(b *testing.B) {
			d := &crdt.Delta{Owner: benchOwner, From: benchRef0, To: benchRef0 + n}
			for k := range n {
				ref := benchRef0 + crdt.Seq(k) + 1
				e := &crdt.Entry{Ref: ref, Topic: fmt.Sprintf("burst-%d", k%topics), Conn: benchConn0 + uint64(k)}
				d.Ops = append(d.Ops, crdt.Op{Ref: ref, Entry: e})
			}
			body, err := crdt.MarshalBody(benchOwner, d)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			c0 := cpuTime()
			for b.Loop() {
				m, err := crdt.UnmarshalBody(benchOwner, body)
				if err != nil || len(m.(*crdt.Delta).Ops) != n {
					b.Fatalf("decode: %v", err)
				}
			}
			b.ReportMetric(float64((cpuTime()-c0)/time.Nanosecond)/float64(b.N), "cpu-ns/op")
		})
	}
}

package crdt_test

import (
	"fmt"
	"testing"

	"github.com/headcount-io/headcount/crdt"
)

// BenchmarkWireBytesBody is BenchmarkWireBytes for what gossip's frames carry: the body
// (MarshalBody) of the sender's own delta, without the sender (a frame names it once), against
// the same entries' size inside a snapshot. body-B/add is the numerator of the wire target
// before the frame's own few bytes (gossip's BenchmarkWireBytesFrame adds them).
func BenchmarkWireBytesBody(b *testing.B) {
	mixes := map[string]benchMix{"add/anonymous": mixAnonymous, "add/user": mixUsers, "add/mix=50/50": mixHalf}
	for _, kind := range []string{"add/anonymous", "add/user", "add/mix=50/50", "remove"} {
		for _, batch := range []int{1, 10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/ops=%d", kind, batch), func(b *testing.B) {
				var d *crdt.Delta
				switch kind {
				case "remove":
					d = &crdt.Delta{Owner: benchOwner, From: benchRef0, To: benchRef0 + crdt.Seq(batch), Ops: make([]crdt.Op, batch)}
					for k := range d.Ops {
						d.Ops[k] = crdt.Op{Ref: benchRef0 - 500_000 + crdt.Seq(k)*97}
					}
				default:
					d = benchAddDelta(benchRef0, batch, mixes[kind])
				}
				var size int
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					buf, err := crdt.MarshalBody(benchOwner, d)
					if err != nil {
						b.Fatal(err)
					}
					size = len(buf)
				}
				perOp := float64(size) / float64(batch)
				if kind == "remove" {
					b.ReportMetric(perOp, "body-B/remove")
					return
				}
				entry := entryBytes(b, d)
				b.ReportMetric(perOp, "body-B/add")
				b.ReportMetric(entry, "entry-B")
				b.ReportMetric(perOp/entry, "body/entry")
			})
		}
	}
}

package crdt_test

import (
	"testing"

	"github.com/headcount-io/headcount/crdt"
)

// BenchmarkWireBytesBody is BenchmarkWireBytes for what gossip's frames carry: the body
// (MarshalBody) of the sender's own delta, without the sender (a frame names it once), against
// the same entries' size inside a snapshot. body-B/add is the numerator of the wire target
// before the frame's own few bytes (gossip's BenchmarkWireBytesFrame adds them).
func BenchmarkWireBytesBody(b *testing.B) {
	benchWireBytes(b, crdt.MarshalBody, "body-B", "body/entry")
}

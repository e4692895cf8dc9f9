package gossip

import (
	"fmt"
	"testing"
	"time"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// The entries of crdt's BenchmarkWireBytes: topic "video:NNNNN", ref and connection past 10^6,
// anonymous or a user "user-NNNNNNN".
var benchFrameOwner = crdt.Replica{Name: "hc-node-1", Epoch: 1_764_201_600_123_456_789}

func benchFrameDelta(n int, user bool) *crdt.Delta {
	const ref0, conn0 = 1_000_000, 2_000_000
	d := &crdt.Delta{Owner: benchFrameOwner, From: ref0, To: ref0 + crdt.Seq(n)}
	for k := range n {
		e := &crdt.Entry{Ref: ref0 + crdt.Seq(k) + 1, Topic: fmt.Sprintf("video:%d", 10_000+(k%1000)*37), Conn: conn0 + uint64(k)}
		if user {
			e.User = fmt.Sprintf("user-%07d", k*7919%9_999_991)
		}
		d.Ops = append(d.Ops, crdt.Op{Ref: e.Ref, Entry: e})
	}
	return d
}

// benchEntryBytes is the size of d's entries inside a snapshot, per entry: the denominator.
func benchEntryBytes(b *testing.B, d *crdt.Delta) float64 {
	b.Helper()
	s := &crdt.Snapshot{Owner: d.Owner, Seq: d.To}
	empty, err := crdt.MarshalBody(crdt.Replica{}, s)
	if err != nil {
		b.Fatal(err)
	}
	for _, op := range d.Ops {
		s.Entries = append(s.Entries, op.Entry)
	}
	full, err := crdt.MarshalBody(crdt.Replica{}, s)
	if err != nil {
		b.Fatal(err)
	}
	return float64(len(full)-len(empty)) / float64(len(d.Ops))
}

// BenchmarkWireBytesFrame measures what a node's own delta of 1 to 1,000 adds costs as the
// frame this package hands memberlist, per add, against the entry inside a snapshot: the
// numerator of the wire target (frame-B/add, frame/entry). head-B is the frame's tag and short
// sender id. memberlist then adds, per datagram (v0.7.0, net.go rawSendMsgPacket): 1 byte of
// message type, 5 of CRC-32 for peers of protocol >= 5, 29 of AES-GCM with a gossip key, and
// a Host's kind byte on a shared memberlist; the network adds 28 (IPv4 and UDP headers).
// BenchmarkWireBytesDatagram measures those on real sockets.
func BenchmarkWireBytesFrame(b *testing.B) {
	for _, user := range []bool{false, true} {
		for _, n := range []int{1, 10, 100, 1000} {
			name := "anonymous"
			if user {
				name = "user"
			}
			b.Run(fmt.Sprintf("%s/ops=%d", name, n), func(b *testing.B) {
				d := benchFrameDelta(n, user)
				head := frameHead(benchFrameOwner, true)
				var size int
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					body, err := crdt.MarshalBody(benchFrameOwner, d)
					if err != nil {
						b.Fatal(err)
					}
					pk := packer{limit: 1 << 30, head: head}
					pk.add(body)
					size = len(pk.done()[0])
				}
				entry := benchEntryBytes(b, d)
				b.ReportMetric(float64(len(head)), "head-B")
				b.ReportMetric(float64(size)/float64(n), "frame-B/add")
				b.ReportMetric(entry, "entry-B")
				b.ReportMetric(float64(size)/float64(n)/entry, "frame/entry")
			})
		}
	}
}

// BenchmarkWireBytesDatagram measures the datagram a lone add really is, on loopback sockets
// between two nodes, with and without a gossip key: the bytes memberlist writes to the socket
// for the frame of one Track (captured at the sender's transport), split into our frame (frame-B),
// memberlist's part (memberlist-B: type, CRC and, with a key, AES-GCM) and the cluster label
// (label-B: this test cluster's; none by default). ip-udp-B (28) is what IPv4 and UDP add on the
// wire; the datagram's own size excludes them. Each op is one Track, one
// flush, one datagram; ns/op is not a figure (it includes waiting for the receiver).
func BenchmarkWireBytesDatagram(b *testing.B) {
	for _, keyed := range []bool{false, true} {
		name := "no-key"
		var keys [][]byte
		if keyed {
			name, keys = "key", [][]byte{[]byte("0123456789abcdef0123456789abcdef")}
		}
		b.Run(name, func(b *testing.B) {
			tp := newCapturingTransport(b)
			a := hostileNode(b, "hc-node-1", keys, tp, 0)
			v := hostileNode(b, "hc-node-2", keys, nil, 0, a.Addr())
			self := a.Tracker().Self()
			deadline := time.Now().Add(time.Minute)
			for v.Tracker().Stats().Replicas < 1 || a.NumMembers() < 2 {
				if time.Now().After(deadline) {
					b.Fatal("the two nodes never met")
				}
				time.Sleep(time.Millisecond)
			}
			var key []byte
			if keyed {
				key = keys[0]
			}
			var dgram, frame int
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tp.mu.Lock()
				tp.sent = nil
				tp.mu.Unlock()
				topic := fmt.Sprintf("video:%d", 10_000+i%1000)
				_, err := a.Tracker().Track(tracker.Owner(1_000_000+i), topic, "", nil)
				if err != nil {
					b.Fatal(err)
				}
				var pkt []byte
				for pkt == nil {
					if time.Now().After(deadline) {
						b.Fatal("the delta was never sent")
					}
					time.Sleep(100 * time.Microsecond)
					pkt = tp.find(key, "hostile", self, func(m crdt.Message) bool {
						d, ok := m.(*crdt.Delta)
						return ok && len(d.Ops) == 1 && d.Ops[0].Entry != nil && d.Ops[0].Entry.Topic == topic
					})
				}
				dgram = len(pkt)
				plain, _ := openPacket(key, "hostile", pkt)
				frame = len(plain) - 1 - 5 // memberlist's message type and CRC
			}
			b.StopTimer()
			const label = 2 + len("hostile") // the test cluster's label; none by default
			b.ReportMetric(float64(dgram), "datagram-B")
			b.ReportMetric(float64(frame), "frame-B")
			b.ReportMetric(float64(dgram-frame-label), "memberlist-B")
			b.ReportMetric(float64(label), "label-B")
			b.ReportMetric(28, "ip-udp-B")
		})
	}
}

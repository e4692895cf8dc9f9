package testcluster_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/testcluster/memnet"
	"github.com/headcount-io/headcount/tracker"
)

// The naive baseline: no deltas, no digests. Every PushPullInterval each node exchanges its whole
// state (a snapshot of every partition it holds) with one random peer through memberlist's
// push/pull, which is how a full-state CRDT over memberlist is usually first written. It exists
// only to measure what the delta design saves.

type naiveNode struct {
	tr   *tracker.Tracker
	ml   *memberlist.Memberlist
	stop chan struct{}
	wg   sync.WaitGroup
}

type naiveDelegate struct{ n *naiveNode }

func (d naiveDelegate) NodeMeta(int) []byte {
	return binary.AppendUvarint(nil, d.n.tr.Self().Epoch)
}
func (d naiveDelegate) NotifyMsg([]byte)                    {}
func (d naiveDelegate) GetBroadcasts(int, int) [][]byte     { return nil }
func (d naiveDelegate) LocalState(bool) []byte              { return d.n.fullState() }
func (d naiveDelegate) MergeRemoteState(buf []byte, _ bool) { d.n.merge(buf) }
func (d naiveDelegate) NotifyJoin(n *memberlist.Node)       { d.n.event(n, true) }
func (d naiveDelegate) NotifyLeave(n *memberlist.Node)      { d.n.event(n, false) }
func (d naiveDelegate) NotifyUpdate(n *memberlist.Node)     { d.n.event(n, true) }

func (n *naiveNode) event(node *memberlist.Node, up bool) {
	epoch, k := binary.Uvarint(node.Meta)
	if k <= 0 {
		return
	}
	r := crdt.Replica{Name: node.Name, Epoch: epoch}
	if up {
		n.tr.ReplicaUp(r) // the requests it returns are dropped: state only moves by push/pull
	} else {
		n.tr.ReplicaDown(r)
	}
}

// fullState encodes one snapshot per partition this node holds, length-prefixed, each cut into
// parts of at most crdt.MaxSnapshotEntries (the decoder refuses a bigger message, as it would a
// hostile one).
func (n *naiveNode) fullState() []byte {
	seqs := make(map[crdt.Replica]crdt.Seq)
	for _, r := range n.tr.Replicas() {
		seqs[r.Replica] = r.Seq
	}
	snaps := make(map[crdt.Replica]*crdt.Snapshot)
	for _, topic := range n.tr.Topics() {
		for _, p := range n.tr.List(topic) {
			s := snaps[p.Node]
			if s == nil {
				s = &crdt.Snapshot{Owner: p.Node, Seq: seqs[p.Node]}
				snaps[p.Node] = s
			}
			s.Entries = append(s.Entries, &crdt.Entry{Ref: p.Ref, Topic: p.Topic, User: p.User, Conn: uint64(p.Owner), Meta: p.Meta})
		}
	}
	var out []byte
	for _, s := range snaps {
		parts := (len(s.Entries) + crdt.MaxSnapshotEntries - 1) / crdt.MaxSnapshotEntries
		for i := range parts {
			part := &crdt.Snapshot{Owner: s.Owner, Seq: s.Seq, Part: uint32(i), Parts: uint32(parts),
				Entries: s.Entries[i*crdt.MaxSnapshotEntries : min((i+1)*crdt.MaxSnapshotEntries, len(s.Entries))]}
			b, err := crdt.Marshal(n.tr.Self(), part)
			if err != nil {
				continue
			}
			out = binary.AppendUvarint(out, uint64(len(b)))
			out = append(out, b...)
		}
	}
	return out
}

func (n *naiveNode) merge(buf []byte) {
	for len(buf) > 0 {
		l, k := binary.Uvarint(buf)
		if k <= 0 || l > uint64(len(buf)-k) {
			return
		}
		from, m, err := crdt.Unmarshal(buf[k : k+int(l)])
		if err == nil {
			n.tr.Handle(from, m)
		}
		buf = buf[k+int(l):]
	}
}

func newNaiveNode(b *testing.B, net *memnet.Network, name string, period time.Duration, join []string) *naiveNode {
	tc := tracker.DefaultConfig()
	tc.Name = name
	tr, err := tracker.New(tc)
	if err != nil {
		b.Fatal(err)
	}
	tp, err := net.NewTransport("")
	if err != nil {
		b.Fatal(err)
	}
	n := &naiveNode{tr: tr, stop: make(chan struct{})}
	mc := memberlist.DefaultLANConfig()
	mc.Name = name
	mc.Transport = tp
	mc.PushPullInterval = period
	mc.EnableCompression = false
	mc.LogOutput = io.Discard
	d := naiveDelegate{n}
	mc.Delegate, mc.Events = d, d
	if n.ml, err = memberlist.Create(mc); err != nil {
		b.Fatal(err)
	}
	if len(join) > 0 {
		if _, err := n.ml.Join(join); err != nil {
			b.Fatal(err)
		}
	}
	// Tick for the tracker's timers; its deltas and digests are dropped.
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-n.stop:
				return
			case now := <-t.C:
				n.tr.Tick(now)
			}
		}
	}()
	return n
}

func (n *naiveNode) close() {
	close(n.stop)
	n.wg.Wait()
	_ = n.ml.Shutdown()
}

// BenchmarkNaiveFullState runs the naive baseline (5 nodes, in-memory, full-state push/pull every
// second) on the same workload as BenchmarkBurst100k and BenchmarkIdleTraffic: 100k presences
// tracked on node 0, time until every node holds them, then idle bytes per second per node.
func BenchmarkNaiveFullState(b *testing.B) {
	const total, nodes = 100_000, 5
	var converge time.Duration
	var idle float64
	for k := 0; k < b.N; k++ {
		net := memnet.New(memnet.Options{})
		ns := []*naiveNode{newNaiveNode(b, net, "naive-0", time.Second, nil)}
		for i := 1; i < nodes; i++ {
			ns = append(ns, newNaiveNode(b, net, fmt.Sprintf("naive-%d", i), time.Second, []string{ns[0].ml.LocalNode().Address()}))
		}
		for _, n := range ns {
			for n.ml.NumMembers() != nodes {
				time.Sleep(10 * time.Millisecond)
			}
		}
		start := time.Now()
		for i := 0; i < total; i++ {
			if _, err := ns[0].tr.Track(tracker.Owner(i+1), fmt.Sprintf("naive-%d", i%1000), "", nil); err != nil {
				b.Fatal(err)
			}
		}
		for _, n := range ns {
			for n.tr.Stats().Presences != total {
				if time.Since(start) > 2*time.Minute {
					b.Fatalf("naive baseline never converged: %+v", n.tr.Stats())
				}
				time.Sleep(time.Millisecond)
			}
		}
		converge += time.Since(start)
		before := net.Stats()
		time.Sleep(3 * time.Second)
		after := net.Stats()
		idle += float64(after.PacketBytes+after.StreamBytes-before.PacketBytes-before.StreamBytes) / 3 / nodes
		for _, n := range ns {
			n.close()
		}
		_ = net.Close()
	}
	b.ReportMetric(float64(converge.Milliseconds())/float64(b.N), "ms-to-converge")
	b.ReportMetric(idle/float64(b.N), "idle-wire-B/s/node")
	b.ReportMetric(0, "ns/op")
}

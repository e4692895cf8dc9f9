package gossip

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// planNode is a worker's view of a cluster without memberlist: self plus live peers p0..p(k-1)
// (epoch 1), enough for plan, encode, livePeers and window.
func planNode(t *testing.T, k int) (*Node, []*peer) {
	t.Helper()
	self := crdt.Replica{Name: "self", Epoch: 1}
	n := &Node{cfg: DefaultConfig(), self: self, members: map[string]*member{},
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	n.senders.init(self)
	var ps []*peer
	for i := 0; i < k; i++ {
		p := &peer{name: fmt.Sprintf("p%d", i), epoch: 1, q: newStreamQueue(1 << 20)}
		n.members[p.name] = &member{}
		n.setPeer(n.members[p.name], p)
		ps = append(ps, p)
	}
	return n, ps
}

// frameBodies decodes every body of the frames, as the receiver would from sender.
func frameBodies(t *testing.T, sender crdt.Replica, frames [][]byte) []crdt.Message {
	t.Helper()
	var out []crdt.Message
	for _, f := range frames {
		pf, err := parseFrame(f)
		require.NoError(t, err)
		require.NoError(t, pf.each(16<<20, func(b []byte) {
			m, err := crdt.UnmarshalBody(sender, b)
			require.NoError(t, err)
			out = append(out, m)
		}))
	}
	return out
}

// A flush to every live peer is framed once and the same frames go to every peer that gets
// nothing else; a peer that also gets a message of its own gets both, in order, in its own
// frames, so no peer misses the flush and none gets it twice.
func TestSendSharesTheFlushFramesAmongPeers(t *testing.T) {
	n, ps := planNode(t, 5)
	e := &crdt.Entry{Ref: 1, Topic: "room", Conn: 7}
	delta := &crdt.Delta{Owner: n.self, From: 0, To: 1, Ops: []crdt.Op{{Ref: 1, Entry: e}}}
	req := &crdt.Request{Owner: crdt.Replica{Name: "p3", Epoch: 1}, Since: 4}
	pl := n.plan([]tracker.Outbound{
		{Target: tracker.ToAll, Msg: delta},
		{Target: tracker.ToOne, To: crdt.Replica{Name: "p2", Epoch: 1}, Msg: req},
	})
	require.Len(t, pl.own, 1)
	own := frameBodies(t, n.self, pl.own[ps[2]])
	require.Len(t, own, 2)
	require.IsType(t, &crdt.Delta{}, own[0])
	require.Equal(t, req, own[1])
	shared := frameBodies(t, n.self, pl.shared)
	require.Len(t, shared, 1)
	require.Equal(t, delta.To, shared[0].(*crdt.Delta).To)

	// Only messages of their own: nothing shared.
	pl = n.plan([]tracker.Outbound{{Target: tracker.ToOne, To: crdt.Replica{Name: "p1", Epoch: 1}, Msg: req}})
	require.Empty(t, pl.shared)
	require.Len(t, pl.own, 1)
	require.Contains(t, pl.own, ps[1])
}

// digestOf returns a digest of k owners named like cluster nodes, with epochs as package node
// makes them (nanoseconds since 1970) and sequences in the millions.
func digestOf(k int) *crdt.Digest {
	d := &crdt.Digest{}
	for i := 0; i < k; i++ {
		d.Items = append(d.Items, crdt.DigestItem{
			Owner: crdt.Replica{Name: fmt.Sprintf("node-%03d", i), Epoch: 1_764_650_000_000_000_000 + uint64(i)},
			Seq:   crdt.Seq(3_000_000 + i),
		})
	}
	return d
}

// A digest too large for one datagram (128 owners: about 2.3 KB) goes as digests of consecutive
// items that each fit a datagram, every item once and in order, so a large cluster's digests
// cost datagrams instead of one stream each; none goes to the stream queue of a peer that
// datagrams reach. A digest that fits is one message, as before.
func TestLargeDigestGoesByDatagramsInParts(t *testing.T) {
	for _, owners := range []int{1, 20, 128, 1000} {
		t.Run(fmt.Sprintf("owners=%d", owners), func(t *testing.T) {
			n, ps := planNode(t, 5)
			d := digestOf(owners)
			whole, err := crdt.MarshalBody(n.self, d)
			require.NoError(t, err)
			pl := n.plan([]tracker.Outbound{{Target: tracker.ToSome, Msg: d}})
			require.Empty(t, pl.shared)
			require.Len(t, pl.own, n.cfg.Fanout)
			for p, frames := range pl.own {
				var items []crdt.DigestItem
				for _, f := range frames {
					require.LessOrEqual(t, len(f), n.cfg.MaxPacketSize)
				}
				for _, m := range frameBodies(t, n.self, frames) {
					items = append(items, m.(*crdt.Digest).Items...)
				}
				require.Equal(t, d.Items, items, "peer %s", p.name)
				if len(frameHead(n.self, true))+msgCost(whole) <= n.cfg.MaxPacketSize {
					require.Len(t, frames, 1)
				}
			}
			for _, p := range ps {
				require.Empty(t, p.q.take(), "stream queue of %s", p.name)
			}
		})
	}
}

// livePeers is cached; every change of a member's peer (setPeer) refreshes it, so the batching
// window and the flush targets follow peers going down and coming up.
func TestLivePeersFollowSetPeer(t *testing.T) {
	n, ps := planNode(t, 100)
	require.Len(t, n.livePeers(), 100)
	w := n.window()
	for _, p := range ps[:60] {
		n.setPeer(n.members[p.name], nil)
	}
	require.Len(t, n.livePeers(), 40)
	require.Less(t, n.window(), w)
	n.setPeer(n.members[ps[0].name], ps[0])
	require.Len(t, n.livePeers(), 41)
	require.Contains(t, n.livePeers(), ps[0])
}

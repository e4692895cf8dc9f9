package gossip

import (
	"math/rand/v2"
	"slices"

	"github.com/hashicorp/memberlist"
	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// send encodes each outbound message once and sends it to its targets: frames that fit a
// datagram go best-effort at once, larger ones through the peer's stream queue. The frames of
// the messages to every live peer (a flush's deltas) are built once and the same bytes go to
// each peer that gets nothing else; a peer that also gets a message of its own (a digest, a
// request, an answer) gets every message for it, in order, in frames of its own. Worker only.
func (n *Node) send(out []tracker.Outbound) {
	if len(out) == 0 {
		return
	}
	pl := n.plan(out)
	for p, frames := range pl.own {
		for _, f := range frames {
			n.sendPacket(p.node.Load(), f)
		}
	}
	if len(pl.shared) == 0 {
		return
	}
	for _, p := range n.livePeers() {
		if _, ok := pl.own[p]; ok {
			continue
		}
		for _, f := range pl.shared {
			n.sendPacket(p.node.Load(), f)
		}
	}
}

// sendPlan is what send sends by datagram: shared to every live peer not in own, own[p] to p.
type sendPlan struct {
	shared [][]byte
	own    map[*peer][][]byte
}

// plan encodes out, queues what goes by stream, and returns the datagram frames. Worker only.
func (n *Node) plan(out []tracker.Outbound) sendPlan {
	head := n.frameHead()
	newPacker := func() *packer {
		return &packer{limit: n.cfg.MaxPacketSize + len(n.prefix), prefix: n.prefix, head: head}
	}
	type encoded struct {
		b       []byte
		toAll   bool
		targets []*peer // nil when toAll: every live peer
	}
	small := make([]encoded, 0, len(out)) // the messages that go by datagram, in order
	var own map[*peer]*packer             // peers with a message of their own
	anyAll := false
	for _, o := range out {
		targets := n.targets(o)
		if len(targets) == 0 {
			continue
		}
		for _, b := range n.encode(o.Msg, len(head)) {
			if len(b) > n.cfg.MaxMessageSize {
				n.stats.oversize.Add(1)
				n.log.Warn("gossip: message too large, dropped", "bytes", len(b), "max", n.cfg.MaxMessageSize)
				continue
			}
			fits := len(head)+msgCost(b) <= n.cfg.MaxPacketSize
			// Anti-entropy (digests, requests, answers: everything but the fresh deltas to all)
			// also goes by stream to a peer that datagrams do not reach; the fresh deltas it
			// misses are then found by the digests and repaired by stream. Copies still go by
			// datagram: the check can be wrong about a busy peer, and every message is idempotent.
			repair := o.Target != tracker.ToAll
			for _, p := range targets {
				if (!fits || (repair && p.viaStream())) && !p.q.push(b) {
					n.stats.queueDropped.Add(1)
				}
			}
			if !fits {
				continue
			}
			if o.Target == tracker.ToAll {
				small = append(small, encoded{b: b, toAll: true})
				anyAll = true
				continue
			}
			small = append(small, encoded{b: b, targets: targets})
			if own == nil {
				own = make(map[*peer]*packer)
			}
			for _, p := range targets {
				if own[p] == nil {
					own[p] = newPacker()
				}
			}
		}
	}
	var pl sendPlan
	if len(own) > 0 {
		pl.own = make(map[*peer][][]byte, len(own))
	}
	for p, pk := range own {
		for _, e := range small {
			if e.toAll || slices.Contains(e.targets, p) {
				pk.add(e.b)
			}
		}
		pl.own[p] = pk.done()
	}
	if anyAll {
		shared := newPacker()
		for _, e := range small {
			if e.toAll {
				shared.add(e.b)
			}
		}
		pl.shared = shared.done()
	}
	return pl
}

// encode returns m's bodies (crdt.MarshalBody): one, except for a digest too large for a
// datagram in a frame whose head is headLen bytes, which is cut into digests of consecutive
// items that each fit. A digest's items are independent (a receiver asks for what each one
// shows it lacks), so the parts do what the whole did, by datagram instead of by a stream per
// digest (from about 60 members on; each item is about 18 bytes). A lost part is covered by
// the next digest. A digest too large even at one item, and any other message, is returned
// whole, and send decides by its size. nil if m cannot be encoded (logged).
func (n *Node) encode(m crdt.Message, headLen int) [][]byte {
	b, err := crdt.MarshalBody(n.self, m)
	if err != nil {
		n.log.Warn("gossip: cannot encode message", "err", err)
		return nil
	}
	d, ok := m.(*crdt.Digest)
	if !ok || headLen+msgCost(b) <= n.cfg.MaxPacketSize || len(d.Items) < 2 {
		return [][]byte{b}
	}
	// Parts of equal item counts, one more than the size asks for, so most fit at once; a
	// part that still does not fit (longer names in it) is halved again.
	parts := (headLen+msgCost(b))/n.cfg.MaxPacketSize + 1
	per := (len(d.Items) + parts - 1) / parts
	var out [][]byte
	for i := 0; i < len(d.Items); i += per {
		out = append(out, n.encode(&crdt.Digest{Items: d.Items[i:min(i+per, len(d.Items))]}, headLen)...)
	}
	return out
}

func (n *Node) sendPacket(to *memberlist.Node, f []byte) {
	if err := n.ml.SendBestEffort(to, f); err != nil {
		n.stats.sendErrors.Add(1)
		n.log.Debug("gossip: packet send failed", "peer", to.Name, "err", err)
		return
	}
	n.stats.packetsSent.Add(1)
	n.stats.packetBytesSent.Add(uint64(len(f)))
}

// livePeers returns the sender of every member the tracker sees up. The slice is shared until
// the next change of a member's peer (setPeer): callers must not modify it. Worker only.
func (n *Node) livePeers() []*peer {
	if n.live == nil {
		n.live = make([]*peer, 0, len(n.members))
		for _, m := range n.members {
			if m.peer != nil {
				n.live = append(n.live, m.peer)
			}
		}
	}
	return n.live
}

// setPeer sets m's sender (nil: none) and invalidates the livePeers cache. Worker only.
func (n *Node) setPeer(m *member, p *peer) {
	m.peer = p
	n.live = nil
}

// targets resolves an Outbound's target to live peers. Worker only.
func (n *Node) targets(o tracker.Outbound) []*peer {
	switch o.Target {
	case tracker.ToOne:
		if m := n.members[o.To.Name]; m != nil && m.peer != nil && m.peer.epoch == o.To.Epoch {
			return []*peer{m.peer}
		}
		return nil
	case tracker.ToSome:
		all := slices.Clone(n.livePeers())
		rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		if len(all) > n.cfg.Fanout {
			all = all[:n.cfg.Fanout]
		}
		return all
	default:
		return n.livePeers()
	}
}

// goodbyes runs on the worker: it tells the tracker we leave, sends the goodbye to every live peer
// by datagram at once and returns the frames for the reliable copies.
func (n *Node) goodbyes() []goodbye {
	var out []goodbye
	for _, o := range n.tr.Leave() {
		b, err := crdt.MarshalBody(n.self, o.Msg)
		if err != nil {
			n.log.Warn("gossip: cannot encode goodbye", "err", err)
			continue
		}
		pk := packer{limit: len(n.prefix) + frameOverhead + len(b), prefix: n.prefix, head: n.frameHead()}
		pk.add(b)
		f := pk.done()[0]
		for _, p := range n.targets(o) {
			if len(f) <= n.cfg.MaxPacketSize+len(n.prefix) {
				n.sendPacket(p.node.Load(), f)
			}
			out = append(out, goodbye{node: *p.node.Load(), frame: f})
		}
	}
	return out
}

package gossip

import (
	"math/rand/v2"

	"github.com/hashicorp/memberlist"
	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// send encodes each outbound message once and sends it to its targets: frames that fit a
// datagram go best-effort at once, larger ones through the peer's stream queue. Worker only.
func (n *Node) send(out []tracker.Outbound) {
	if len(out) == 0 {
		return
	}
	packets := make(map[*peer]*packer)
	head := n.frameHead()
	for _, o := range out {
		targets := n.targets(o)
		if len(targets) == 0 {
			continue
		}
		b, err := crdt.MarshalBody(n.self, o.Msg)
		if err != nil {
			n.log.Warn("gossip: cannot encode message", "err", err)
			continue
		}
		if len(b) > n.cfg.MaxMessageSize {
			n.stats.oversize.Add(1)
			n.log.Warn("gossip: message too large, dropped", "bytes", len(b), "max", n.cfg.MaxMessageSize)
			continue
		}
		small := len(head)+msgCost(b) <= n.cfg.MaxPacketSize
		// Anti-entropy (digests, requests, answers: everything but the fresh deltas to all) also
		// goes by stream to a peer that datagrams do not reach; the fresh deltas it misses are
		// then found by the digests and repaired by stream. Copies still go by datagram: the
		// check can be wrong about a busy peer, and every message is idempotent.
		repair := o.Target != tracker.ToAll
		for _, p := range targets {
			if small {
				pk := packets[p]
				if pk == nil {
					pk = &packer{limit: n.cfg.MaxPacketSize + len(n.prefix), prefix: n.prefix, head: head}
					packets[p] = pk
				}
				pk.add(b)
			}
			if (!small || (repair && p.viaStream())) && !p.q.push(b) {
				n.stats.queueDropped.Add(1)
			}
		}
	}
	for p, pk := range packets {
		for _, f := range pk.done() {
			n.sendPacket(p.node.Load(), f)
		}
	}
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

// livePeers returns the sender of every member the tracker sees up. Worker only.
func (n *Node) livePeers() []*peer {
	all := make([]*peer, 0, len(n.members))
	for _, m := range n.members {
		if m.peer != nil {
			all = append(all, m.peer)
		}
	}
	return all
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
		all := n.livePeers()
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

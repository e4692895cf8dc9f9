package gossip

import (
	"errors"
	"net"
	"time"

	"github.com/hashicorp/memberlist"
)

// datagramFailures is how many pings in a row must fail before a peer's messages go by stream:
// one lost ping under ordinary loss must not switch it.
const datagramFailures = 5

// checkDatagrams keeps replication off datagrams to peers they do not reach. memberlist keeps a
// peer alive through its TCP fallback probe when UDP is blocked (a common firewall mistake), so
// membership alone never notices; every datagram to that peer would be lost while it lasts.
//
// Every DatagramCheckInterval it UDP-pings (memberlist's ping and ack, a round trip) the next
// live peer in turn and every peer that is failing or switched. After datagramFailures failures
// in a row a peer is switched: digests, requests and answers to it also go by its stream queue
// (TCP), so anti-entropy repairs whatever datagrams lose. The first ping that succeeds switches
// it back. Cost: one ping and ack per interval, plus one per switched
// peer.
func (n *Node) checkDatagrams() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.DatagramCheckInterval)
	defer t.Stop()
	fails := make(map[*peer]int)
	next := 0
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		peers := *n.peers.Load()
		if len(peers) == 0 {
			continue
		}
		live := make(map[*peer]bool, len(peers))
		for _, p := range peers {
			live[p] = true
		}
		for p := range fails {
			if !live[p] {
				delete(fails, p) // gone: its sender is stopped
			}
		}
		next = (next + 1) % len(peers)
		check := []*peer{peers[next]}
		for p := range fails {
			if p != peers[next] {
				check = append(check, p)
			}
		}
		for _, p := range check {
			select {
			case <-n.stop:
				return
			default:
			}
			if n.pingPeer(p) {
				if p.stream.Swap(false) {
					n.log.Info("gossip: datagrams reach the peer again", "peer", p.name)
				}
				delete(fails, p)
				continue
			}
			fails[p]++
			if fails[p] >= datagramFailures && !p.stream.Swap(true) {
				n.stats.streamFallbacks.Add(1)
				n.log.Warn("gossip: datagrams to the peer fail while it is alive (UDP blocked?): sending to it by stream",
					"peer", p.name, "addr", p.node.Load().Address())
			}
		}
	}
}

// pingPeer reports whether a UDP ping to p was acknowledged within ProbeTimeout.
func (n *Node) pingPeer(p *peer) bool {
	node := p.node.Load()
	_, err := n.ml.Ping(node.Name, &net.UDPAddr{IP: node.Addr, Port: int(node.Port)})
	var noAck memberlist.NoPingResponseError
	if err != nil && !errors.As(err, &noAck) {
		n.log.Debug("gossip: datagram check failed", "peer", p.name, "err", err)
	}
	return err == nil
}

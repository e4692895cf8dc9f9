package gossip

import (
	"sync"
	"sync/atomic"

	"github.com/hashicorp/memberlist"
)

// peer is a live remote member as the worker sees it. Only the worker goroutine touches name and
// epoch; node is also read by the peer's sender goroutine, and q is drained by it.
type peer struct {
	name  string
	epoch uint64
	node  atomic.Pointer[memberlist.Node] // an immutable private copy: name and address for sends
	q     *streamQueue
	// stream, when set, sends every message to this peer by its stream queue: datagrams to it
	// are failing (see udpcheck.go). Written by the datagram checker, read by the worker.
	stream atomic.Bool
}

// viaStream reports whether messages to p must avoid datagrams.
func (p *peer) viaStream() bool { return p.stream.Load() }

// streamQueue holds frames for one peer's reliable stream. Its sender goroutine sends what is
// queued, packing messages into frames of up to MaxMessageSize, one memberlist stream per frame.
// The queue is bounded in bytes; when it is full new messages are dropped and counted, so a slow
// or dead peer never blocks the worker or the other peers.
type streamQueue struct {
	mu    sync.Mutex
	msgs  [][]byte
	bytes int
	max   int
	sig   chan struct{}
	quit  chan struct{}
	once  sync.Once
}

func newStreamQueue(maxBytes int) *streamQueue {
	return &streamQueue{max: maxBytes, sig: make(chan struct{}, 1), quit: make(chan struct{})}
}

// push queues msg; false if the queue is full.
func (q *streamQueue) push(msg []byte) bool {
	q.mu.Lock()
	if q.bytes+len(msg) > q.max {
		q.mu.Unlock()
		return false
	}
	q.msgs = append(q.msgs, msg)
	q.bytes += len(msg)
	q.mu.Unlock()
	select {
	case q.sig <- struct{}{}:
	default:
	}
	return true
}

func (q *streamQueue) take() [][]byte {
	q.mu.Lock()
	m := q.msgs
	q.msgs, q.bytes = nil, 0
	q.mu.Unlock()
	return m
}

func (q *streamQueue) stop() { q.once.Do(func() { close(q.quit) }) }

// runSender sends p's queued messages until the queue or the node stops.
func (n *Node) runSender(p *peer) {
	defer n.wg.Done()
	for {
		select {
		case <-p.q.quit:
			return
		case <-n.stop:
			return
		case <-p.q.sig:
		}
		pk := packer{limit: n.cfg.MaxMessageSize + frameOverhead + len(n.prefix), prefix: n.prefix, head: n.frameHead()}
		for _, m := range p.q.take() {
			pk.add(m)
		}
		for _, f := range pk.done() {
			if err := n.ml.SendReliable(p.node.Load(), f); err != nil {
				n.stats.sendErrors.Add(1)
				n.log.Debug("gossip: stream send failed", "peer", p.name, "bytes", len(f), "err", err)
				continue
			}
			n.stats.streamsSent.Add(1)
			n.stats.streamBytesSent.Add(uint64(len(f)))
		}
	}
}

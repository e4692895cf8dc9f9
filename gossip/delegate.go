package gossip

import (
	"bytes"
	"sync"

	"github.com/hashicorp/memberlist"
)

// delegate receives memberlist's callbacks. Every method returns quickly and never calls back
// into memberlist: messages and membership events are copied and handed to the node's worker.
type delegate struct{ n *Node }

var (
	_ memberlist.Delegate         = (*delegate)(nil)
	_ memberlist.EventDelegate    = (*delegate)(nil)
	_ memberlist.ConflictDelegate = (*delegate)(nil)
)

// NodeMeta returns the encoded nodeMeta (fixed at New; always far below limit).
func (d *delegate) NodeMeta(limit int) []byte {
	if len(d.n.meta) > limit {
		return nil
	}
	return d.n.meta
}

// NotifyMsg is called by memberlist's packet handler (datagrams) and by one goroutine per inbound
// stream, possibly concurrently. b is reused by memberlist after return, so it is copied.
func (d *delegate) NotifyMsg(b []byte) { d.n.receive(b) }

// GetBroadcasts returns nothing: memberlist's broadcast queue is not relayed and silently drops
// items larger than a packet, so replication uses direct sends instead.
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState returns nothing: push/pull carries membership only, so its cost does not grow with
// the number of presences. Anti-entropy uses the tracker's digests.
func (d *delegate) LocalState(join bool) []byte { return nil }

// MergeRemoteState ignores the (empty) remote state.
func (d *delegate) MergeRemoteState(buf []byte, join bool) {}

// NotifyJoin, NotifyLeave and NotifyUpdate run under memberlist's node lock: they only queue.
func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.event(evJoin, n) }
func (d *delegate) NotifyLeave(n *memberlist.Node)  { d.event(evLeave, n) }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.event(evUpdate, n) }

// NotifyConflict runs under memberlist's node lock when a node with a known member's name but
// another address is refused; other is the newcomer. It only queues.
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) { d.event(evConflict, other) }

func (d *delegate) event(k eventKind, n *memberlist.Node) {
	d.n.events.push(memberEvent{kind: k, node: copyNode(n)})
}

func copyNode(n *memberlist.Node) memberlist.Node {
	c := *n
	c.Addr = append([]byte(nil), n.Addr...)
	c.Meta = bytes.Clone(n.Meta)
	return c
}

type eventKind uint8

const (
	evJoin eventKind = iota
	evLeave
	evUpdate
	evConflict
)

type memberEvent struct {
	kind eventKind
	node memberlist.Node
}

// eventQueue is an unbounded FIFO of membership events: it must never block memberlist (a full
// channel would freeze it) and must never lose an event. Its length is bounded in practice by
// membership churn, not by traffic.
type eventQueue struct {
	mu  sync.Mutex
	q   []memberEvent
	sig chan struct{}
}

func newEventQueue() *eventQueue { return &eventQueue{sig: make(chan struct{}, 1)} }

func (e *eventQueue) push(ev memberEvent) {
	e.mu.Lock()
	e.q = append(e.q, ev)
	e.mu.Unlock()
	select {
	case e.sig <- struct{}{}:
	default:
	}
}

func (e *eventQueue) drain() []memberEvent {
	e.mu.Lock()
	q := e.q
	e.q = nil
	e.mu.Unlock()
	return q
}

package gossip

import (
	"sync/atomic"

	"github.com/headcount-io/headcount/crdt"
)

// senderTable names this node in the frames it sends and resolves the senders of the frames it
// receives. A frame names its sender by short id (shortID of name and epoch); the receiver maps
// the id back through the members membership announced: a member's name and the epoch of its
// node meta. An id no member has (membership lag, a restart not yet seen, a node that left, an
// impostor) or that two members share resolves to nothing, and the frame is dropped: its ops are
// never attributed to a replica that did not send them. The tracker's catch-up path repairs
// what was dropped once membership announces the sender (ReplicaUp asks it for its chain).
type senderTable struct {
	// byID maps short ids to members; ids two members share are absent. Worker only.
	byID map[uint32]crdt.Replica
	// head is the head of our frames (frameHead): short, unless another member has our id.
	// Written by the worker, read by it and by the peers' senders.
	head atomic.Pointer[[]byte]
	// short is whether head is short. Worker only.
	short bool
}

func (s *senderTable) init(self crdt.Replica) {
	s.byID = map[uint32]crdt.Replica{}
	s.setHead(self, true)
}

func (s *senderTable) setHead(self crdt.Replica, short bool) {
	h := frameHead(self, short)
	s.head.Store(&h)
	s.short = short
}

// frameHead returns the head our frames start with now. Safe for concurrent use.
func (n *Node) frameHead() []byte { return *n.senders.head.Load() }

// rebuildSenders recomputes the id table from the member records, and our head: full while a
// member has our short id. Worker only; after every batch of membership events.
func (n *Node) rebuildSenders() {
	s := &n.senders
	clear(s.byID)
	taken := map[uint32]bool{}
	selfID := shortID(n.self)
	for name, m := range n.members {
		if m.self || m.metaErr != nil || m.meta.Protocol != ProtocolVersion {
			continue
		}
		r := crdt.Replica{Name: name, Epoch: m.meta.Epoch}
		id := shortID(r)
		if taken[id] {
			delete(s.byID, id)
			continue
		}
		taken[id] = true
		s.byID[id] = r
	}
	if short := !taken[selfID]; short != s.short {
		if !short {
			n.log.Warn("gossip: another member has this node's short id; naming this node in full in every frame", "id", selfID)
		}
		s.setHead(n.self, short)
	}
	if taken[selfID] {
		delete(s.byID, selfID) // a member with our id: frames naming it are ambiguous
	}
}

// frameFrom resolves a frame's sender; false if a short id resolves to no member. Worker only.
func (n *Node) frameFrom(s frameSender) (crdt.Replica, bool) {
	if !s.short {
		return s.full, true
	}
	r, ok := n.senders.byID[s.id]
	return r, ok
}

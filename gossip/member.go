package gossip

import (
	"sort"
	"time"

	"github.com/hashicorp/memberlist"
)

// Member is one cluster member as this node sees it.
type Member struct {
	Name     string `json:"name"`
	Addr     string `json:"addr"` // gossip address, host:port
	HTTP     string `json:"http"` // public HTTP address from the node meta; may be empty
	Status   string `json:"status"`
	Epoch    uint64 `json:"epoch"`
	Protocol uint64 `json:"protocol"`
	Self     bool   `json:"self"`
	// Since is when the member entered its Status, as seen by this node.
	Since time.Time `json:"since"`
}

// Member statuses (Member.Status).
const (
	// StatusAlive: memberlist sees the member alive and its data is counted.
	StatusAlive = "alive"
	// StatusFailed: memberlist declared the member dead without a goodbye. It is listed until it
	// comes back or Config.ReconnectTimeout passes (then it is reaped), and re-joined meanwhile.
	StatusFailed = "failed"
	// StatusIncompatible: memberlist sees the member alive, but its node meta is missing, corrupt
	// or of another ProtocolVersion, so its data is not counted.
	StatusIncompatible = "incompatible"
)

// member is the worker's one record of a member name: what memberlist last said about it, what
// the tracker was told, and the peer sender while it is up.
type member struct {
	node    memberlist.Node // last copy from memberlist
	meta    nodeMeta
	metaErr error
	status  string
	since   time.Time
	self    bool

	peer *peer // non-nil while the tracker sees this member up (epoch = peer.epoch)

	// byeEpoch is the epoch of the last goodbye received under this name (0 = none): it turns
	// memberlist's next leave of that incarnation into a graceful leave.
	byeEpoch uint64
	// leftAt is when memberlist reported the counted incarnation gone before its goodbye came
	// (zero = no such report pending). memberlist can hand a leave over before a message
	// received ahead of it (its handoff queue is taken newest first), so the goodbye may be
	// behind it: the leave is decided by settleLeaves, graceful if the goodbye comes within
	// leaveGrace, a failure otherwise.
	leftAt time.Time
	// conflict is the address of a newcomer with this name that memberlist refused while the
	// record was alive (a restart at a new address, or an impostor): it is re-joined once the
	// record is dead, so a restarted node is admitted without waiting for a push/pull.
	conflict string
}

// Members returns the members this node sees, itself included, sorted by name: alive ones, failed
// ones until they are reaped (Status says which, Since since when) and incompatible ones. The
// slice is the caller's.
func (n *Node) Members() []Member {
	v := *n.view.Load()
	return append([]Member(nil), v...)
}

// NumMembers returns the number of alive members, itself included.
func (n *Node) NumMembers() int {
	k := 0
	for _, m := range *n.view.Load() {
		if m.Status == StatusAlive {
			k++
		}
	}
	return k
}

// publish rebuilds the view readers see from the member records. Worker only.
func (n *Node) publish() {
	out := make([]Member, 0, len(n.members))
	for name, m := range n.members {
		if m.status == "" {
			continue
		}
		mm := Member{Name: name, Addr: m.node.Address(), Status: m.status, Self: m.self, Since: m.since}
		if !m.leftAt.IsZero() {
			// memberlist lost it and no goodbye came yet (its presences are hidden): failed as
			// far as readers can tell, until a goodbye makes it a leave within leaveGrace.
			mm.Status, mm.Since = StatusFailed, m.leftAt
		}
		if m.metaErr == nil {
			mm.Epoch, mm.Protocol, mm.HTTP = m.meta.Epoch, m.meta.Protocol, m.meta.HTTP
		}
		out = append(out, mm)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	n.view.Store(&out)
	var failed []failedPeer
	var peers []*peer
	for _, m := range n.members {
		if m.peer != nil {
			peers = append(peers, m.peer)
		}
		if m.status == StatusFailed {
			failed = append(failed, failedPeer{addr: m.node.Address(), conflict: m.conflict, since: m.since})
		}
	}
	n.failed.Store(&failed)
	sort.Slice(peers, func(i, j int) bool { return peers[i].name < peers[j].name })
	n.peers.Store(&peers)
}

// reap forgets failed members older than ReconnectTimeout. Worker only; reports whether the view
// changed.
func (n *Node) reap(now time.Time) bool {
	if len(*n.failed.Load()) == 0 {
		// publish, which runs after every batch of status changes, listed no failed member:
		// nothing to reap, and no walk over every member on every tick.
		return false
	}
	changed := false
	for name, m := range n.members {
		if m.status == StatusFailed && n.cfg.ReconnectTimeout > 0 && now.Sub(m.since) > n.cfg.ReconnectTimeout {
			delete(n.members, name)
			changed = true
		}
	}
	return changed
}

package tracker

import (
	"slices"
	"strings"
	"time"

	"github.com/headcount-io/headcount/crdt"
)

// ReplicaUp tells the tracker that membership sees r alive. A newer epoch
// of a known name drops the old incarnation at once; a replica that was
// down is shown again; one that was dropped while unreachable is revived.
// The returned messages ask r for its data and offer ours.
func (t *Tracker) ReplicaUp(r crdt.Replica) []Outbound {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.Name == t.self.Name {
		return nil
	}
	if old := t.replicas[r.Name]; old != nil {
		switch {
		case old.replica.Epoch > r.Epoch:
			return nil // a late event about an older incarnation
		case old.replica.Epoch < r.Epoch:
			t.apply(t.state.Drop(old.replica))
			t.deadAt[r.Name] = t.now
		}
	}
	if t.state.IsDead(r) {
		t.state.Revive(r)
	}
	t.replicas[r.Name] = &replicaState{replica: r, up: true}
	t.apply(t.state.Show(r))
	delete(t.requested, r.Name)
	out := t.request(nil, r, r, t.state.Seq(r))
	if !t.left {
		out = append(out, Outbound{Target: ToOne, To: r, Msg: t.state.Digest()})
	}
	return out
}

// ReplicaDown tells the tracker that membership sees r as failed: its
// presences are hidden from counts but kept until PermdownPeriod passes.
func (t *Tracker) ReplicaDown(r crdt.Replica) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.Name == t.self.Name {
		return // membership reporting this node itself: ignore
	}
	rs := t.replicas[r.Name]
	if rs != nil && rs.replica.Epoch > r.Epoch {
		return
	}
	if rs == nil || rs.replica.Epoch < r.Epoch {
		rs = &replicaState{replica: r}
		t.replicas[r.Name] = rs
	}
	if rs.up {
		rs.up = false
		rs.downSince = time.Time{}
	}
	t.apply(t.state.Hide(r))
}

// ReplicaLeft tells the tracker that r left for good (a goodbye, or a
// graceful leave seen by membership): its presences are dropped at once.
func (t *Tracker) ReplicaLeft(r crdt.Replica) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropLocked(r)
}

func (t *Tracker) dropLocked(r crdt.Replica) {
	if r.Name == t.self.Name {
		return // never drop ourselves
	}
	if rs := t.replicas[r.Name]; rs != nil && rs.replica.Epoch <= r.Epoch {
		delete(t.replicas, r.Name)
	}
	t.apply(t.state.Drop(r))
	t.deadAt[r.Name] = t.now
}

// Leave returns this node's goodbye for every peer. Afterwards local
// operations are refused with ErrClosed and no more deltas or digests are
// sent; the tracker still answers reads.
func (t *Tracker) Leave() []Outbound {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.left = true
	return []Outbound{{Target: ToAll, Msg: &crdt.Goodbye{Replica: t.self}}}
}

// ReplicaInfo describes one replica this tracker knows.
type ReplicaInfo struct {
	Replica   crdt.Replica
	Self      bool
	Up        bool
	Presences int // entries held for it (hidden ones included)
	Seq       crdt.Seq
}

// Replicas describes this node and every remote replica it knows, sorted
// by name.
func (t *Tracker) Replicas() []ReplicaInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []ReplicaInfo
	seen := make(map[string]bool)
	for _, p := range t.state.Partitions() {
		up := p.Owner.Name == t.self.Name
		if rs := t.replicas[p.Owner.Name]; rs != nil && rs.replica == p.Owner {
			up = rs.up
		}
		seen[p.Owner.Name] = true
		out = append(out, ReplicaInfo{Replica: p.Owner, Self: p.Owner.Name == t.self.Name, Up: up, Presences: p.Entries, Seq: p.Seq})
	}
	for name, rs := range t.replicas {
		if !seen[name] {
			out = append(out, ReplicaInfo{Replica: rs.replica, Up: rs.up})
		}
	}
	slices.SortFunc(out, func(a, b ReplicaInfo) int { return strings.Compare(a.Replica.Name, b.Replica.Name) })
	return out
}

package tracker

import (
	"slices"
	"strings"
	"time"

	"github.com/headcount-io/headcount/crdt"
)

// ReplicaUp tells the tracker that membership sees r alive. Membership is
// the one authority on incarnations: r becomes the name's current
// incarnation whatever the order of the epochs (a node restarted after its
// clock stepped back has a lower one), so any other incarnation of the name
// is dropped at once. A replica that was down is shown again; one that was
// dropped while unreachable is revived. The returned messages ask r for its
// data and offer ours.
func (t *Tracker) ReplicaUp(r crdt.Replica) []Outbound {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.Name == t.self.Name {
		return nil
	}
	seqAt := t.now
	if old := t.replicas[r.Name]; old != nil {
		if old.replica == r {
			seqAt = old.seqAt
		} else {
			t.apply(t.state.Drop(old.replica))
			t.deadAt[r.Name] = t.now
		}
	}
	if t.state.IsDead(r) {
		t.state.Revive(r)
	}
	t.replicas[r.Name] = &replicaState{replica: r, up: true, seqAt: seqAt}
	t.sweep = true
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
// A replica that said goodbye is dropped at once instead. A report about
// another incarnation than the name's current one is ignored.
func (t *Tracker) ReplicaDown(r crdt.Replica) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.Name == t.self.Name {
		return // membership reporting this node itself: ignore
	}
	rs := t.replicas[r.Name]
	if rs != nil && rs.replica != r {
		return
	}
	if rs != nil && rs.leaving {
		t.dropLocked(r) // it said goodbye, then membership lost it: it left
		return
	}
	if rs == nil {
		rs = &replicaState{replica: r, seqAt: t.now}
		t.replicas[r.Name] = rs
	}
	if rs.up {
		rs.up = false
		rs.downSince = time.Time{}
	}
	t.sweep = true
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
	if rs := t.replicas[r.Name]; rs != nil && rs.replica == r {
		delete(t.replicas, r.Name)
	}
	t.apply(t.state.Drop(r))
	t.deadAt[r.Name] = t.now
}

// goodbye handles r's goodbye. Without a gossip key anyone can send one, so
// it only drops r's presences at once when membership no longer sees r up;
// while membership still does, they are hidden (counts are right at once for
// an honest leave) until membership confirms the leave (ReplicaLeft or
// ReplicaDown drop them) or GoodbyeGrace passes, when a spoofed goodbye is
// undone. A goodbye of an incarnation membership has not announced is
// ignored.
func (t *Tracker) goodbye(r crdt.Replica) {
	rs := t.replicas[r.Name]
	switch {
	case rs == nil || rs.replica != r:
		t.stats.Ignored++
	case !rs.up:
		t.dropLocked(r)
	case !rs.leaving:
		rs.leaving, rs.leavingSince = true, time.Time{}
		t.sweep = true
		t.apply(t.state.Hide(r))
	}
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

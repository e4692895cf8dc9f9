package tracker

import (
	"slices"
	"strings"
	"time"

	"github.com/headcount-io/headcount/crdt"
)

// Target says where an Outbound message goes.
type Target uint8

const (
	// ToAll sends to every live peer.
	ToAll Target = iota
	// ToOne sends to Outbound.To.
	ToOne
	// ToSome sends to a few random live peers; the transport picks them.
	ToSome
)

// Outbound is a message the transport must send on the tracker's behalf.
// Msg is shared and must not be modified; encode it with crdt.Marshal.
type Outbound struct {
	Target Target
	To     crdt.Replica
	Msg    crdt.Message
}

// Stats are counters for metrics and tests. Presences, Topics and Replicas
// are current values; the rest count since New.
type Stats struct {
	Presences        int    // visible presences
	Topics           int    // topics with a visible presence
	Replicas         int    // remote replicas known (up or down)
	Down             int    // remote replicas seen as down
	Dead             int    // dropped incarnations remembered
	DeltasSent       uint64 // local deltas flushed
	DeltasApplied    uint64 // remote deltas that brought news
	Gaps             uint64 // remote deltas that arrived ahead of a gap
	Stale            uint64 // remote deltas or snapshots already known
	Ignored          uint64 // messages about dead, superseded or self replicas
	Invalid          uint64 // messages rejected as malformed
	Requests         uint64 // catch-up requests sent
	SnapshotsSent    uint64 // snapshots sent in answer to requests
	SnapshotsApplied uint64 // snapshots that replaced a partition
	SnapshotParts    uint64 // parts of snapshots stored until their last part arrives
	Permdowns        uint64 // replicas dropped after PermdownPeriod
}

// Stats returns the tracker's counters.
func (t *Tracker) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats
	s.Presences = t.presences
	s.Topics = len(t.topics)
	s.Replicas = len(t.replicas)
	for _, r := range t.replicas {
		if !r.up {
			s.Down++
		}
	}
	s.Dead = len(t.deadAt)
	return s
}

// Tick advances the tracker's clock to now. It flushes batched local
// operations as deltas for every live peer, emits a digest when one is due,
// drops replicas that have been down longer than PermdownPeriod and forgets
// dead incarnations older than DeadRetention. Something must call Tick
// regularly, even on a node without peers (package gossip does): until
// then local operations stay buffered.
func (t *Tracker) Tick(now time.Time) []Outbound {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.now = now
	var out []Outbound
	if !t.left {
		for _, d := range t.state.Flush(t.cfg.MaxDeltaOps) {
			out = append(out, Outbound{Target: ToAll, Msg: d})
			t.stats.DeltasSent++
		}
	}
	if now.Sub(t.lastDigest) >= t.cfg.DigestInterval && !t.left {
		t.lastDigest = now
		out = append(out, Outbound{Target: ToSome, Msg: t.state.Digest()})
	}
	// Partitions learnt from relayed data, of replicas membership never
	// reported, count as down from now: they are hidden and will be dropped.
	for _, p := range t.state.Partitions() {
		if p.Owner.Name != t.self.Name && t.replicas[p.Owner.Name] == nil {
			t.replicas[p.Owner.Name] = &replicaState{replica: p.Owner}
		}
	}
	for name, r := range t.replicas {
		switch {
		case r.up:
		case r.downSince.IsZero():
			r.downSince = now
		case now.Sub(r.downSince) >= t.cfg.PermdownPeriod:
			t.log.Debug("permdown", "replica", r.replica)
			t.apply(t.state.Drop(r.replica))
			delete(t.replicas, name)
			t.deadAt[name] = now
			t.stats.Permdowns++
		}
	}
	for _, name := range t.state.DeadNames() {
		if _, ok := t.deadAt[name]; !ok {
			t.deadAt[name] = now // superseded by a newer epoch seen in data
		}
	}
	for name, at := range t.deadAt {
		if at.IsZero() {
			t.deadAt[name] = now // dropped before the first Tick
			continue
		}
		if now.Sub(at) >= t.cfg.DeadRetention {
			t.state.ForgetDead(name)
			delete(t.deadAt, name)
		}
	}
	for name, at := range t.requested {
		if now.Sub(at) >= t.cfg.RequestRetry {
			delete(t.requested, name)
		}
	}
	return out
}

// Handle applies a message received from peer from and returns the replies
// to send. Malformed messages are counted and dropped; they never change
// the state. Handle takes ownership of m: its entries become part of this
// tracker's state, so m must be a copy decoded for this tracker (as
// crdt.Unmarshal returns), never a message another tracker returned.
func (t *Tracker) Handle(from crdt.Replica, m crdt.Message) []Outbound {
	t.mu.Lock()
	defer t.mu.Unlock()
	if from.Name == t.self.Name {
		t.stats.Ignored++
		return nil
	}
	var out []Outbound
	switch m := m.(type) {
	case *crdt.Delta:
		ch, st, err := t.state.ApplyDelta(m)
		t.count(st, err)
		t.apply(ch)
		if st == crdt.Gap {
			out = t.request(out, from, m.Owner, t.state.Seq(m.Owner))
		}
	case *crdt.Snapshot:
		ch, st, err := t.state.ApplySnapshot(m)
		t.count(st, err)
		if st == crdt.Applied {
			t.stats.SnapshotsApplied++
		}
		t.apply(ch)
	case *crdt.Request:
		for _, msg := range t.state.Since(m.Owner, m.Since, t.cfg.MaxDeltaOps) {
			if sn, ok := msg.(*crdt.Snapshot); ok && sn.Part == 0 {
				t.stats.SnapshotsSent++
			}
			out = append(out, Outbound{Target: ToOne, To: from, Msg: msg})
		}
	case *crdt.Digest:
		for _, it := range m.Items {
			if since, behind := t.state.Behind(it); behind {
				out = t.request(out, from, it.Owner, since)
			}
		}
	case *crdt.Goodbye:
		if m.Replica == from {
			t.dropLocked(from)
		}
	}
	return out
}

func (t *Tracker) count(st crdt.Status, err error) {
	switch {
	case err != nil:
		t.stats.Invalid++
		t.log.Warn("invalid message", "err", err)
	case st == crdt.Applied:
		t.stats.DeltasApplied++
	case st == crdt.Gap:
		t.stats.Gaps++
	case st == crdt.Stale:
		t.stats.Stale++
	case st == crdt.Ignored:
		t.stats.Ignored++
	case st == crdt.Partial:
		t.stats.SnapshotParts++
	}
}

// request asks peer for owner's operations since a sequence, unless the
// same owner was asked for within RequestRetry.
func (t *Tracker) request(out []Outbound, peer, owner crdt.Replica, since crdt.Seq) []Outbound {
	if _, recent := t.requested[owner.Name]; recent {
		return out
	}
	t.requested[owner.Name] = t.now
	t.stats.Requests++
	return append(out, Outbound{Target: ToOne, To: peer, Msg: &crdt.Request{Owner: owner, Since: since}})
}

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

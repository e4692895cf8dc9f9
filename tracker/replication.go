package tracker

import (
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
	t.tickRollups()
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
	if t.sweep {
		t.sweep = false
		for name, r := range t.replicas {
			if r.seqAt.IsZero() {
				r.seqAt = now // announced or advanced before the first Tick
			}
			if r.leaving && r.up {
				switch {
				case r.leavingSince.IsZero():
					r.leavingSince = now
				case now.Sub(r.leavingSince) >= t.cfg.GoodbyeGrace:
					// Membership never confirmed the goodbye: it was not the
					// replica's (or it changed its mind): show it again.
					t.log.Warn("goodbye not confirmed by membership, showing the replica again", "replica", r.replica)
					r.leaving = false
					t.apply(t.state.Show(r.replica))
					t.stats.GoodbyesUndone++
				}
			}
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
				continue
			}
			if !r.up || r.leaving || r.seqAt.IsZero() {
				t.sweep = true // its timer still runs
			}
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
	for k, at := range t.answered {
		if now.Sub(at) >= t.cfg.RequestRetry/2 {
			delete(t.answered, k)
		}
	}
	return out
}

// announced reports whether r is the incarnation membership announced for
// its name (up or down). Data about any other incarnation is ignored: data
// never creates, revives or supersedes an incarnation.
func (t *Tracker) announced(r crdt.Replica) bool {
	rs := t.replicas[r.Name]
	return rs != nil && rs.replica == r
}

// Sequence plausibility: an owner's sequence grows by one per operation, so
// between two observations it cannot grow by more than maxSeqRate per second
// (far above any node's real rate) plus maxSeqSlack. A message claiming more
// is a forgery (without a gossip key anyone can send one) that would freeze
// the partition: it is refused and counted as invalid. A partition still at
// sequence 0 has no base and is not checked.
const (
	maxSeqRate  = 1 << 24 // operations per second
	maxSeqSlack = 1 << 22
)

func (t *Tracker) plausible(owner crdt.Replica, top crdt.Seq) bool {
	cur := t.state.Seq(owner)
	if top <= cur || cur == 0 {
		return true
	}
	rs := t.replicas[owner.Name]
	var elapsed time.Duration
	if !rs.seqAt.IsZero() { // zero: not ticked since it was announced; only the slack
		elapsed = min(t.now.Sub(rs.seqAt), 24*time.Hour)
	}
	limit := maxSeqSlack + uint64(elapsed.Seconds()*maxSeqRate)
	return top-cur <= limit
}

// advanced records that owner's sequence may have moved.
func (t *Tracker) advanced(owner crdt.Replica, before crdt.Seq) {
	if rs := t.replicas[owner.Name]; rs != nil && t.state.Seq(owner) != before {
		rs.seqAt = t.now
		rs.advancedAt = t.now
	}
}

// deferRequest reports whether asking for owner's operations after have, up
// to top (the newest sequence a delta or digest showed), should wait: when
// the answer would be a snapshot (top-have exceeds half the log an owner
// keeps, LogMaxOps) and owner's data advanced this tracker's sequence within
// the last RequestRetry/2, so the rest is in flight. That is a 100k burst:
// a small delta sent by datagram overtakes the big ones still queued on the
// stream, or a digest counts what the owner has flushed but not delivered;
// asking then drew a snapshot of the whole partition, stale on arrival.
// Small gaps (a lost datagram) are asked for at once as before, and a large
// one as soon as the data has stopped for RequestRetry/2.
func (t *Tracker) deferRequest(owner crdt.Replica, have, top crdt.Seq) bool {
	rs := t.replicas[owner.Name]
	return rs != nil && top-have > crdt.Seq(t.cfg.LogMaxOps/2) &&
		!rs.advancedAt.IsZero() && t.now.Sub(rs.advancedAt) < t.cfg.RequestRetry/2
}

// refuseData reports (and counts) whether a delta or snapshot about owner
// claiming sequence top must be refused before it is applied.
func (t *Tracker) refuseData(owner crdt.Replica, top crdt.Seq) bool {
	if !t.announced(owner) {
		t.stats.Ignored++
		return true
	}
	if !t.plausible(owner, top) {
		t.stats.Invalid++
		t.log.Warn("implausible sequence jump refused", "owner", owner, "have", t.state.Seq(owner), "claimed", top)
		return true
	}
	return false
}

// answerAllowed rate-limits catch-up answers: one per (requester, owner)
// per half RequestRetry, which is twice as often as an honest requester
// asks. A request costs its sender ~40 bytes and can draw a whole partition.
// (The answer goes to the requester's name and epoch as membership knows
// them, so a spoofed request cannot aim it at a third party.)
func (t *Tracker) answerAllowed(from, owner crdt.Replica) bool {
	k := [2]string{from.Name, owner.Name}
	if at, ok := t.answered[k]; ok && t.now.Sub(at) < t.cfg.RequestRetry/2 {
		t.stats.RequestsRefused++
		return false
	}
	if len(t.answered) >= 1<<16 {
		clear(t.answered) // bounded; forgetting only lets one more answer through
	}
	t.answered[k] = t.now
	return true
}

// Handle applies a message received from peer from and returns the replies
// to send. Malformed messages are counted and dropped; they never change
// the state. Handle takes ownership of m: its entries become part of this
// tracker's state, so m must be a copy decoded for this tracker (as
// crdt.Unmarshal returns), never a message another tracker returned.
//
// A catch-up answer is taken under the tracker's mutex but built (merged, or
// for a snapshot sorted and cut into parts) after it is released, so a
// large one never stalls Track and Count.
func (t *Tracker) Handle(from crdt.Replica, m crdt.Message) []Outbound {
	out, answer := t.handle(from, m)
	if t.answerHook != nil {
		t.answerHook()
	}
	for _, msg := range answer.Build() {
		out = append(out, Outbound{Target: ToOne, To: from, Msg: msg})
	}
	return out
}

// handle is Handle under the mutex; a catch-up answer is returned unbuilt.
func (t *Tracker) handle(from crdt.Replica, m crdt.Message) ([]Outbound, crdt.CatchUp) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if from.Name == t.self.Name {
		t.stats.Ignored++
		return nil, crdt.CatchUp{}
	}
	var out []Outbound
	switch m := m.(type) {
	case *crdt.Delta:
		if t.refuseData(m.Owner, m.To) {
			break
		}
		before := t.state.Seq(m.Owner)
		ch, st, err := t.state.ApplyDelta(m)
		t.count(st, err)
		t.apply(ch)
		t.advanced(m.Owner, before)
		if have := t.state.Seq(m.Owner); st == crdt.Gap && !t.deferRequest(m.Owner, have, m.To) {
			out = t.request(out, from, m.Owner, have)
		}
	case *crdt.Snapshot:
		if t.refuseData(m.Owner, m.Seq) {
			break
		}
		before := t.state.Seq(m.Owner)
		ch, st, err := t.state.ApplySnapshot(m)
		t.count(st, err)
		if st == crdt.Applied {
			t.stats.SnapshotsApplied++
		}
		t.apply(ch)
		t.advanced(m.Owner, before)
	case *crdt.Request:
		if !t.answerAllowed(from, m.Owner) {
			break
		}
		answer := t.state.CatchUp(m.Owner, m.Since, t.cfg.MaxDeltaOps)
		if answer.IsSnapshot() {
			t.stats.SnapshotsSent++
		}
		return out, answer
	case *crdt.Digest:
		for _, it := range m.Items {
			// Behind first: it is almost always false, and both must hold.
			if since, behind := t.state.Behind(it); behind && t.announced(it.Owner) && !t.deferRequest(it.Owner, since, it.Seq) {
				out = t.request(out, from, it.Owner, since)
			}
		}
	case *crdt.Goodbye:
		if m.Replica == from {
			t.goodbye(from)
		}
	}
	return out, crdt.CatchUp{}
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

package gossip

import (
	"fmt"
	"time"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// run is the worker: the only goroutine that calls the tracker's replication methods and the only
// one that touches the member records.
func (n *Node) run() {
	defer n.wg.Done()
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	defer flush.Stop()
	armed := false
	var pace flushPacer
	// tick ticks the tracker; waited says the flush waited for a token (over budget).
	tick := func(waited bool) {
		now := time.Now()
		out := n.tr.Tick(now)
		for _, o := range out {
			if _, ok := o.Msg.(*crdt.Delta); ok {
				pace.take(now, n.window(), waited) // only a flush of local changes costs a token
				break
			}
		}
		n.send(out)
	}
	for {
		select {
		case <-n.stop:
			return
		case <-n.events.sig:
			n.handleEvents()
		case f := <-n.inbox:
			// Membership first: a reply to a peer that just joined needs its join applied.
			select {
			case <-n.events.sig:
				n.handleEvents()
			default:
			}
			n.inboxLen.Add(-int64(len(f)))
			n.handleFrame(f)
		case <-n.tr.Pending():
			// Flush at once while under the flush budget; over it, when the next token comes
			// (flushPacer), with every change made meanwhile.
			if armed {
				continue
			}
			if wait := pace.wait(time.Now(), n.window()); wait > 0 {
				flush.Reset(wait)
				armed = true
				continue
			}
			tick(false)
		case <-flush.C:
			armed = false
			tick(true)
		case <-ticker.C:
			tick(false)
			now := time.Now()
			if reaped := n.reap(now); n.settleLeaves(now) {
				n.changed()
			} else if reaped {
				n.publish()
			}
		case reply := <-n.leaveCh:
			reply <- n.goodbyes()
		}
	}
}

// flushBurst is the depth of the flush token bucket: how many flushes of local changes may go
// back to back, at once, before changes wait for the batching window. Four lets a few changes
// in quick succession (a join and its meta update, a tab that reconnects) go at once, and costs
// a burst of 100k tracks three small extra deltas.
const flushBurst = 4

// flushPacer is the token bucket that paces the flushes of local changes: one token per batching
// window (Node.window, so FlushPacketBudget datagrams a second at most in a large cluster), at
// most flushBurst held, one taken by each flush. A change made while a token is held is flushed
// at once, however recently the previous flush went; without one it waits for the next token, and
// every change made meanwhile goes in the same flush. Over any span T a node thus flushes at most
// flushBurst + T/window times. A flush that waited leaves the bucket empty, however late its
// timer fired, so under load the node flushes once per window counted from the previous flush,
// exactly as plain windowed batching does, and never catches up on a late timer with flushes of
// a few ops. It is kept as the instant the bucket would be full again (the virtual-scheduling
// form of a token bucket), so it needs no timer of its own. Worker only.
type flushPacer struct {
	full time.Time // when the bucket holds flushBurst tokens again; zero = full
}

// wait returns how long a flush at now must wait for a token when tokens come one per w
// (0 = go at once).
func (p *flushPacer) wait(now time.Time, w time.Duration) time.Duration {
	// Sub saturates for a zero full; compare before subtracting so nothing overflows.
	ahead, spare := p.full.Sub(now), (flushBurst-1)*w
	if ahead <= spare {
		return 0
	}
	return ahead - spare
}

// take records a flush at now: it uses one token, and a token takes w to come back. After a
// flush that waited for its token the bucket is empty: the time its timer fired late earns
// nothing.
func (p *flushPacer) take(now time.Time, w time.Duration, waited bool) {
	if waited {
		p.full = now.Add(flushBurst * w)
		return
	}
	if p.full.Before(now) {
		p.full = now
	}
	p.full = p.full.Add(w)
}

// window is the batching window for local changes: BroadcastInterval, stretched in a large
// cluster so that the flushes, one datagram to every live peer each, stay within
// FlushPacketBudget datagrams a second; never longer than TickInterval, which flushes anyway.
// Worker only.
func (n *Node) window() time.Duration {
	w := n.cfg.BroadcastInterval
	if n.cfg.FlushPacketBudget <= 0 {
		return w
	}
	peers := len(n.livePeers())
	return min(max(w, time.Duration(peers)*time.Second/time.Duration(n.cfg.FlushPacketBudget)), n.cfg.TickInterval)
}

func (n *Node) handleFrame(f []byte) {
	n.stats.framesReceived.Add(1)
	n.stats.bytesReceived.Add(uint64(len(f)))
	var out []tracker.Outbound
	pf, err := parseFrame(f)
	if err == nil {
		from, known := n.frameFrom(pf.sender)
		if !known {
			// Never guess: the ops are not attributed to anyone, and catch-up repairs them.
			n.stats.unknownSender.Add(1)
			n.log.Debug("gossip: frame from an unknown short id dropped", "id", pf.sender.id)
			return
		}
		err = pf.each(n.cfg.MaxMessageSize, func(msg []byte) {
			m, err := crdt.UnmarshalBody(from, msg)
			if err != nil {
				n.stats.decodeErrors.Add(1)
				n.log.Debug("gossip: corrupt message", "err", err)
				return
			}
			if gb, ok := m.(*crdt.Goodbye); ok && gb.Replica == from {
				n.saidGoodbye(from)
			}
			n.stats.messagesHandled.Add(1)
			out = append(out, n.tr.Handle(from, m)...)
		})
	}
	if err != nil {
		n.stats.decodeErrors.Add(1)
		n.log.Debug("gossip: corrupt frame", "err", err)
	}
	n.send(out)
	if n.pendingLeaves > 0 && n.settleLeaves(time.Now()) {
		n.changed() // a goodbye came for a leave that waited for it
	}
}

// handleInbox handles the frames waiting in the inbox, before a counted member that has not
// said goodbye is forgotten. A leaving peer's goodbye and memberlist's leave (or, on a Host, the
// withdrawal of its meta) arrive within microseconds, the goodbye first; a busy worker finds
// both queued and takes membership events first, so without this the goodbye came too late and
// a graceful leave counted as a failure. Every frame that arrived before the leave event is in
// the inbox by now (the event was drained after it was queued). The events of this batch applied
// so far are published to the sender ids first; a frame from a member whose join comes later in
// the batch is dropped as from an unknown sender, and catch-up repairs it. Worker only (the only
// receiver from the inbox, so len(n.inbox) frames are there to take).
func (n *Node) handleInbox() {
	k := len(n.inbox)
	if k == 0 {
		return
	}
	n.rebuildSenders()
	for range k {
		f := <-n.inbox
		n.inboxLen.Add(-int64(len(f)))
		n.handleFrame(f)
	}
}

// saidGoodbye records that r sent a goodbye. memberlist cannot tell a graceful leave from a
// failure (its Node.State is never set in callbacks), so the goodbye is the leave intent. Only
// names membership knows get a record, so the records stay bounded by membership.
func (n *Node) saidGoodbye(r crdt.Replica) {
	if m := n.members[r.Name]; m != nil && !m.self {
		m.byeEpoch = r.Epoch
	}
}

// handleEvents turns membership events into member records and tracker calls, then publishes the
// new view.
func (n *Node) handleEvents() {
	evs := n.events.drain()
	if len(evs) == 0 {
		return
	}
	now := time.Now()
	for _, ev := range evs {
		n.applyEvent(ev, now)
	}
	n.changed()
}

// changed publishes changed member records: the sender ids, the view, and the rejoin loop's
// kick if one is due. Worker only.
func (n *Node) changed() {
	n.rebuildSenders()
	n.publish()
	if n.kick {
		// After publish, so the rejoin loop reads the records that woke it.
		n.kick = false
		select {
		case n.rejoinKick <- struct{}{}:
		default:
		}
	}
}

func (n *Node) applyEvent(ev memberEvent, now time.Time) {
	node := ev.node
	m := n.members[node.Name]
	if ev.kind == evConflict {
		// node is the newcomer memberlist refused; remember its address while the record lives.
		if m != nil && !m.self && m.conflict != node.Address() {
			m.conflict = node.Address()
			n.kick = m.status == StatusFailed // the rejoin loop times its reclaim
		}
		return
	}
	if m == nil {
		m = &member{self: node.Name == n.cfg.Name}
		n.members[node.Name] = m
	}
	if m.peer != nil && m.byeEpoch != m.peer.epoch && (ev.kind == evLeave || n.host != nil && len(node.Meta) == 0) {
		// m is about to be forgotten without a goodbye: its goodbye may be waiting in the inbox.
		n.handleInbox()
	}
	revived := false // a leave was waiting for its goodbye, with the replica hidden
	if !m.leftAt.IsZero() {
		if ev.kind == evLeave {
			return // already waiting for its goodbye
		}
		// Back (a death refuted) or replaced (a restart) before the leave was decided: it was
		// no failure, or the new incarnation replaces it.
		m.leftAt = time.Time{}
		n.pendingLeaves--
		revived = true
	}
	m.node = node
	meta, err := decodeMeta(node.Meta)
	if err == nil && meta.Protocol != ProtocolVersion {
		err = fmt.Errorf("%w: protocol %d, want %d", ErrBadMeta, meta.Protocol, ProtocolVersion)
	}
	setStatus := func(s string) bool {
		if m.status == s {
			return false
		}
		m.status, m.since = s, now
		return true
	}
	if n.host != nil && len(node.Meta) == 0 && !m.self && ev.kind != evLeave {
		// On a Host: a member that carries no Headcount part (never did, or its node stopped)
		// is no Headcount member: forget it like a leave, graceful if it said goodbye.
		n.forget(m, now)
		delete(n.members, node.Name)
		return
	}
	switch ev.kind {
	case evJoin, evUpdate:
		m.meta, m.metaErr = meta, err
		m.conflict = ""
		if m.self {
			setStatus(StatusAlive)
			return
		}
		if err != nil {
			if setStatus(StatusIncompatible) {
				n.stats.badMeta.Add(1)
				n.log.Warn("gossip: member ignored", "peer", node.Name, "addr", node.Address(), "err", err)
			}
			if m.peer != nil { // it was counted: now it is not
				n.downPeer(m, now)
				m.status = StatusIncompatible
			}
			return
		}
		if setStatus(StatusAlive) {
			n.log.Info("gossip: member up", "peer", node.Name, "addr", node.Address(), "members", n.ml.NumMembers())
		}
		p := m.peer
		if p == nil {
			p = &peer{name: node.Name, q: newStreamQueue(n.cfg.PeerQueueBytes)}
			p.node.Store(&node)
			n.setPeer(m, p)
			n.wg.Add(1) // the worker runs until Close's wg.Wait, so this Add never races it
			go n.runSender(p)
		} else if p.epoch == meta.Epoch {
			p.node.Store(&node) // an address or meta change of the same incarnation
			if revived {
				n.send(n.tr.ReplicaUp(crdt.Replica{Name: node.Name, Epoch: p.epoch}))
			}
			return
		}
		p.epoch = meta.Epoch
		p.node.Store(&node)
		r := crdt.Replica{Name: node.Name, Epoch: meta.Epoch}
		n.log.Debug("gossip: replica up", "replica", r)
		n.stats.joined.Add(1)
		n.send(n.tr.ReplicaUp(r))
	case evLeave:
		if m.self {
			return
		}
		if m.peer != nil && m.byeEpoch != m.peer.epoch && n.leaveGrace() > 0 {
			// Its goodbye may still be behind this leave: settleLeaves decides whether it left
			// or failed. Its presences are hidden now, as those of any member memberlist lost.
			m.leftAt = now
			n.pendingLeaves++
			n.tr.ReplicaDown(crdt.Replica{Name: node.Name, Epoch: m.peer.epoch})
			return
		}
		if n.forget(m, now) {
			delete(n.members, node.Name)
			return
		}
		setStatus(StatusFailed)
	}
}

// leaveGrace is how long a leave of a counted member waits for its goodbye before it counts as
// a failure: five gossip intervals (500 ms by default), short beside memberlist's failure
// detection, long beside a goodbye that memberlist handed over after the leave.
func (n *Node) leaveGrace() time.Duration { return 5 * n.cfg.GossipInterval }

// settleLeaves decides the leaves that wait for a goodbye: graceful once it came, failed once
// leaveGrace is over. It reports whether a record changed. Worker only.
func (n *Node) settleLeaves(now time.Time) bool {
	if n.pendingLeaves == 0 {
		return false
	}
	changed := false
	for name, m := range n.members {
		if m.leftAt.IsZero() {
			continue
		}
		if bye := m.peer != nil && m.byeEpoch == m.peer.epoch; !bye && now.Sub(m.leftAt) < n.leaveGrace() {
			continue
		}
		m.leftAt = time.Time{}
		n.pendingLeaves--
		changed = true
		if n.forget(m, now) {
			delete(n.members, name)
		}
	}
	return changed
}

// forget tells the tracker that m is gone: left (true) if it was never counted or said goodbye
// for the incarnation counted, failed (false) otherwise.
func (n *Node) forget(m *member, now time.Time) bool {
	if m.peer == nil {
		return true // never counted: nothing to tell the tracker
	}
	r := crdt.Replica{Name: m.node.Name, Epoch: m.peer.epoch}
	if m.byeEpoch != r.Epoch {
		n.downPeer(m, now)
		return false
	}
	m.peer.q.stop()
	n.setPeer(m, nil)
	n.log.Info("gossip: member left", "peer", r.Name, "members", n.ml.NumMembers())
	n.stats.left.Add(1)
	n.tr.ReplicaLeft(r)
	return true
}

// downPeer stops m's sender and tells the tracker its replica failed.
func (n *Node) downPeer(m *member, now time.Time) {
	r := crdt.Replica{Name: m.node.Name, Epoch: m.peer.epoch}
	m.peer.q.stop()
	n.setPeer(m, nil)
	m.status, m.since = StatusFailed, now
	n.log.Info("gossip: member failed", "peer", r.Name, "addr", m.node.Address(), "members", n.ml.NumMembers())
	n.stats.failed.Add(1)
	n.tr.ReplicaDown(r)
	n.kick = true
}

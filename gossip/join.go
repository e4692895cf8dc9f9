package gossip

import (
	"math/rand/v2"
	"time"
)

// joinLoop retries the seeds with exponential backoff until one answers or the node stops.
func (n *Node) joinLoop() {
	defer n.wg.Done()
	backoff := n.cfg.JoinBackoffMin
	t := time.NewTimer(backoff)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		k, err := n.join(n.cfg.Join)
		if k > 0 {
			n.log.Info("gossip: joined", "seeds_answered", k, "members", n.ml.NumMembers())
			return
		}
		n.log.Debug("gossip: join failed", "err", err, "retry_in", backoff)
		backoff = min(2*backoff, n.cfg.JoinBackoffMax)
		t.Reset(backoff)
	}
}

// failedPeer is a member the rejoin loop may try: a failed member's last address, and the
// address of a newcomer memberlist refused under its name (if any).
type failedPeer struct {
	addr, conflict string
	since          time.Time
}

// rejoinLoop heals partitions and admits restarted nodes. memberlist stops probing dead nodes and
// forgets them, so without it a partition would never heal.
//
// Three kinds of round: a slow one every RejoinInterval joins the seeds and up to maxRejoin
// failed members; a fast one, while some member failed less than FastRejoinWindow ago, joins one
// of those recent ones at random; and a reclaim, timed for the moment memberlist will accept a
// newcomer it refused under a failed member's name (DeadNodeReclaimTime after the failure),
// joins that newcomer, so a node restarted at a new address is admitted then and not at the next
// round. The fast rounds back off from FastRejoinMin to FastRejoinMax (doubling, with ±25%
// jitter) while they fail and start again from FastRejoinMin when a member fails. One
// successful push/pull merges both sides' membership, so one dial per node per round is enough
// and a large cluster does not storm.
func (n *Node) rejoinLoop() {
	defer n.wg.Done()
	slow := time.NewTicker(n.cfg.RejoinInterval)
	defer slow.Stop()
	fastEvery := n.cfg.FastRejoinMin
	fast := time.NewTimer(jitter(fastEvery))
	defer fast.Stop()
	reclaim := time.NewTimer(time.Hour)
	reclaim.Stop()
	defer reclaim.Stop()
	tried := make(map[string]bool) // reclaims already joined: later ones are the fast rounds' job
	armReclaim := func() {
		reclaim.Stop()
		if at, ok := n.nextReclaim(tried); ok {
			reclaim.Reset(max(time.Until(at), 0))
		}
	}
	for {
		select {
		case <-n.stop:
			return
		case <-n.rejoinKick:
			fastEvery = n.cfg.FastRejoinMin
			fast.Reset(jitter(fastEvery))
			armReclaim()
		case <-reclaim.C:
			addrs := n.reclaimTargets(time.Now(), tried)
			for _, a := range addrs {
				tried[a] = true
			}
			if len(addrs) > 0 {
				k, err := n.join(addrs)
				n.log.Debug("gossip: joined refused newcomers", "tried", addrs, "answered", k, "err", err)
			}
			armReclaim()
		case <-slow.C:
			if addrs := n.rejoinTargets(time.Now()); len(addrs) > 0 {
				if k, err := n.join(addrs); k > 0 {
					n.log.Debug("gossip: re-joined", "answered", k, "tried", len(addrs))
				} else {
					n.log.Debug("gossip: re-join failed", "tried", len(addrs), "err", err)
				}
			}
			clear(tried) // bounded by the failed members; forget the ones that are gone
			armReclaim()
		case <-fast.C:
			addrs := n.fastTargets(time.Now())
			if len(addrs) == 0 {
				fastEvery = n.cfg.FastRejoinMin
				fast.Reset(n.cfg.FastRejoinMax) // idle: look again now and then
				continue
			}
			if k, _ := n.join(addrs); k > 0 {
				n.log.Debug("gossip: fast re-join", "tried", addrs)
				fastEvery = n.cfg.FastRejoinMin
			} else {
				fastEvery = min(2*fastEvery, n.cfg.FastRejoinMax)
			}
			fast.Reset(jitter(fastEvery))
		}
	}
}

// reclaimMargin is added to DeadNodeReclaimTime when timing a reclaim: memberlist's check is
// strict, and its failure time is a little earlier than the one the worker recorded.
const reclaimMargin = 5 * time.Millisecond

// nextReclaim returns when the earliest refused newcomer not yet tried may be joined.
func (n *Node) nextReclaim(tried map[string]bool) (time.Time, bool) {
	live := n.liveAddrs()
	var (
		at time.Time
		ok bool
	)
	for _, f := range *n.failed.Load() {
		if !reclaimable(f, live, tried) {
			continue
		}
		if due := n.reclaimAt(f); !ok || due.Before(at) {
			at, ok = due, true
		}
	}
	return at, ok
}

// reclaimable reports whether f has a refused newcomer to join: one not live and not yet tried.
func reclaimable(f failedPeer, live, tried map[string]bool) bool {
	return f.conflict != "" && !live[f.conflict] && !tried[f.conflict]
}

// reclaimAt is when memberlist accepts f's refused newcomer, with reclaimMargin.
func (n *Node) reclaimAt(f failedPeer) time.Time {
	return f.since.Add(n.cfg.DeadNodeReclaimTime + reclaimMargin)
}

// reclaimTargets returns the refused newcomers' addresses, not yet tried, that memberlist now
// accepts.
func (n *Node) reclaimTargets(now time.Time, tried map[string]bool) []string {
	live := n.liveAddrs()
	var out []string
	for _, f := range *n.failed.Load() {
		if reclaimable(f, live, tried) && !now.Before(n.reclaimAt(f)) {
			out = append(out, f.conflict)
		}
	}
	return out
}

// jitter returns d ± 25%.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Millisecond
	}
	return d*3/4 + rand.N(d/2+1)
}

// join joins addrs one at a time, stopping early when the node stops, so Close never waits for
// more than one dial timeout. It returns how many answered and the last error.
func (n *Node) join(addrs []string) (int, error) {
	var (
		ok      int
		lastErr error
	)
	for _, a := range addrs {
		select {
		case <-n.stop:
			return ok, ErrClosed
		default:
		}
		k, err := n.ml.Join([]string{a})
		ok += k
		if err != nil {
			lastErr = err
		}
	}
	return ok, lastErr
}

// maxRejoin bounds the addresses tried per slow re-join round; the others wait for later rounds.
const maxRejoin = 16

// liveAddrs returns the addresses of alive members (self included).
func (n *Node) liveAddrs() map[string]bool {
	live := make(map[string]bool)
	live[n.addr] = true
	for _, m := range *n.view.Load() {
		if m.Status == StatusAlive {
			live[m.Addr] = true
		}
	}
	return live
}

// rejoinTargets returns the seeds and failed members' addresses that no alive member has,
// shuffled, at most maxRejoin.
func (n *Node) rejoinTargets(now time.Time) []string {
	live := n.liveAddrs()
	var out []string
	seen := make(map[string]bool)
	add := func(a string) {
		if a != "" && !live[a] && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, s := range n.cfg.Join {
		add(s)
	}
	for _, f := range *n.failed.Load() {
		add(f.addr)
		if now.Sub(f.since) >= n.cfg.DeadNodeReclaimTime {
			add(f.conflict)
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	if len(out) > maxRejoin {
		out = out[:maxRejoin]
	}
	return out
}

// fastTargets picks one member that failed less than FastRejoinWindow ago, at random, and returns
// its address, or, when a newcomer was refused under its name, the newcomer's address once it may
// reclaim the name: the old address is then left to the slow rounds, as the node has most likely
// moved and a dial to a vanished host would hold this loop for a whole TCPTimeout.
func (n *Node) fastTargets(now time.Time) []string {
	live := n.liveAddrs()
	var recent []failedPeer
	for _, f := range *n.failed.Load() {
		if now.Sub(f.since) < n.cfg.FastRejoinWindow {
			recent = append(recent, f)
		}
	}
	if len(recent) == 0 {
		return nil
	}
	f := recent[rand.IntN(len(recent))]
	switch {
	case f.conflict == "":
		if !live[f.addr] {
			return []string{f.addr}
		}
	case !live[f.conflict] && now.Sub(f.since) >= n.cfg.DeadNodeReclaimTime:
		return []string{f.conflict}
	}
	return nil
}

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
// Two kinds of round: a slow one every RejoinInterval joins the seeds and up to maxRejoin failed
// members; a fast one, while some member failed less than FastRejoinWindow ago, joins one of those
// recent ones at random (and a refused newcomer's address once DeadNodeReclaimTime has passed).
// The fast rounds back off from FastRejoinMin to FastRejoinMax (doubling, with ±25% jitter) while
// they fail and start again from FastRejoinMin when a member fails. One successful push/pull
// merges both sides' membership, so one dial per node per round is enough and a large cluster
// does not storm.
func (n *Node) rejoinLoop() {
	defer n.wg.Done()
	slow := time.NewTicker(n.cfg.RejoinInterval)
	defer slow.Stop()
	fastEvery := n.cfg.FastRejoinMin
	fast := time.NewTimer(jitter(fastEvery))
	defer fast.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-n.rejoinKick:
			fastEvery = n.cfg.FastRejoinMin
			fast.Reset(jitter(fastEvery))
		case <-slow.C:
			if addrs := n.rejoinTargets(time.Now()); len(addrs) > 0 {
				if k, err := n.join(addrs); k > 0 {
					n.log.Debug("gossip: re-joined", "answered", k, "tried", len(addrs))
				} else {
					n.log.Debug("gossip: re-join failed", "tried", len(addrs), "err", err)
				}
			}
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

// fastTargets picks one member that failed less than FastRejoinWindow ago, at random, and the
// address of a newcomer refused under its name if it may now reclaim it.
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
	var out []string
	if f.conflict != "" && !live[f.conflict] && now.Sub(f.since) >= n.cfg.DeadNodeReclaimTime {
		out = append(out, f.conflict)
	}
	if !live[f.addr] {
		out = append(out, f.addr)
	}
	return out
}

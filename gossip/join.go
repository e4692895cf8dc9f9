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
			n.log.Info("gossip: joined", "seeds_answered", k)
			return
		}
		n.log.Debug("gossip: join failed", "err", err, "retry_in", backoff)
		backoff = min(2*backoff, n.cfg.JoinBackoffMax)
		t.Reset(backoff)
	}
}

// rejoinLoop periodically joins the seeds and every known peer that memberlist does not see
// alive. memberlist stops probing dead nodes and forgets them, so without this a partition
// would never heal.
func (n *Node) rejoinLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.RejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if addrs := n.rejoinTargets(time.Now()); len(addrs) > 0 {
			if k, err := n.join(addrs); k > 0 {
				n.log.Debug("gossip: re-joined", "answered", k, "tried", len(addrs))
			} else {
				n.log.Debug("gossip: re-join failed", "tried", len(addrs), "err", err)
			}
		}
	}
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

// maxRejoin bounds the addresses tried per re-join round; the others wait for later rounds.
const maxRejoin = 16

// rejoinTargets returns the seeds and failed known peers (failed less than ReconnectTimeout ago)
// whose address no live member has; it forgets older failed peers.
func (n *Node) rejoinTargets(now time.Time) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	live := make(map[string]bool, len(n.members))
	for _, m := range n.members {
		live[m.Addr] = true
	}
	var out []string
	seen := make(map[string]bool)
	add := func(a string) {
		if !live[a] && !seen[a] && a != n.addr {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, s := range n.cfg.Join {
		add(s)
	}
	for name, k := range n.known {
		if k.alive {
			continue
		}
		if n.cfg.ReconnectTimeout > 0 && now.Sub(k.lastSeen) > n.cfg.ReconnectTimeout {
			delete(n.known, name)
			continue
		}
		add(k.addr)
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	if len(out) > maxRejoin {
		out = out[:maxRejoin]
	}
	return out
}

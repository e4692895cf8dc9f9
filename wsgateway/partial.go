package wsgateway

import "time"

// Honest counts (issue 12). While a member of the cluster is suspect or down, its presences
// are missing from every count this node serves. HTTP count payloads then say "partial":
// true; a channel gets the field (true or false) only when its join asked with
// {"partial": true}, because the seed article's reducer merges presence_state into a fixed
// record. The hub re-checks the cluster every partialCheck and, when the answer changes,
// brings every channel that asked up to date (a presence_diff with no joins or leaves).

// partialCheck is how often the hub looks at the members for partiality.
const partialCheck = time.Second

// sub.shape says which optional fields the channel asked for.
func (s *sub) shape() shape {
	var sh shape
	if s.withConns {
		sh |= shapeConns
	}
	if s.partial {
		sh |= shapePartial
	}
	return sh
}

// isPartial reports whether some member is suspect or down: the tracker holds a replica it
// sees as down, or Config.Partial says the membership view has a member neither alive nor
// gone for good.
func (g *Gateway) isPartial() bool {
	if g.cfg.Tracker.Stats().Down > 0 {
		return true
	}
	return g.cfg.Partial != nil && g.cfg.Partial()
}

// checkPartial refreshes the gateway's partial flag; it reports whether it changed.
func (g *Gateway) checkPartial() bool {
	p := g.isPartial()
	return g.partial.Swap(p) != p
}

// countNow is the counts of topic as the gateway serves them now: the tracker's (a roll-up's
// for a topic ending in "*") with the partial flag.
func (g *Gateway) countNow(topic string) Counts {
	c := g.count(topic)
	c.partial = g.partial.Load()
	return c
}

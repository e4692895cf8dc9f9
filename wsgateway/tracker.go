package wsgateway

import (
	"github.com/headcount-io/headcount/tracker"
)

// Tracker is what the gateway needs from package tracker; *tracker.Tracker implements it.
// Every method is called concurrently from socket goroutines and must not block on I/O.
type Tracker interface {
	// NewOwner mints the owner of one connection's presences (tracker.Tracker.NewOwner): the
	// gateway takes every owner from here, so presences an embedder tracks never collide.
	NewOwner() tracker.Owner
	Track(o tracker.Owner, topic, user string, meta []byte) (tracker.Ref, error)
	Untrack(o tracker.Owner, topic string) error
	UntrackOwner(o tracker.Owner) int
	Count(topic string) tracker.Counts
	Subscribe() *tracker.Subscription
	Stats() tracker.Stats
	// Readers (issue 12): roll-up topics and busiest-first listings.
	HoldRollup(topic string) error
	ReleaseRollup(topic string)
	Busiest(prefix string, limit int) (tracker.Counts, []tracker.TopicCounts, error)
}

var _ Tracker = (*tracker.Tracker)(nil)

// countsOf is the gateway's Counts of the tracker's.
func countsOf(c tracker.Counts) Counts {
	return Counts{Viewers: c.Viewers, Users: c.Users, Connections: c.Connections}
}

// count returns the tracker's counts of topic, O(1).
func (g *Gateway) count(topic string) Counts { return countsOf(g.cfg.Tracker.Count(topic)) }

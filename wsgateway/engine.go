package wsgateway

import "errors"

// engine is what the gateway needs from the tracker, in the gateway's own terms. Its methods
// are called concurrently from socket goroutines and must never block on I/O.
type engine interface {
	// track records a presence of owner on topic (user "" = anonymous viewer).
	track(owner uint64, topic, user string) error
	// untrack removes owner's presence on topic.
	untrack(owner uint64, topic string) error
	// untrackOwner removes every presence of owner.
	untrackOwner(owner uint64)
	// count returns the topic's counts, O(1).
	count(topic string) Counts
	// subscribe reports topics whose presences changed.
	subscribe() engineSub
	// newOwner mints a connection's owner (Tracker.NewOwner).
	newOwner() uint64
	// holdRollup and releaseRollup hold and release a roll-up topic's counts (an observer
	// of "video:*"); holdRollup may fail with errTooManyRollups.
	holdRollup(topic string) error
	releaseRollup(topic string)
	// busiest returns the roll-up counts of prefix and its limit busiest topics.
	busiest(prefix string, limit int) (Counts, []topicCount, error)
	// downReplicas returns how many remote replicas the tracker sees as down.
	downReplicas() int
}

// engineSub is a change subscription: C is signalled (never blocking the tracker) when
// Topics has something to drain.
type engineSub interface {
	C() <-chan struct{}
	Topics() []string
	Close()
}

// Errors engine.track wraps, so the gateway can tell the client why a join failed.
var (
	errTrackerClosed  = errors.New("wsgateway: tracker closed")    // the node has left the cluster
	errInvalidTopic   = errors.New("wsgateway: topic refused")     // by the tracker's own bounds
	errInvalidUser    = errors.New("wsgateway: user id refused")   // e.g. a `sub` too long
	errTooManyRollups = errors.New("wsgateway: too many roll-ups") // the tracker's MaxRollups
	// The node's caps on its own presences and topics (tracker.Config.MaxLocal*).
	errNodePresenceLimit = errors.New("wsgateway: too many presences on this node")
	errNodeTopicLimit    = errors.New("wsgateway: too many topics on this node")
)

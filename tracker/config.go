package tracker

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/headcount-io/headcount/crdt"
)

// Config configures a Tracker. Zero durations and sizes are invalid; start
// from DefaultConfig or LocalConfig and set Name.
type Config struct {
	// Name is this node's name, unique in the cluster. Required.
	Name string
	// Epoch is this incarnation's boot epoch; a restart must use a higher
	// one. 0 means the wall clock in nanoseconds at New.
	Epoch uint64
	// BroadcastInterval is how long the transport batches local operations
	// before calling Tick under load (advice for the driver; the first
	// operation after a quiet spell may be flushed at once).
	BroadcastInterval time.Duration
	// DigestInterval is how often Tick emits a digest to a few peers.
	DigestInterval time.Duration
	// RequestRetry is how long to wait before asking again for the same
	// owner's missing operations. Under loss a lost request or answer waits
	// this long, so it sets the convergence tail: 300 ms took the p99 under
	// 20% loss from 3.4 s (1 s) to 1.4 s (BENCHMARKS.md [Q4]); answers are
	// still limited to one per requester and owner per RequestRetry/2.
	RequestRetry time.Duration
	// PermdownPeriod is how long a down replica's presences are kept
	// hidden before they are dropped for good.
	PermdownPeriod time.Duration
	// GoodbyeGrace is how long a goodbye from a replica that membership still
	// sees alive hides its presences before they are shown again: without a
	// gossip key goodbyes can be spoofed, so only membership's confirmation of
	// the leave (within this time) drops them. It must exceed the membership
	// layer's leave propagation and failure detection.
	GoodbyeGrace time.Duration
	// DeadRetention is how long a dropped incarnation is remembered (so its
	// late messages are ignored) before it is forgotten.
	DeadRetention time.Duration
	// MaxDeltaOps is the most operations in one outgoing delta message.
	MaxDeltaOps int
	// LogMaxOps and LogMaxBytes bound each owner's log of recent deltas
	// kept to answer catch-up requests without a snapshot.
	LogMaxOps   int
	LogMaxBytes int
	// SnapshotChunk is the most presences in one snapshot message; a larger
	// partition is sent in parts, so no message outgrows the transport's
	// size limit (gossip refuses messages over 16 MiB).
	SnapshotChunk int
	// MaxTopicLen, MaxUserLen and MaxMetaLen bound local Track arguments,
	// in bytes.
	MaxTopicLen int
	MaxUserLen  int
	MaxMetaLen  int
	// MaxLocalPresences and MaxLocalTopics cap what this node's own clients
	// may add to the cluster's state: the presences owned by this node, and
	// the topics with at least one of them. Every node replicates them all,
	// so without a cap one client within the gateway's per-IP limits can
	// cost every node of the cluster memory. Track over a cap fails with
	// ErrTooManyPresences or ErrTooManyTopics. 0 = no limit.
	MaxLocalPresences int
	MaxLocalTopics    int
	// Logger receives debug and warning logs; nil discards them.
	Logger *slog.Logger

	// Roll-ups (issue 12, rollup.go).

	// MaxRollups is the most roll-ups (prefix counts, see HoldRollup)
	// maintained at once, held or lingering. Each costs one scan of the
	// topics to build and O(1) per presence change in a topic it covers.
	MaxRollups int
	// RollupLinger is how long a roll-up nobody holds is still maintained,
	// so that a reconnecting page or a polling dashboard does not rebuild it.
	RollupLinger time.Duration
}

// DefaultConfig returns the production settings.
func DefaultConfig() Config {
	return Config{
		BroadcastInterval: 5 * time.Millisecond,
		DigestInterval:    200 * time.Millisecond,
		RequestRetry:      300 * time.Millisecond,
		PermdownPeriod:    5 * time.Minute,
		GoodbyeGrace:      5 * time.Second,
		DeadRetention:     time.Hour,
		MaxDeltaOps:       4096,
		LogMaxOps:         16384,
		LogMaxBytes:       2 << 20,
		SnapshotChunk:     65536,
		MaxTopicLen:       255,
		MaxUserLen:        255,
		MaxMetaLen:        1024,
		MaxRollups:        1024,
		RollupLinger:      time.Minute,
		MaxLocalPresences: 1_000_000,
		MaxLocalTopics:    100_000,
	}
}

// LocalConfig returns settings for a cluster on one machine and for tests:
// faster digests and a short permdown.
func LocalConfig() Config {
	c := DefaultConfig()
	c.BroadcastInterval = 2 * time.Millisecond
	c.DigestInterval = 100 * time.Millisecond
	c.RequestRetry = 300 * time.Millisecond
	c.PermdownPeriod = 30 * time.Second
	c.DeadRetention = 10 * time.Minute
	return c
}

// ErrConfig is wrapped by every error New returns for a bad Config.
var ErrConfig = errors.New("tracker: invalid config")

func (c *Config) validate() error {
	bad := func(field, why string) error { return fmt.Errorf("%w: %s %s", ErrConfig, field, why) }
	switch {
	case c.Name == "":
		return bad("Name", "is empty")
	case len(c.Name) > 255:
		return bad("Name", "is longer than 255 bytes")
	case c.BroadcastInterval <= 0:
		return bad("BroadcastInterval", "must be > 0")
	case c.DigestInterval <= 0:
		return bad("DigestInterval", "must be > 0")
	case c.RequestRetry <= 0:
		return bad("RequestRetry", "must be > 0")
	case c.PermdownPeriod <= 0:
		return bad("PermdownPeriod", "must be > 0")
	case c.GoodbyeGrace <= 0:
		return bad("GoodbyeGrace", "must be > 0")
	case c.DeadRetention <= 0:
		return bad("DeadRetention", "must be > 0")
	case c.MaxDeltaOps <= 0 || c.MaxDeltaOps > crdt.MaxDeltaOps:
		return bad("MaxDeltaOps", fmt.Sprintf("must be in 1..%d (crdt.MaxDeltaOps)", crdt.MaxDeltaOps))
	case c.LogMaxOps <= 0:
		return bad("LogMaxOps", "must be > 0")
	case c.LogMaxBytes <= 0:
		return bad("LogMaxBytes", "must be > 0")
	case c.SnapshotChunk <= 0 || c.SnapshotChunk > crdt.MaxSnapshotEntries:
		return bad("SnapshotChunk", fmt.Sprintf("must be in 1..%d (crdt.MaxSnapshotEntries)", crdt.MaxSnapshotEntries))
	case c.MaxTopicLen <= 0 || c.MaxTopicLen > 1024:
		return bad("MaxTopicLen", "must be in 1..1024")
	case c.MaxUserLen <= 0 || c.MaxUserLen > 1024:
		return bad("MaxUserLen", "must be in 1..1024")
	case c.MaxMetaLen < 0 || c.MaxMetaLen > 64<<10:
		return bad("MaxMetaLen", "must be in 0..65536")
	case c.MaxRollups <= 0:
		return bad("MaxRollups", "must be > 0")
	case c.RollupLinger <= 0:
		return bad("RollupLinger", "must be > 0")
	case c.MaxLocalPresences < 0:
		return bad("MaxLocalPresences", "must be >= 0")
	case c.MaxLocalTopics < 0:
		return bad("MaxLocalTopics", "must be >= 0")
	}
	return nil
}

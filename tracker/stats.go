package tracker

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
	Ignored          uint64 // messages about self, dead or unannounced incarnations
	Invalid          uint64 // messages rejected as malformed or implausible
	Requests         uint64 // catch-up requests sent
	SnapshotsSent    uint64 // snapshots sent in answer to requests
	SnapshotsApplied uint64 // snapshots that replaced a partition
	SnapshotParts    uint64 // parts of snapshots stored until their last part arrives
	Permdowns        uint64 // replicas dropped after PermdownPeriod
	RollupBuilds     uint64 // roll-ups built (each one scan of the topics)
	LocalPresences   int    // presences owned by this node
	LocalTopics      int    // topics with a presence owned by this node
	LocalRefused     uint64 // Track calls refused by MaxLocalPresences or MaxLocalTopics
	GoodbyesUndone   uint64 // goodbyes membership did not confirm within GoodbyeGrace
	RequestsRefused  uint64 // catch-up requests not answered (rate limit)
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
	s.LocalPresences, s.LocalTopics, s.LocalRefused = t.local.presences, t.local.topics, t.local.refused
	return s
}

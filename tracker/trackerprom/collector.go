// Package trackerprom exposes a tracker's Stats as Prometheus metrics.
//
// It lives apart from package tracker so that the engine itself imports no
// metrics library. The collector reads tracker.Stats at scrape time; it
// keeps no state and starts no goroutines.
package trackerprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/headcount-io/headcount/internal/promtable"
	"github.com/headcount-io/headcount/tracker"
)

// Collector is a prometheus.Collector for one tracker.
type Collector struct {
	table *promtable.Table[tracker.Stats]
}

var _ prometheus.Collector = (*Collector)(nil)

// New returns a collector for t. Register it once per registry.
func New(t *tracker.Tracker) *Collector {
	g := func(name, help string, f func(tracker.Stats) float64) promtable.Row[tracker.Stats] {
		return promtable.Gauge("headcount_tracker_"+name, help, f)
	}
	c := func(name, help string, f func(tracker.Stats) uint64) promtable.Row[tracker.Stats] {
		return promtable.Counter("headcount_tracker_"+name+"_total", help, f)
	}
	return &Collector{table: promtable.New(t.Stats,
		g("presences", "Visible presences on this node, from every replica seen as up.", func(s tracker.Stats) float64 { return float64(s.Presences) }),
		g("topics", "Topics with at least one visible presence.", func(s tracker.Stats) float64 { return float64(s.Topics) }),
		g("replicas", "Remote replicas known, up or down.", func(s tracker.Stats) float64 { return float64(s.Replicas) }),
		g("replicas_down", "Remote replicas seen as down (hidden, not yet dropped).", func(s tracker.Stats) float64 { return float64(s.Down) }),
		g("dead_incarnations", "Dropped incarnations remembered to ignore their late messages.", func(s tracker.Stats) float64 { return float64(s.Dead) }),
		c("deltas_sent", "Local deltas flushed to peers.", func(s tracker.Stats) uint64 { return s.DeltasSent }),
		c("deltas_applied", "Remote deltas or snapshots that brought news.", func(s tracker.Stats) uint64 { return s.DeltasApplied }),
		c("gaps", "Remote deltas that arrived ahead of a gap.", func(s tracker.Stats) uint64 { return s.Gaps }),
		c("stale", "Remote deltas or snapshots already known.", func(s tracker.Stats) uint64 { return s.Stale }),
		c("ignored", "Messages about this node, dead or unannounced incarnations.", func(s tracker.Stats) uint64 { return s.Ignored }),
		c("invalid", "Messages rejected as malformed or implausible.", func(s tracker.Stats) uint64 { return s.Invalid }),
		c("requests", "Catch-up requests sent.", func(s tracker.Stats) uint64 { return s.Requests }),
		c("snapshots_sent", "Snapshots sent in answer to catch-up requests.", func(s tracker.Stats) uint64 { return s.SnapshotsSent }),
		c("snapshots_applied", "Snapshots that replaced a partition.", func(s tracker.Stats) uint64 { return s.SnapshotsApplied }),
		c("snapshot_parts", "Snapshot parts stored until their last part arrives.", func(s tracker.Stats) uint64 { return s.SnapshotParts }),
		c("permdowns", "Replicas dropped after the permdown period.", func(s tracker.Stats) uint64 { return s.Permdowns }),
		c("goodbyes_undone", "Goodbyes membership did not confirm within the goodbye grace (spoofed?).", func(s tracker.Stats) uint64 { return s.GoodbyesUndone }),
		c("requests_refused", "Catch-up requests not answered (rate limit).", func(s tracker.Stats) uint64 { return s.RequestsRefused }),
		c("rollup_builds", "Roll-ups built (each one scan of the topics).", func(s tracker.Stats) uint64 { return s.RollupBuilds }),
		g("local_presences", "Presences owned by this node (capped by MaxLocalPresences).", func(s tracker.Stats) float64 { return float64(s.LocalPresences) }),
		g("local_topics", "Topics with a presence owned by this node (capped by MaxLocalTopics).", func(s tracker.Stats) float64 { return float64(s.LocalTopics) }),
		c("local_refused", "Tracks refused by MaxLocalPresences or MaxLocalTopics.", func(s tracker.Stats) uint64 { return s.LocalRefused }),
	)}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { c.table.Describe(ch) }

// Collect implements prometheus.Collector: one tracker.Stats per scrape.
func (c *Collector) Collect(ch chan<- prometheus.Metric) { c.table.Collect(ch) }

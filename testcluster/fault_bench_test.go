package testcluster_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/testcluster"
)

// Benchmarks of issue 9's fault timings, in a 5-node in-memory cluster with the production
// profiles. Commands and results: BENCHMARKS.md, "Faults" ([Q]).

// timeUntilCounted returns how long from start until every running node counts want connections
// in topic.
func timeUntilCounted(b *testing.B, c *testcluster.Cluster, topic string, want int, start time.Time, bound time.Duration) time.Duration {
	b.Helper()
	deadline := start.Add(bound)
	for {
		ok := true
		for _, n := range c.Live() {
			if n.Tracker().Count(topic).Connections != want {
				ok = false
				break
			}
		}
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not counted %d everywhere within %s", topic, want, bound)
		}
		time.Sleep(time.Millisecond) // poll interval of a measurement
	}
}

// BenchmarkRestartAtNewAddress measures, for node 4 of 5 crashed and restarted at once at a new
// address (a container back with a new IP), the time from the restart until every node counts a
// presence tracked on it right after the restart (issue 9, fault 4; target 3 s). The old
// incarnation must first be declared dead, then memberlist accepts the name from the new address
// DeadNodeReclaimTime later; the sub-benchmarks vary that time on the LAN profile.
func BenchmarkRestartAtNewAddress(b *testing.B) {
	for _, reclaim := range []time.Duration{5 * time.Second, time.Second, gossip.DefaultConfig().DeadNodeReclaimTime} {
		b.Run(fmt.Sprintf("LAN/reclaim=%s", reclaim), func(b *testing.B) {
			c := benchCluster(b, 5, false, func() gossip.Config {
				g := gossip.DefaultConfig()
				g.DeadNodeReclaimTime = reclaim
				return g
			})
			var ds []time.Duration
			for k := 0; k < b.N; k++ {
				waitMembers(b, c, time.Minute)
				if err := c.Kill(4); err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				if err := c.RestartAt(4, ""); err != nil {
					b.Fatal(err)
				}
				topic := fmt.Sprintf("moved-%d", k)
				if _, err := c.Node(4).Track(topic, ""); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, timeUntilCounted(b, c, topic, 1, start, time.Minute))
			}
			b.ReportMetric(percentile(ds, 0.5), "p50-ms")
			b.ReportMetric(percentile(ds, 1), "max-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

package wsgateway

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headcount-io/headcount/internal/promtable"
)

// metrics are the gateway's counters, plain atomics on the hot path, exported as the
// headcount_gateway_* table (internal/promtable) read at scrape time.
type metrics struct {
	conns, lpSessions, channels, topics atomic.Int64
	joins, framesIn, framesOut          atomic.Uint64
	diffsSent, personalDiffs            atomic.Uint64
	diffEncodes, broadcasts             atomic.Uint64
	topicChanges, stretchedWindows      atomic.Uint64
	ringWriters                         atomic.Int64 // fan-out writers sending through io_uring
	errors                              sync.Map     // kind -> *atomic.Uint64
}

// fail counts one refused upgrade or join, bad frame or failed socket of the given kind.
func (m *metrics) fail(kind string) {
	c, ok := m.errors.Load(kind)
	if !ok {
		c, _ = m.errors.LoadOrStore(kind, new(atomic.Uint64))
	}
	c.(*atomic.Uint64).Add(1)
}

// gatewayStats is one scrape's reading of the counters.
type gatewayStats struct {
	conns, lpSessions, channels, topics, ringWriters                  int64
	joins, framesIn, framesOut, diffsSent, personalDiffs, diffEncodes uint64
	broadcasts, topicChanges, stretchedWindows                        uint64
	errors                                                            map[string]uint64
}

func (m *metrics) snapshot() gatewayStats {
	s := gatewayStats{
		conns: m.conns.Load(), lpSessions: m.lpSessions.Load(), channels: m.channels.Load(), topics: m.topics.Load(),
		ringWriters: m.ringWriters.Load(),
		joins:       m.joins.Load(), framesIn: m.framesIn.Load(), framesOut: m.framesOut.Load(),
		diffsSent: m.diffsSent.Load(), personalDiffs: m.personalDiffs.Load(), diffEncodes: m.diffEncodes.Load(),
		broadcasts: m.broadcasts.Load(), topicChanges: m.topicChanges.Load(), stretchedWindows: m.stretchedWindows.Load(),
		errors: map[string]uint64{},
	}
	m.errors.Range(func(k, v any) bool {
		s.errors[k.(string)] = v.(*atomic.Uint64).Load()
		return true
	})
	return s
}

// newMetrics returns the gateway's counters, registered with reg unless it is nil.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{}
	if reg == nil {
		return m, nil
	}
	const p = "headcount_gateway_"
	g := func(name, help string, f func(gatewayStats) int64) promtable.Row[gatewayStats] {
		return promtable.Gauge(p+name, help, func(s gatewayStats) float64 { return float64(f(s)) })
	}
	c := func(name, help string, f func(gatewayStats) uint64) promtable.Row[gatewayStats] {
		return promtable.Counter(p+name+"_total", help, f)
	}
	table := promtable.New(m.snapshot,
		g("connections", "Open connections: WebSockets and long-poll sessions.", func(s gatewayStats) int64 { return s.conns }),
		g("longpoll_sessions", "Open long-poll sessions (also counted in connections).", func(s gatewayStats) int64 { return s.lpSessions }),
		g("channels", "Joined channels over all connections.", func(s gatewayStats) int64 { return s.channels }),
		g("topics", "Topics with at least one local channel.", func(s gatewayStats) int64 { return s.topics }),
		g("io_uring_writers", "Fan-out writers that send a chunk of sockets with one io_uring submission (0: one write(2) per socket; Config.NoIOUring, or the kernel refused io_uring).", func(s gatewayStats) int64 { return s.ringWriters }),
		c("joins", "Successful channel joins.", func(s gatewayStats) uint64 { return s.joins }),
		c("frames_in", "WebSocket frames received.", func(s gatewayStats) uint64 { return s.framesIn }),
		c("frames_out", "WebSocket frames written.", func(s gatewayStats) uint64 { return s.framesOut }),
		c("diffs_sent", "presence_diff frames written to sockets.", func(s gatewayStats) uint64 { return s.diffsSent }),
		c("personal_diffs", "presence_diff frames encoded for one socket that was behind.", func(s gatewayStats) uint64 { return s.personalDiffs }),
		c("shared_diff_encodes", "presence_diff frames encoded once and shared by a topic's sockets.", func(s gatewayStats) uint64 { return s.diffEncodes }),
		c("diff_broadcasts", "Coalescing windows that sent a topic's changed counts.", func(s gatewayStats) uint64 { return s.broadcasts }),
		c("topic_changes", "Topic change notifications received from the tracker.", func(s gatewayStats) uint64 { return s.topicChanges }),
		c("coalesce_windows_stretched", "Coalescing windows made as long as the broadcasts before them took, under a steady stream of changes.", func(s gatewayStats) uint64 { return s.stretchedWindows }),
		promtable.CounterVec(p+"errors_total", "Refused upgrades, refused joins, bad frames and failed sockets, by kind.", "kind",
			func(s gatewayStats) map[string]uint64 { return s.errors }),
	)
	if err := reg.Register(table); err != nil {
		return nil, err
	}
	return m, nil
}

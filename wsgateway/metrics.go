package wsgateway

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus collectors, all named headcount_gateway_*.
type metrics struct {
	conns         prometheus.Gauge
	lpSessions    prometheus.Gauge
	channels      prometheus.Gauge
	topics        prometheus.Gauge
	joins         prometheus.Counter
	framesIn      prometheus.Counter
	framesOut     prometheus.Counter
	diffsSent     prometheus.Counter
	personalDiffs prometheus.Counter
	diffEncodes   prometheus.Counter
	broadcasts    prometheus.Counter
	topicChanges  prometheus.Counter
	errors        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, g *Gateway) (*metrics, error) {
	const ns, sub = "headcount", "gateway"
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: ns, Subsystem: sub, Name: name, Help: help}
	}
	m := &metrics{
		conns:         prometheus.NewGauge(prometheus.GaugeOpts(opts("connections", "Open connections: WebSockets and long-poll sessions."))),
		lpSessions:    prometheus.NewGauge(prometheus.GaugeOpts(opts("longpoll_sessions", "Open long-poll sessions (also counted in connections)."))),
		channels:      prometheus.NewGauge(prometheus.GaugeOpts(opts("channels", "Joined channels over all connections."))),
		topics:        prometheus.NewGauge(prometheus.GaugeOpts(opts("topics", "Topics with at least one local channel."))),
		joins:         prometheus.NewCounter(prometheus.CounterOpts(opts("joins_total", "Successful channel joins."))),
		framesIn:      prometheus.NewCounter(prometheus.CounterOpts(opts("frames_in_total", "WebSocket frames received."))),
		framesOut:     prometheus.NewCounter(prometheus.CounterOpts(opts("frames_out_total", "WebSocket frames written."))),
		diffsSent:     prometheus.NewCounter(prometheus.CounterOpts(opts("diffs_sent_total", "presence_diff frames written to sockets."))),
		personalDiffs: prometheus.NewCounter(prometheus.CounterOpts(opts("personal_diffs_total", "presence_diff frames encoded for one socket that was behind."))),
		diffEncodes:   prometheus.NewCounter(prometheus.CounterOpts(opts("shared_diff_encodes_total", "presence_diff frames encoded once and shared by a topic's sockets."))),
		broadcasts:    &countedCounter{Counter: prometheus.NewCounter(prometheus.CounterOpts(opts("diff_broadcasts_total", "Coalescing windows that sent a topic's changed counts.")))},
		topicChanges:  &countedCounter{Counter: prometheus.NewCounter(prometheus.CounterOpts(opts("topic_changes_total", "Topic change notifications received from the tracker.")))},
		errors: prometheus.NewCounterVec(prometheus.CounterOpts(opts("errors_total", "Refused upgrades, refused joins, bad frames and failed sockets, by kind.")),
			[]string{"kind"}),
	}
	ratio := prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("coalescing_ratio",
		"Topic change notifications per diff broadcast (higher = more coalescing).")), func() float64 {
		b := counterValue(m.broadcasts)
		if b == 0 {
			return 0
		}
		return counterValue(m.topicChanges) / b
	})
	presences := prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("tracker_presences", "Presences in the tracker (all replicas).")),
		func() float64 { p, _ := g.eng.stats(); return float64(p) })
	trackerTopics := prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("tracker_topics", "Topics in the tracker (all replicas).")),
		func() float64 { _, t := g.eng.stats(); return float64(t) })
	for _, c := range []prometheus.Collector{m.conns, m.lpSessions, m.channels, m.topics, m.joins, m.framesIn, m.framesOut,
		m.diffsSent, m.personalDiffs, m.diffEncodes, m.broadcasts, m.topicChanges, m.errors, ratio, presences, trackerTopics} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// countedCounter is a Prometheus counter whose value the gateway can read back.
type countedCounter struct {
	prometheus.Counter
	n atomic.Uint64
}

func (c *countedCounter) Inc() { c.n.Add(1); c.Counter.Inc() }

func counterValue(c prometheus.Counter) float64 {
	if cc, ok := c.(*countedCounter); ok {
		return float64(cc.n.Load())
	}
	return 0
}

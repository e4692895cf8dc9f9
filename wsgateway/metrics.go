package wsgateway

import (
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

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry() // registered nowhere anyone gathers
	}
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
		broadcasts:    prometheus.NewCounter(prometheus.CounterOpts(opts("diff_broadcasts_total", "Coalescing windows that sent a topic's changed counts."))),
		topicChanges:  prometheus.NewCounter(prometheus.CounterOpts(opts("topic_changes_total", "Topic change notifications received from the tracker."))),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts(opts("errors_total", "Refused upgrades, refused joins, bad frames and failed sockets, by kind.")),
			[]string{"kind"}),
	}
	for _, c := range []prometheus.Collector{m.conns, m.lpSessions, m.channels, m.topics, m.joins, m.framesIn, m.framesOut,
		m.diffsSent, m.personalDiffs, m.diffEncodes, m.broadcasts, m.topicChanges, m.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

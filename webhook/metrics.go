package webhook

import "github.com/prometheus/client_golang/prometheus"

// metrics are the Hook's Prometheus collectors, all named headcount_webhook_*. The counters read
// the Core's Stats; only the latency histogram is fed directly.
type metrics struct {
	latency prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, h *Hook) (*metrics, error) {
	const ns, sub = "headcount", "webhook"
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: ns, Subsystem: sub, Name: name, Help: help}
	}
	stat := func(f func(Stats) uint64) func() float64 {
		return func() float64 { return float64(f(h.Stats())) }
	}
	m := &metrics{latency: prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Subsystem: sub, Name: "delivery_latency_seconds",
		Help:    "From the transition (or re-send) that produced an event to the receiver's 2xx.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	})}
	dropped := func(reason string, f func(Stats) uint64) prometheus.Collector {
		o := opts("events_dropped_total", "Events dropped, by reason (queue_full, retries, handover); a dropped topic's state is re-sent.")
		o.ConstLabels = prometheus.Labels{"reason": reason}
		return prometheus.NewCounterFunc(prometheus.CounterOpts(o), stat(f))
	}
	cs := []prometheus.Collector{
		m.latency,
		prometheus.NewCounterFunc(prometheus.CounterOpts(opts("events_sent_total", "Events delivered (the receiver answered 2xx).")),
			stat(func(s Stats) uint64 { return s.Sent })),
		prometheus.NewCounterFunc(prometheus.CounterOpts(opts("batches_sent_total", "POSTs the receiver answered 2xx.")),
			stat(func(s Stats) uint64 { return s.Batches })),
		prometheus.NewCounterFunc(prometheus.CounterOpts(opts("retries_total", "Failed POSTs scheduled again (non-2xx, timeout, transport error).")),
			stat(func(s Stats) uint64 { return s.Retries })),
		prometheus.NewCounterFunc(prometheus.CounterOpts(opts("events_resent_total", "Events re-sending a topic's state (takeover, settle after a member appeared, repair after a drop).")),
			stat(func(s Stats) uint64 { return s.Resent })),
		dropped("queue_full", func(s Stats) uint64 { return s.DroppedQueue }),
		dropped("retries", func(s Stats) uint64 { return s.DroppedRetries }),
		dropped("handover", func(s Stats) uint64 { return s.DroppedHandover }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("queue_events", "Events waiting to be sent.")),
			func() float64 { return float64(h.Stats().Queued) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("members", "Members in the ownership view, this node included.")),
			func() float64 { return float64(h.Stats().Members) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("settling", "1 while a re-send of the owned topics' state is scheduled (Settle after a member appeared).")),
			func() float64 {
				if h.Stats().Settling {
					return 1
				}
				return 0
			}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

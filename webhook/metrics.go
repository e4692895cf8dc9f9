package webhook

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/headcount-io/headcount/internal/promtable"
)

// metrics are the Hook's Prometheus collectors, all named headcount_webhook_*: a table over the
// Core's Stats (internal/promtable, read at scrape time) and the latency histogram, the one
// metric fed directly (a distribution is not a counter the Core keeps).
type metrics struct {
	latency prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, h *Hook) (*metrics, error) {
	const p = "headcount_webhook_"
	c := func(name, help string, f func(Stats) uint64) promtable.Row[Stats] {
		return promtable.Counter(p+name+"_total", help, f)
	}
	g := func(name, help string, f func(Stats) float64) promtable.Row[Stats] {
		return promtable.Gauge(p+name, help, f)
	}
	dropped := func(reason string, f func(Stats) uint64) promtable.Row[Stats] {
		return promtable.CounterWith(p+"events_dropped_total",
			"Events dropped, by reason (queue_full, retries, handover); a dropped topic's state is re-sent.",
			prometheus.Labels{"reason": reason}, f)
	}
	table := promtable.New(h.Stats,
		c("events_sent", "Events delivered (the receiver answered 2xx).", func(s Stats) uint64 { return s.Sent }),
		c("batches_sent", "POSTs the receiver answered 2xx.", func(s Stats) uint64 { return s.Batches }),
		c("retries", "Failed POSTs scheduled again (non-2xx, timeout, transport error).", func(s Stats) uint64 { return s.Retries }),
		c("events_resent", "Events re-sending a topic's state (takeover, settle after a member appeared, repair after a drop).",
			func(s Stats) uint64 { return s.Resent }),
		dropped("queue_full", func(s Stats) uint64 { return s.DroppedQueue }),
		dropped("retries", func(s Stats) uint64 { return s.DroppedRetries }),
		dropped("handover", func(s Stats) uint64 { return s.DroppedHandover }),
		g("queue_events", "Events waiting to be sent (a topic marked to re-send its state, after a full queue or a failed batch, counts as one).", func(s Stats) float64 { return float64(s.Queued) }),
		g("members", "Members in the ownership view, this node included.", func(s Stats) float64 { return float64(s.Members) }),
		g("settling", "1 while a re-send of the owned topics' state is scheduled (Settle after a member appeared).",
			func(s Stats) float64 {
				if s.Settling {
					return 1
				}
				return 0
			}),
	)
	m := &metrics{latency: prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    p + "delivery_latency_seconds",
		Help:    "From the transition (or re-send) that produced an event to the receiver's 2xx.",
		Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
	})}
	if err := reg.Register(m.latency); err != nil {
		return nil, err
	}
	if err := reg.Register(table); err != nil {
		reg.Unregister(m.latency)
		return nil, err
	}
	return m, nil
}

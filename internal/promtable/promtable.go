// Package promtable is Headcount's one metrics idiom: a package keeps plain counters of its own
// (a Stats struct it can also return to callers) and describes its metrics as a table of rows,
// each a descriptor, a kind and a function of one snapshot of those counters. The table is a
// prometheus.Collector that takes the snapshot once per scrape. So a hot path never touches
// Prometheus, a metric's name, help and source sit on one line, and no state is kept twice.
//
// Labels that tell nodes apart are added by whoever registers the table (package node wraps
// its Registerer with node=<name>), never here. Ratios are left to PromQL: a row exports a
// count or a level, not a quotient of two others.
//
// promtable keeps no state of its own and starts no goroutines.
package promtable

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// Row is one metric of a Table over snapshots of type S.
type Row[S any] struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(S) float64
	// vec, when set, gives one value per value of the descriptor's one variable label.
	vec func(S) map[string]uint64
}

// Gauge is a level read from the snapshot.
func Gauge[S any](name, help string, f func(S) float64) Row[S] {
	return Row[S]{desc: prometheus.NewDesc(name, help, nil, nil), kind: prometheus.GaugeValue, value: f}
}

// Counter is a count since start read from the snapshot. name should end in _total.
func Counter[S any](name, help string, f func(S) uint64) Row[S] {
	return CounterWith(name, help, nil, f)
}

// CounterWith is a Counter with constant labels: several rows may share a name with different
// label values (events_dropped_total{reason="queue_full"}, {reason="retries"}).
func CounterWith[S any](name, help string, labels prometheus.Labels, f func(S) uint64) Row[S] {
	return Row[S]{desc: prometheus.NewDesc(name, help, nil, labels), kind: prometheus.CounterValue,
		value: func(s S) float64 { return float64(f(s)) }}
}

// CounterVec is a counter per value of one label whose values are data (an error kind): f
// returns the count of every value seen so far; values never seen are not exported.
func CounterVec[S any](name, help, label string, f func(S) map[string]uint64) Row[S] {
	return Row[S]{desc: prometheus.NewDesc(name, help, []string{label}, nil), kind: prometheus.CounterValue, vec: f}
}

// Table is a prometheus.Collector over rows of one snapshot type. It is safe for concurrent
// scrapes if snap is.
type Table[S any] struct {
	snap func() S
	rows []Row[S]
}

var _ prometheus.Collector = (*Table[int])(nil)

// New returns a table whose scrapes call snap once and read every row from its result.
func New[S any](snap func() S, rows ...Row[S]) *Table[S] {
	return &Table[S]{snap: snap, rows: rows}
}

// Describe implements prometheus.Collector.
func (t *Table[S]) Describe(ch chan<- *prometheus.Desc) {
	for _, r := range t.rows {
		ch <- r.desc
	}
}

// Collect implements prometheus.Collector.
func (t *Table[S]) Collect(ch chan<- prometheus.Metric) {
	s := t.snap()
	for _, r := range t.rows {
		if r.vec == nil {
			ch <- prometheus.MustNewConstMetric(r.desc, r.kind, r.value(s))
			continue
		}
		vals := r.vec(s)
		keys := make([]string, 0, len(vals))
		for k := range vals {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ch <- prometheus.MustNewConstMetric(r.desc, r.kind, float64(vals[k]), k)
		}
	}
}

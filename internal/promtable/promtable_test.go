package promtable_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/internal/promtable"
)

type stats struct {
	open       int
	sent, q, r uint64
	errs       map[string]uint64
}

func TestTableExportsEveryRowFromOneSnapshot(t *testing.T) {
	snaps := 0
	s := stats{open: 3, sent: 7, q: 1, r: 2, errs: map[string]uint64{"write": 4, "auth": 1}}
	tab := promtable.New(func() stats { snaps++; return s },
		promtable.Gauge("x_open", "Open things.", func(s stats) float64 { return float64(s.open) }),
		promtable.Counter("x_sent_total", "Things sent.", func(s stats) uint64 { return s.sent }),
		promtable.CounterWith("x_dropped_total", "Drops by reason.", prometheus.Labels{"reason": "queue"}, func(s stats) uint64 { return s.q }),
		promtable.CounterWith("x_dropped_total", "Drops by reason.", prometheus.Labels{"reason": "retries"}, func(s stats) uint64 { return s.r }),
		promtable.CounterVec("x_errors_total", "Errors by kind.", "kind", func(s stats) map[string]uint64 { return s.errs }),
	)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(tab))
	want := `
# HELP x_dropped_total Drops by reason.
# TYPE x_dropped_total counter
x_dropped_total{reason="queue"} 1
x_dropped_total{reason="retries"} 2
# HELP x_errors_total Errors by kind.
# TYPE x_errors_total counter
x_errors_total{kind="auth"} 1
x_errors_total{kind="write"} 4
# HELP x_open Open things.
# TYPE x_open gauge
x_open 3
# HELP x_sent_total Things sent.
# TYPE x_sent_total counter
x_sent_total 7
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want)))
	require.Equal(t, 1, snaps, "one snapshot per scrape")
}

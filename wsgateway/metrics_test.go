package wsgateway

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

// Metric names are part of the front door (docs/operations.md, e2e): none may change, and an
// error kind is a label value of one counter.
func TestMetricNamesAndErrorKinds(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := newMetrics(reg)
	require.NoError(t, err)
	m.conns.Add(2)
	m.conns.Add(-1)
	m.fail("write")
	m.fail("write")
	m.fail("auth")
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	require.Equal(t, []string{"headcount_gateway_channels", "headcount_gateway_coalesce_windows_stretched_total", "headcount_gateway_connections",
		"headcount_gateway_diff_broadcasts_total", "headcount_gateway_diffs_sent_total",
		"headcount_gateway_errors_total", "headcount_gateway_frames_in_total", "headcount_gateway_frames_out_total",
		"headcount_gateway_io_uring_writers", "headcount_gateway_joins_total", "headcount_gateway_longpoll_sessions", "headcount_gateway_personal_diffs_total",
		"headcount_gateway_shared_diff_encodes_total", "headcount_gateway_topic_changes_total",
		"headcount_gateway_topics"}, names)
	n, err := testutil.GatherAndCount(reg, "headcount_gateway_errors_total")
	require.NoError(t, err)
	require.Equal(t, 2, n, "one series per kind seen")
	s := m.snapshot()
	require.Equal(t, int64(1), s.conns)
	require.Equal(t, map[string]uint64{"write": 2, "auth": 1}, s.errors)
}

package trackerprom_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/tracker/trackerprom"
)

func TestCollectorReportsStats(t *testing.T) {
	c := tracker.LocalConfig()
	c.Name = "a"
	tr, err := tracker.New(c)
	require.NoError(t, err)
	_, err = tr.Track(1, "video:1", "", nil)
	require.NoError(t, err)
	_, err = tr.Track(2, "video:2", "u", nil)
	require.NoError(t, err)

	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(trackerprom.New(tr)))
	want := `
# HELP headcount_tracker_presences Visible presences on this node, from every replica seen as up.
# TYPE headcount_tracker_presences gauge
headcount_tracker_presences 2
# HELP headcount_tracker_topics Topics with at least one visible presence.
# TYPE headcount_tracker_topics gauge
headcount_tracker_topics 2
# HELP headcount_tracker_local_presences Presences owned by this node (capped by MaxLocalPresences).
# TYPE headcount_tracker_local_presences gauge
headcount_tracker_local_presences 2
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "headcount_tracker_presences", "headcount_tracker_topics", "headcount_tracker_local_presences"))
	n, err := testutil.GatherAndCount(reg)
	require.NoError(t, err)
	require.Equal(t, 22, n)
}

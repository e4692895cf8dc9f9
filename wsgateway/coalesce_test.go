package wsgateway

import (
	"sync"
	"testing"
	"time"

	"github.com/headcount-io/headcount/tracker"
	"github.com/stretchr/testify/require"
)

// TestSteadyChurnStretchesTheWindow: when every window ends with changes gathered, the next
// window lasts at least as long as the flush before it took, so broadcasts take at most half
// the hub's time; the round after a quiet window keeps CoalesceWindow. The flushes are made
// slow by the hook (as a topic of tens of thousands of sockets is); the churn comes straight
// from the tracker, without pause, so that every window gathers changes.
func TestSteadyChurnStretchesTheWindow(t *testing.T) {
	const window, slow = 5 * time.Millisecond, 40 * time.Millisecond
	type round struct {
		start  time.Time
		steady bool
	}
	var (
		mu     sync.Mutex
		rounds []round
		slowOn bool
	)
	testHookFlushRound = func(steady bool) {
		mu.Lock()
		rounds = append(rounds, round{time.Now(), steady})
		s := slowOn
		mu.Unlock()
		if s {
			time.Sleep(slow) // the broadcast's cost, simulated; not a synchronisation
		}
	}
	t.Cleanup(func() { testHookFlushRound = nil })
	tg := startGateway(t, func(c *Config) { c.CoalesceWindow = window })
	const topic = "video:1"
	w := tg.dial(t, "vsn=2.0.0")
	w.join(topic, "1") // the gateway now has a channel to flush the topic to
	w.expect(stateFrame("1", topic, 1, 0))

	// Steady churn: track and untrack one presence until enough steady rounds were seen.
	mu.Lock()
	slowOn = true
	first := len(rounds)
	mu.Unlock()
	steadyRounds := func() (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rounds[first:] {
			if r.steady {
				n++
			}
		}
		return n
	}
	o := tracker.Owner(1 << 40)
	held := false
	deadline := time.Now().Add(waitFor)
	for i := 0; i < 10_000_000 && steadyRounds() < 4 && time.Now().Before(deadline); i++ {
		if held {
			require.NoError(t, tg.tr.Untrack(o, topic))
		} else {
			_, err := tg.tr.Track(o, topic, "", nil)
			require.NoError(t, err)
		}
		held = !held
	}
	require.GreaterOrEqual(t, steadyRounds(), 4, "the churn did not keep the windows busy")

	mu.Lock()
	slowOn = false
	rs := append([]round(nil), rounds[first:]...)
	mu.Unlock()
	checked := 0
	for k := 0; k+1 < len(rs); k++ {
		gap := rs[k+1].start.Sub(rs[k].start)
		if rs[k].steady {
			// The round took at least slow, and its window at least as long again.
			require.GreaterOrEqual(t, gap, 2*slow, "round %d (steady) to %d", k, k+1)
			checked++
		} else {
			require.GreaterOrEqual(t, gap, slow+window, "round %d (after a quiet window) to %d", k, k+1)
		}
	}
	require.Positive(t, checked)
	require.Positive(t, metricValue(t, tg, "headcount_gateway_coalesce_windows_stretched_total"))
}

package wsgateway

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type stackStats struct {
	stack      uint64
	goroutines int
}

// stackSample collects garbage (which shrinks stacks that can shrink) and reads the stack
// memory in use.
func stackSample() stackStats {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return stackStats{stack: m.StackInuse, goroutines: runtime.NumGoroutine()}
}

// TestIdleSocketClosedAfterIdleTimeout: a socket silent for IdleTimeout is closed with 1001
// "idle timeout" while it is parked, by the poller's sweep.
func TestIdleSocketClosedAfterIdleTimeout(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	silent := tg.dial(t, "vsn=2.0.0")
	silent.join("room:b", "1")
	silent.expect(stateFrame("1", "room:b", 1, 0))
	ce := silent.expectCloseFrame()
	require.Equal(t, closeGoingAway, ce.Code)
	require.Equal(t, "idle timeout", ce.Text)
	require.EqualValues(t, 1, metricValue(t, tg, `headcount_gateway_errors_total{kind="idle_timeout"}`))
}

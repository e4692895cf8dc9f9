package wsgateway

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestIdleSocketStackStaysSmall pins that an idle socket's reader holds the stack its wait
// for the next frame needs, not the larger one its join needed once: before the reader became
// a chain of goroutines (runSocket), every joined socket kept an 8 KB stack for its lifetime
// (8.8 KB of the ~14.5 KB of heap and stack a socket cost in [K]).
func TestIdleSocketStackStaysSmall(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxConnsPerIP = 0 })
	const sockets = 200
	base := stackSample()
	for i := range sockets {
		c := tg.dial(t, "vsn=2.0.0") // no client goroutine: reads are synchronous
		topic := fmt.Sprintf("room:%d", i)
		c.join(topic, "1")
		c.expect(stateFrame("1", topic, 1, 0))
	}
	// The writers exit once their queues are empty: wait until only the readers (and the
	// odd server goroutine) are left.
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= base.goroutines+sockets+4 },
		waitFor, 10*time.Millisecond)
	idle := stackSample()
	perSocket := float64(idle.stack-base.stack) / sockets
	t.Logf("stack per idle socket: %.0f B (%d goroutines for %d sockets)", perSocket, idle.goroutines-base.goroutines, sockets)
	require.Less(t, perSocket, float64(idleStackLimit), "stack bytes per idle socket")
}

// idleStackLimit is more than an idle socket's reader needs (2 KB waiting in waitReadable,
// 4 KB under the race detector), less than the 8 KB its join needs.
const idleStackLimit = 6 << 10

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
// "idle timeout" while its reader waits for readability (waitReadable), the read deadline
// applying to that wait as it did to gorilla's read.
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

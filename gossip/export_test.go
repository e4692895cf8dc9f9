package gossip

import (
	"testing"
	"testing/synctest"
	"time"
)

// FlushBurst is flushBurst, for the tests of the flush pacing in package gossip_test.
const FlushBurst = flushBurst

// AdvanceUntil moves the synctest bubble's virtual clock in 1 ms steps until cond holds, failing
// after limit of virtual time, and returns how long it took. The internal tests (package gossip)
// and the bubble tests of package gossip_test share it.
func AdvanceUntil(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for synctest.Wait(); !cond(); synctest.Wait() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v of virtual time", what, limit)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

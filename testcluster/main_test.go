package testcluster_test

import (
	"log/slog"
	"testing"

	"github.com/headcount-io/headcount/internal/testlog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// memberlist's Shutdown does not wait for an in-flight probe; it ends on its own within a few
	// probe timeouts. Everything else must be gone.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
		goleak.IgnoreAnyFunction("github.com/hashicorp/memberlist.(*Memberlist).handleIndirectPing.func2"))
}

// testLogger routes cluster logs to t.Log at warn level and above.
func testLogger(t testing.TB) *slog.Logger { return testlog.New(t, slog.LevelWarn) }

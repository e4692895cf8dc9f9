package webhook_test

import (
	"log/slog"
	"testing"

	"github.com/headcount-io/headcount/internal/testlog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger routes logs at warn and above to t.Log.
func testLogger(t testing.TB) *slog.Logger { return testlog.New(t, slog.LevelWarn) }

package wsgateway

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(loadgenEnv) != "" {
		// The benchmarks re-run this test binary as their load generator process.
		os.Exit(loadgenChild())
	}
	goleak.VerifyTestMain(m)
}

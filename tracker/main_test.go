package tracker_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them. The
// tracker starts none of its own; the check keeps it that way.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

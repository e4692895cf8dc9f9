//go:build unix

package wsload

import (
	"syscall"
	"time"
)

// processCPU returns this process's CPU time so far (user + system), or 0 when unknown.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

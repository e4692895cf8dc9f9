//go:build !unix

package wsload

import "time"

// processCPU returns 0: this process's CPU time is not known here.
func processCPU() time.Duration { return 0 }

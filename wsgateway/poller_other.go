//go:build !linux

package wsgateway

import (
	"log/slog"
	"time"
)

// poller parks idle sockets on Linux only; elsewhere there is none (newPoller returns nil)
// and every socket's reader is a chain of goroutines (see sockReader).
type poller struct{}

func newPoller(time.Duration, *slog.Logger, func(*wsTransport, bool)) *poller { return nil }

func (*poller) park(*wsTransport) parkResult { return parkNot }
func (*poller) unpark(*wsTransport)          {}
func (*poller) close()                       {}

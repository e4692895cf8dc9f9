package wsgateway

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// directSocket is a WebSocket's TCP socket as the fan-out writers see it: they write to it
// with one non-blocking write(2) (writers.go).
type directSocket struct {
	dc  *deadlineConn
	raw syscall.RawConn

	// The write callback and its arguments and results, made once so that a write does not
	// allocate a closure; guarded by dc.wmu.
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

// newDirectSocket returns dc's socket for non-blocking writes, or nil when dc is not TCP.
func newDirectSocket(dc *deadlineConn) *directSocket {
	tc, ok := dc.Conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &directSocket{dc: dc, raw: raw}
	s.fn = func(fd uintptr) bool {
		s.n, s.err = syscall.Write(int(fd), s.p)
		return true // done, whatever happened: never wait in the poller
	}
	return s
}

// tryWrite makes one write(2) of p and never waits: it returns how much the kernel took, which
// is less than len(p) (maybe 0) with a nil error when its buffer is full. An error means the
// socket is broken. Called with the deadlineConn's wmu held.
func (s *directSocket) tryWrite(p []byte) (int, error) {
	s.p = p
	defer func() { s.p = nil }() // p may be the writer's scratch buffer
	for retried := false; ; retried = true {
		s.n, s.err = 0, nil
		err := s.raw.Write(s.fn)
		if errors.Is(err, os.ErrDeadlineExceeded) && !retried {
			// A deadline an earlier write left behind (a pong's, the goroutine writer's); a
			// write that cannot wait needs none.
			if err := s.dc.setWriteDeadline(time.Time{}); err != nil {
				return 0, err
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		switch {
		case s.err == nil:
			return s.n, nil
		case errors.Is(s.err, syscall.EAGAIN), errors.Is(s.err, syscall.EINTR):
			return 0, nil
		}
		return 0, s.err
	}
}

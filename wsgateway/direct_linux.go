package wsgateway

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// directSocket is a WebSocket's TCP socket as the fan-out writers see it: they write to it
// with one non-blocking send, a chunk of sockets through one io_uring submission or one
// write(2) each (writers.go).
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
		return writeResult(s.n, s.err)
	}
}

// writeNow makes one non-blocking write(2) of p to fd, a socket's descriptor that the caller
// holds open (sendBatch, when its ring failed).
func writeNow(fd int, p []byte) (int, error) {
	n, err := syscall.Write(fd, p)
	return writeResult(n, err)
}

// sendResult is a non-blocking send's result from io_uring (bytes, or -errno) as tryWrite
// returns it.
func sendResult(res int32) (int, error) {
	if res >= 0 {
		return int(res), nil
	}
	return writeResult(0, syscall.Errno(-res))
}

// writeResult is what a non-blocking write returned, as tryWrite returns it: a full buffer
// or an interrupted call took nothing, any other error breaks the socket.
func writeResult(n int, err error) (int, error) {
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
		return 0, nil
	}
	return 0, err
}

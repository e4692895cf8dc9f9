//go:build !linux

package wsgateway

import (
	"errors"
	"syscall"
)

// directSocket is a socket the fan-out writers write to without waiting: not implemented on
// this system, where every socket has writer goroutines (writers.go).
type directSocket struct {
	dc  *deadlineConn
	raw syscall.RawConn
}

// newDirectSocket returns nil: no socket is written without waiting here.
func newDirectSocket(*deadlineConn) *directSocket { return nil }

func (*directSocket) tryWrite([]byte) (int, error) {
	return 0, errors.New("wsgateway: non-blocking writes not implemented")
}

func writeNow(int, []byte) (int, error) {
	return 0, errors.New("wsgateway: non-blocking writes not implemented")
}

func sendResult(int32) (int, error) {
	return 0, errors.New("wsgateway: non-blocking writes not implemented")
}

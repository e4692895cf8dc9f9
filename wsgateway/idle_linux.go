package wsgateway

import (
	"syscall"
	"unsafe"
)

// waitReadable blocks until the socket has bytes to read, has closed or has failed, or its read
// deadline passes (then it returns the timeout), without reading anything. An idle socket
// spends its life here: the runtime poller's wait is all its stack holds.
func waitReadable(raw syscall.RawConn) error {
	var b [1]byte
	return raw.Read(func(fd uintptr) bool {
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		return errno != syscall.EAGAIN // data, EOF or an error: the read reports them
	})
}

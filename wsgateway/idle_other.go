//go:build !linux

package wsgateway

import "syscall"

// waitReadable returns at once where peeking at a socket is not implemented: gorilla's read
// waits instead.
func waitReadable(syscall.RawConn) error { return nil }

package wsgateway

import (
	"bufio"
	"net"
	"net/http"
	"syscall"
	"time"
)

// minOwnReadBuffer is the smallest read buffer gorilla takes from the hijacked connection
// instead of allocating its own (it then needs Upgrader.ReadBufferSize 0).
const minOwnReadBuffer = 257

// socketHijacker hands gorilla's Upgrade the socket as the gateway reads and writes it: the
// connection wrapped in a deadlineConn, and a read buffer the gateway owns, so that the reader
// can tell when gorilla has nothing buffered and then wait for the socket to become readable
// on a small stack (waitReadable) rather than deep in gorilla's read.
type socketHijacker struct {
	http.ResponseWriter
	slack   time.Duration // deadlineConn's
	readBuf int           // the read buffer's size; < minOwnReadBuffer: gorilla allocates its own

	conn *deadlineConn   // set by Hijack
	br   *bufio.Reader   // set by Hijack when gorilla will read through it
	raw  syscall.RawConn // set by Hijack for a socket waitReadable can wait on
}

func (h *socketHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = &deadlineConn{Conn: c, slack: h.slack}
	// Bytes already buffered make gorilla refuse the upgrade; otherwise it reads through the
	// reader given here (the server's own is 4 KB).
	if h.readBuf >= minOwnReadBuffer && brw.Reader.Buffered() == 0 {
		h.br = bufio.NewReaderSize(h.conn, h.readBuf)
		brw = bufio.NewReadWriter(h.br, brw.Writer)
		if tc, ok := c.(*net.TCPConn); ok {
			if raw, err := tc.SyscallConn(); err == nil {
				h.raw = raw
			}
		}
	}
	return h.conn, brw, nil
}

// upgradeReadBuffer is Upgrader.ReadBufferSize for a configured read buffer of size bytes: 0
// when the hijacker supplies it.
func upgradeReadBuffer(size int) int {
	if size >= minOwnReadBuffer {
		return 0
	}
	return size
}

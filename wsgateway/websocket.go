package wsgateway

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// wsTransport carries a conn over a WebSocket: frames are text messages, closes are close
// frames. Data frames are written by the gateway itself (wire.go) to the deadlineConn under
// its write mutex; gorilla writes only control frames (pongs, close frames), through the same
// mutex.
type wsTransport struct {
	ws           *websocket.Conn
	writeTimeout time.Duration
	br           *bufio.Reader   // what gorilla reads through, or nil when not known (reader only)
	raw          syscall.RawConn // the socket for waitReadable, or nil

	sockOnce sync.Once
	sock     *deadlineConn // ws's net.Conn, or nil when it is not one (then gorilla writes)
	fast     *directSocket // for the fan-out writers, or nil
	buf      []byte        // the frame being written (writer only)

	rd sockReader // the reader's state (socket.go)
}

var _ transport = (*wsTransport)(nil)

// socket returns the deadlineConn gorilla was given, or nil.
func (w *wsTransport) socket() *deadlineConn {
	w.sockOnce.Do(func() {
		if dc, ok := w.ws.NetConn().(*deadlineConn); ok {
			w.sock = dc
			w.fast = newDirectSocket(dc)
		}
	})
	return w.sock
}

// direct returns the socket for non-blocking writes, or nil.
func (w *wsTransport) direct() *directSocket {
	w.socket()
	return w.fast
}

// maxKeptFrameBuffer bounds the frame buffer a socket keeps between writes.
const maxKeptFrameBuffer = 4 << 10

func (w *wsTransport) write(f *outFrame) error {
	dc := w.socket()
	if dc == nil {
		if err := w.ws.SetWriteDeadline(time.Now().Add(w.writeTimeout)); err != nil {
			return err
		}
		data := f.data
		if f.shared != nil {
			data = f.shared.data
		}
		return w.ws.WriteMessage(websocket.TextMessage, data)
	}
	var frame []byte
	if f.shared != nil {
		frame = f.shared.wire
	} else {
		w.buf = appendText(w.buf[:0], f.data)
		frame = w.buf
	}
	dc.wmu.Lock()
	err := dc.writeLocked(frame, w.writeTimeout)
	dc.wmu.Unlock()
	if cap(w.buf) > maxKeptFrameBuffer {
		w.buf = nil
	}
	return err
}

func (w *wsTransport) finish(code int, reason string) {
	if code != 0 {
		msg := websocket.FormatCloseMessage(code, reason)
		_ = w.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	}
	w.ws.Close()
}

// abort gives a writer stuck on a client that does not read a second to finish, and wakes a
// parked reader (wakeReader).
func (w *wsTransport) abort() {
	w.wakeReader()
	if dc := w.socket(); dc != nil {
		_ = dc.setWriteDeadline(time.Now().Add(time.Second)) // now, not at gorilla's next write
		return
	}
	_ = w.ws.NetConn().SetWriteDeadline(time.Now().Add(time.Second))
}

// serveFrame handles what nextFrame returned; it reports whether the socket is still open.
func (c *conn) serveFrame(mt int, data []byte, err error) bool {
	if err != nil {
		c.readFailed(err)
		return false
	}
	c.g.metrics.framesIn.Add(1)
	if mt != websocket.TextMessage {
		c.g.metrics.fail("binary")
		c.close(closeUnsupported, "binary frames are not supported")
		return false
	}
	m, ok := c.decodeText(data)
	return ok && c.serve(m)
}

func (c *conn) readFailed(err error) {
	var ne net.Error
	var ce *websocket.CloseError
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has already sent 1009 (message too big).
		c.g.metrics.fail("frame_too_big")
		c.close(0, "")
	case errors.As(err, &ne) && ne.Timeout():
		c.g.metrics.fail("idle_timeout")
		c.close(closeGoingAway, "idle timeout")
	case errors.As(err, &ce):
		c.close(0, "") // the client closed; gorilla answered its close frame
	default:
		c.close(0, "")
	}
}

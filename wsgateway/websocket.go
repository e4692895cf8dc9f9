package wsgateway

import (
	"bufio"
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// wsTransport carries a conn over a WebSocket: frames are text messages, closes are close
// frames.
type wsTransport struct {
	ws           *websocket.Conn
	writeTimeout time.Duration
	br           *bufio.Reader   // what gorilla reads through, or nil when not known (reader only)
	raw          syscall.RawConn // the socket for waitReadable, or nil
}

var _ transport = (*wsTransport)(nil)

func (w *wsTransport) write(f *outFrame) error {
	if err := w.ws.SetWriteDeadline(time.Now().Add(w.writeTimeout)); err != nil {
		return err
	}
	if f.shared != nil {
		return w.ws.WritePreparedMessage(f.shared.pm)
	}
	return w.ws.WriteMessage(websocket.TextMessage, f.data)
}

func (w *wsTransport) finish(code int, reason string) {
	if code != 0 {
		msg := websocket.FormatCloseMessage(code, reason)
		_ = w.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	}
	w.ws.Close()
}

// abort gives a writer stuck on a client that does not read a second to finish.
func (w *wsTransport) abort() {
	_ = w.ws.NetConn().SetWriteDeadline(time.Now().Add(time.Second))
}

// nextFrame waits for the socket's next frame. Its stack is all an idle socket holds (see
// runSocket): with nothing buffered, it waits for the socket to become readable before it
// calls into gorilla, whose read path is deeper than the runtime poller's wait.
func (w *wsTransport) nextFrame(idle time.Duration) (int, []byte, error) {
	if err := w.ws.SetReadDeadline(time.Now().Add(idle)); err != nil {
		return 0, nil, err
	}
	if w.raw != nil && w.br.Buffered() == 0 {
		if err := waitReadable(w.raw); err != nil {
			return 0, nil, err
		}
	}
	return w.ws.ReadMessage()
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

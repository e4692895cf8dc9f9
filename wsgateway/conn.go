package wsgateway

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Close codes the gateway sends. Phoenix clients reconnect after any code but 1000.
const (
	closeGoingAway      = websocket.CloseGoingAway               // 1001: shutdown, idle timeout
	closeUnsupported    = websocket.CloseUnsupportedData         // 1003: binary frames
	closeInvalidPayload = websocket.CloseInvalidFramePayloadData // 1007: malformed frames
	closePolicy         = websocket.ClosePolicyViolation         // 1008: slow consumer
)

// nextOwner mints connection ids: unique in the process, so unique on the node even when
// several gateways share one tracker.
var nextOwner atomic.Uint64

// outFrame is one frame waiting in a socket's queue.
type outFrame struct {
	data []byte                     // an encoded text frame, or
	pm   *websocket.PreparedMessage // a frame shared by many sockets
	sub  *sub                       // set for presence diffs, which are rewritten in place
	skip bool                       // a presence diff that became pointless
}

// conn is one WebSocket. Its reader goroutine (Gateway.runSocket) owns chans and the join
// bucket. A writer goroutine runs only while the queue has frames (an idle socket holds no
// writer stack); there is at most one at a time and it owns ws writes. mu guards the queue,
// the writer state and every sub's counts.
type conn struct {
	g    *Gateway
	ws   *websocket.Conn
	id   uint64
	user string
	vsn  protoVersion
	ip   string

	mu      sync.Mutex
	queue   []*outFrame
	spare   []*outFrame
	queued  int // frames in queue that are not presence diffs
	closing bool
	code    int
	reason  string

	writing    bool          // a writer goroutine is running (guarded by mu)
	done       chan struct{} // closed when the socket is closing
	writerDone chan struct{} // closed by the last writer, after the close frame and ws.Close

	// Reader goroutine only.
	chans      map[string]*sub
	joinTokens float64
	joinAt     time.Time
}

// enqueue appends an encoded frame; a socket whose queue overflows is closed with 1008.
// Callers may hold a topic mutex, never c.mu.
func (c *conn) enqueue(frames ...[]byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if c.queued+len(frames) > c.g.cfg.MaxQueuedFrames {
		c.mu.Unlock()
		c.g.metrics.errors.WithLabelValues("slow_consumer").Inc()
		c.close(closePolicy, "slow consumer")
		return
	}
	for _, f := range frames {
		c.queue = append(c.queue, &outFrame{data: f})
	}
	c.queued += len(frames)
	c.kick()
	c.mu.Unlock()
}

// kick starts a writer if none is running. Called with c.mu held.
func (c *conn) kick() {
	if !c.writing {
		c.writing = true
		go c.writeLoop()
	}
}

// pushCounts queues (or rewrites) the presence_diff that brings s to shared.to. It reports
// whether it queued something. Called with the topic mutex held.
func (c *conn) pushCounts(s *sub, shared *sharedDiffs) bool {
	to := shared.to.view(s.withConns)
	from := shared.from.view(s.withConns)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || s.gone || s.target == to {
		return false
	}
	s.target = to
	f := s.pending
	if f != nil {
		// Still queued: newest counts win, rewritten from what the client holds.
		f.pm, f.data, f.skip = nil, nil, false
		switch {
		case s.base == to:
			f.skip = true
		case s.base == from:
			f.pm = shared.get(c.vsn, s.withConns)
		}
		if !f.skip && f.pm == nil {
			f.data = c.personalDiff(s, s.base, to)
		}
		return false
	}
	f = &outFrame{sub: s}
	if s.base == from {
		f.pm = shared.get(c.vsn, s.withConns)
	}
	if f.pm == nil {
		f.data = c.personalDiff(s, s.base, to)
	}
	s.pending = f
	c.queue = append(c.queue, f)
	c.kick()
	return true
}

func (c *conn) personalDiff(s *sub, from, to Counts) []byte {
	c.g.metrics.personalDiffs.Inc()
	payload := appendDiff(nil, from, to, s.withConns)
	return appendFrame(nil, c.vsn, optString{}, optString{}, s.topic, "presence_diff", payload)
}

// close starts closing the socket: the writer sends a close frame with code (none when code
// is 0) and closes the connection. It may be called from any goroutine, more than once.
func (c *conn) close(code int, reason string) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.code, c.reason = code, reason
	c.queue = nil
	c.kick() // the writer sees closing, sends the close frame and closes the connection
	c.mu.Unlock()
	close(c.done)
	if c.ws != nil {
		// A writer stuck on a client that does not read gives up within a second.
		_ = c.ws.NetConn().SetWriteDeadline(time.Now().Add(time.Second))
	}
}

// writeLoop is a writer goroutine: it drains the queue in order and exits when it is empty.
// The writer that finds the socket closing sends the close frame, closes the connection and
// closes writerDone; no writer starts after it.
func (c *conn) writeLoop() {
	for {
		c.mu.Lock()
		if c.closing {
			code, reason := c.code, c.reason
			c.mu.Unlock()
			if code != 0 {
				msg := websocket.FormatCloseMessage(code, reason)
				_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			}
			c.ws.Close()
			close(c.writerDone)
			return
		}
		batch := c.queue
		if len(batch) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.queue = c.spare[:0]
		c.spare = nil
		c.queued = 0
		for _, f := range batch {
			if s := f.sub; s != nil && s.pending == f {
				s.base = s.target
				s.pending = nil
			}
		}
		c.mu.Unlock()
		for i, f := range batch {
			if err := c.write(f); err != nil {
				c.g.metrics.errors.WithLabelValues("write").Inc()
				c.close(0, "")
				break
			}
			batch[i] = nil
		}
		if cap(batch) <= 16 { // do not keep a burst's large buffer for an idle socket
			c.mu.Lock()
			c.spare = batch[:0]
			c.mu.Unlock()
		}
	}
}

func (c *conn) write(f *outFrame) error {
	if f.skip {
		return nil
	}
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.g.cfg.WriteTimeout)); err != nil {
		return err
	}
	var err error
	if f.pm != nil {
		err = c.ws.WritePreparedMessage(f.pm)
	} else {
		err = c.ws.WriteMessage(websocket.TextMessage, f.data)
	}
	if err == nil {
		c.g.metrics.framesOut.Inc()
		if f.sub != nil {
			c.g.metrics.diffsSent.Inc()
		}
	}
	return err
}

// readLoop is the reader: it handles frames in order until the socket fails or closes.
func (c *conn) readLoop() {
	c.ws.SetReadLimit(c.g.cfg.MaxFrameBytes)
	for {
		if err := c.ws.SetReadDeadline(time.Now().Add(c.g.cfg.IdleTimeout)); err != nil {
			c.close(0, "")
			return
		}
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.g.metrics.framesIn.Inc()
		if mt != websocket.TextMessage {
			c.g.metrics.errors.WithLabelValues("binary").Inc()
			c.close(closeUnsupported, "binary frames are not supported")
			return
		}
		m, err := decodeFrame(c.vsn, data)
		if err != nil {
			c.g.metrics.errors.WithLabelValues("malformed").Inc()
			c.g.log.Debug("malformed frame", "conn", c.id, "err", err)
			c.close(closeInvalidPayload, "malformed frame")
			return
		}
		c.handle(m)
		select {
		case <-c.done:
			return
		default:
		}
	}
}

func (c *conn) readFailed(err error) {
	var ne net.Error
	var ce *websocket.CloseError
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has already sent 1009 (message too big).
		c.g.metrics.errors.WithLabelValues("frame_too_big").Inc()
		c.close(0, "")
	case errors.As(err, &ne) && ne.Timeout():
		c.g.metrics.errors.WithLabelValues("idle_timeout").Inc()
		c.close(closeGoingAway, "idle timeout")
	case errors.As(err, &ce):
		c.close(0, "") // the client closed; gorilla answered its close frame
	default:
		c.close(0, "")
	}
}

// cleanup removes every channel of the socket and its presences. Reader goroutine only,
// after the read loop ended.
func (c *conn) cleanup() {
	for _, s := range c.chans {
		c.dropSub(s)
	}
	c.chans = nil
	c.g.eng.untrackOwner(c.id)
}

// dropSub takes a channel out of its topic and cancels its pending diff.
func (c *conn) dropSub(s *sub) {
	c.g.hub.remove(s)
	c.mu.Lock()
	s.gone = true
	if s.pending != nil {
		s.pending.skip = true
		s.pending = nil
	}
	c.mu.Unlock()
	c.g.metrics.channels.Dec()
}

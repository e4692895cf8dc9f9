package wsgateway

import (
	"sync"

	"github.com/gorilla/websocket"

	"github.com/headcount-io/headcount/tracker"
)

// Close codes the gateway sends. Phoenix clients reconnect after any code but 1000.
const (
	closeGoingAway      = websocket.CloseGoingAway               // 1001: shutdown, idle timeout
	closeUnsupported    = websocket.CloseUnsupportedData         // 1003: binary frames
	closeInvalidPayload = websocket.CloseInvalidFramePayloadData // 1007: malformed frames
	closePolicy         = websocket.ClosePolicyViolation         // 1008: slow consumer
	closeTokenExpired   = 4001                                   // the token's exp has passed
)

// outFrame is one frame waiting in a connection's queue.
type outFrame struct {
	data   []byte       // an encoded text frame, or
	shared *sharedFrame // a frame shared by many connections
	sub    *sub         // set for presence diffs, which are rewritten in place
	skip   bool         // a presence diff that became pointless
}

// sharedFrame is one encoded frame sent to many connections: the text for transports that
// copy it, and wire, the same text as a WebSocket frame (wire.go; nil for SSE's serializer).
// Both are immutable.
type sharedFrame struct {
	data []byte
	wire []byte
}

// conn is one client connection speaking the Phoenix protocol, whatever transport carries it:
// the channel logic lives here once, the transport only moves frames. The connection's reader
// (the WebSocket's chain of runSocket goroutines, one at a time, or a long-poll session's POST
// handler under the session's lock) owns chans and the join bucket. A writer goroutine runs
// only while the queue has frames (an idle connection holds no writer stack); there is at most
// one at a time and it owns transport writes. mu guards the queue, the writer state and every
// sub's counts.
type conn struct {
	g    *Gateway
	t    transport // nil only in tests of the queue
	id   tracker.Owner
	user string
	vsn  protoVersion
	ip   string

	ident      Identity    // who the socket is, for the Authorizer
	stopExpiry func() bool // cancels the close at ident.Expires

	mu       sync.Mutex
	ds       *directSocket // direct's answer once known (dsKnown), next to mu: the fan-out writers' first touch of c
	dsKnown  bool
	queue    []*outFrame
	spare    []*outFrame
	queued   int // bytes of the frames in queue that are not presence diffs
	inflight int // bytes of such frames the writer took and has not finished writing
	closing  bool
	code     int
	reason   string

	room       chan struct{} // signalled when the writer takes the queue (backpressure.go)
	writing    bool          // a writer goroutine is running (guarded by mu)
	done       chan struct{} // closed when the connection is closing
	writerDone chan struct{} // closed by the last writer, after transport.finish

	// Reader only.
	chans        map[string]*sub
	tracked      int    // channels in chans that track a presence
	observed     int    // observer channels in chans
	joins        bucket // tracked joins
	observeJoins bucket // observer joins
}

// transport carries one connection's frames to its client: a WebSocket (wsTransport) or a
// long-poll session (lpTransport). write and finish are called only by the connection's writer
// goroutine (at most one runs at a time), in queue order; abort may be called from any
// goroutine, also while write blocks. A transport never calls back into its conn.
type transport interface {
	// write delivers one text frame, f.data or f.shared; it may block until the client takes
	// it. An error means the frame cannot be delivered: the connection is then closed without
	// a close code.
	write(f *outFrame) error
	// finish ends the transport after the last frame: it tells the client code and reason
	// where the transport has close codes (code 0: none) and releases its resources. Called
	// once.
	finish(code int, reason string)
	// abort makes a blocked or later write give up soon: the connection is closing.
	abort()
}

// enqueue appends encoded frames; a socket whose unread bytes (queued and in flight) would
// exceed MaxQueuedBytes is closed with 1008.
// Callers may hold a topic mutex, never c.mu.
func (c *conn) enqueue(frames ...[]byte) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	if c.queued+c.inflight+n > c.g.cfg.MaxQueuedBytes {
		c.mu.Unlock()
		c.g.metrics.fail("slow_consumer")
		c.close(closePolicy, "slow consumer")
		return
	}
	for _, f := range frames {
		c.queue = append(c.queue, &outFrame{data: f})
	}
	c.queued += n
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

// kickDirect makes sure a writer will run, for a fan-out writer: when none is, it reports
// true if the caller can write c itself (sendBatch.add), or else starts a writer goroutine.
// Called with c.mu held.
func (c *conn) kickDirect() bool {
	if c.writing {
		return false
	}
	c.writing = true
	if c.direct() != nil {
		return true
	}
	go c.writeLoop()
	return false
}

// direct returns the socket the fan-out writers can write c's frames to without waiting, or
// nil (long-poll, SSE, a socket that is not TCP, a system without non-blocking writes).
// Called with c.mu held; the fan-out writers read c.ds, set here before c was handed to them.
func (c *conn) direct() *directSocket {
	if !c.dsKnown {
		if w, ok := c.t.(*wsTransport); ok {
			c.ds = w.direct()
		}
		c.dsKnown = true
	}
	return c.ds
}

// pushCounts queues (or rewrites) the presence_diff that brings s to shared.to. It reports
// whether it queued something, and whether the caller, a fan-out writer, is now c's writer
// and must write c (sendBatch.add; otherwise a writer was running already or a goroutine was
// started). Called by one writer per sub and broadcast, after the broadcast's counts were
// taken under the topic's mutex.
func (c *conn) pushCounts(s *sub, shared *sharedDiffs) (queued, write bool) {
	to := shared.to.view(s.shape())
	from := shared.from.view(s.shape())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || s.gone || s.target == to {
		return false, false
	}
	s.target = to
	f := s.pending
	if f != nil {
		// Still queued: newest counts win, rewritten from what the client holds.
		f.shared, f.data, f.skip = nil, nil, false
		switch {
		case s.base == to:
			f.skip = true
		case s.base == from:
			f.shared = shared.get(c.vsn, s.shape())
		}
		if !f.skip && f.shared == nil {
			f.data = c.personalDiff(s, s.base, to)
		}
		return false, false
	}
	f = &s.diffs[s.next]
	s.next ^= 1
	*f = outFrame{sub: s}
	if s.base == from {
		f.shared = shared.get(c.vsn, s.shape())
	}
	if f.shared == nil {
		f.data = c.personalDiff(s, s.base, to)
	}
	s.pending = f
	c.queue = append(c.queue, f)
	return true, c.kickDirect()
}

func (c *conn) personalDiff(s *sub, from, to Counts) []byte {
	c.g.metrics.personalDiffs.Add(1)
	payload := appendDiff(nil, from, to, s.shape())
	return appendFrame(nil, c.vsn, optString{}, optString{}, s.topic, "presence_diff", payload)
}

// close starts closing the connection: the writer finishes the transport with code (no close
// code when 0). It may be called from any goroutine, more than once.
func (c *conn) close(code int, reason string) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.code, c.reason = code, reason
	c.queue = nil
	c.kick() // the writer sees closing and finishes the transport
	c.mu.Unlock()
	close(c.done)
	if c.t != nil {
		c.t.abort() // a writer stuck on a client that does not read gives up soon
	}
}

// writeLoop is a writer goroutine: it drains the queue in order and exits when it is empty.
// The writer that finds the connection closing finishes the transport and closes writerDone;
// no writer starts after it.
func (c *conn) writeLoop() {
	for {
		c.mu.Lock()
		if c.closing {
			code, reason := c.code, c.reason
			c.mu.Unlock()
			c.t.finish(code, reason)
			close(c.writerDone)
			return
		}
		batch := c.take()
		if len(batch) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		for _, f := range batch {
			if err := c.write(f); err != nil {
				c.g.metrics.fail("write")
				c.close(0, "")
				break
			}
		}
		c.mu.Lock()
		c.release(batch)
		c.mu.Unlock()
	}
}

// take hands the writer the queue. Called by the writer with c.mu held; the writer calls
// release once it has written the batch.
func (c *conn) take() []*outFrame {
	batch := c.queue
	c.queue = c.spare[:0]
	c.spare = nil
	c.inflight, c.queued = c.queued, 0
	for _, f := range batch {
		if s := f.sub; s != nil && s.pending == f {
			s.base = s.target
			s.pending = nil
		}
	}
	return batch
}

// release ends the writing of a batch from take, written or not. Called with c.mu held.
func (c *conn) release(batch []*outFrame) {
	clear(batch)
	c.inflight = 0
	c.madeRoom()
	if cap(batch) <= 16 { // do not keep a burst's large buffer for an idle socket
		c.spare = batch[:0]
	}
}

func (c *conn) write(f *outFrame) error {
	if f.skip {
		return nil
	}
	if err := c.t.write(f); err != nil {
		return err
	}
	c.g.metrics.framesOut.Add(1)
	if f.sub != nil {
		c.g.metrics.diffsSent.Add(1)
	}
	return nil
}

// cleanup removes every channel of the connection and its presences. Reader only, after the
// last frame from the client was handled.
func (c *conn) cleanup() {
	for _, s := range c.chans {
		c.dropSub(s)
	}
	c.chans = nil
	c.g.cfg.Tracker.UntrackOwner(c.id)
}

// dropSub takes a channel out of its topic and cancels its pending diff.
func (c *conn) dropSub(s *sub) {
	c.g.hub.remove(s)
	c.detach(s)
	c.mu.Lock()
	s.gone = true
	if s.pending != nil {
		s.pending.skip = true
		s.pending = nil
	}
	c.mu.Unlock()
	c.g.metrics.channels.Add(-1)
}

package wsgateway

import (
	"bufio"
	"time"
)

// sockReader is a WebSocket's reader state, a field of its wsTransport. The reader is not a
// goroutine for the socket's lifetime. Between frames the socket is parked with the gateway's
// poller (poller_linux.go) and holds no goroutine at all; when it becomes readable, the poller
// starts runSocket, which reads and serves the frames that came and parks the socket again
// once nothing is buffered. Where there is no poller (other systems, a read buffer the gateway
// does not own), the reader is a chain of goroutines, one per frame, each waiting for its
// frame in waitReadable.
type sockReader struct {
	g *Gateway
	c *conn

	// The reader's; id and armed are also read by the poller, under its lock.
	id       uint64    // the socket's key in the poller (0 until first parked); never reused
	armed    bool      // registered with the poller's epoll instance (later parks re-arm it)
	deadline time.Time // the end of its last frame plus IdleTimeout: then it is closed as idle
	shelved  bool      // br has no buffer (shelveReadBuffer)
}

// wakeReader is called by abort: a socket closed from elsewhere (a slow consumer, its token's
// expiry, Shutdown, a failed write) must have its reader run to remove its presences and
// release its slot, also when it is parked. It may be called from any goroutine, with a topic
// mutex held.
func (w *wsTransport) wakeReader() {
	if w.rd.g != nil && w.rd.g.poll != nil {
		w.rd.g.poll.unpark(w)
	}
}

// closing reports whether the socket's conn is closing.
func (w *wsTransport) closing() bool {
	select {
	case <-w.rd.c.done:
		return true
	default:
		return false
	}
}

// parkResult is what parking a socket came to.
type parkResult int

const (
	parked     parkResult = iota // the poller holds the socket; no goroutine does
	parkClosed                   // the socket is closing: its reader cleans up
	parkNot                      // no poller for it: its reader waits in a goroutine
)

// park hands an idle socket (nothing buffered) to the poller, without its read buffer.
func (g *Gateway) park(w *wsTransport) parkResult {
	if g.poll == nil || w.raw == nil || w.br == nil {
		return parkNot
	}
	w.shelveReadBuffer() // before the poller has it: its reader may start at once
	return g.poll.park(w)
}

// shelveReadBuffer takes the buffer of the reader gorilla reads through (w.br, empty) into
// the gateway's pool: a parked socket holds no read buffer. The bufio.Reader is emptied in
// place, since gorilla holds the pointer; nextFrame puts a buffer back before gorilla reads.
func (w *wsTransport) shelveReadBuffer() {
	if w.rd.shelved || w.br.Buffered() > 0 {
		return
	}
	spare, _ := w.rd.g.readShells.Get().(*bufio.Reader)
	if spare == nil {
		spare = new(bufio.Reader)
	}
	*spare = *w.br
	*w.br = bufio.Reader{}
	w.rd.g.readBufs.Put(spare)
	w.rd.shelved = true
}

// unshelveReadBuffer gives w.br a buffer again, from the pool or new.
func (w *wsTransport) unshelveReadBuffer() {
	if !w.rd.shelved {
		return
	}
	r, _ := w.rd.g.readBufs.Get().(*bufio.Reader)
	if r == nil {
		r = bufio.NewReaderSize(nil, w.rd.g.cfg.ReadBufferSize)
	}
	*w.br = *r
	*r = bufio.Reader{}
	w.rd.g.readShells.Put(r)   // for the next shelveReadBuffer: a park allocates nothing
	w.br.Reset(w.ws.NetConn()) // what hijack wrapped: the deadlineConn
	w.rd.shelved = false
}

// startSocket starts the reader of a socket that has just been upgraded: parked until the
// client sends its first frame.
func (g *Gateway) startSocket(w *wsTransport) {
	w.rd.deadline = time.Now().Add(g.cfg.IdleTimeout)
	if g.park(w) != parked {
		go g.runSocket(w, true)
	}
}

// runSocket is the socket's reader while it has frames: it reads and serves them in order
// and parks the socket when none is buffered. wait says whether to wait for the socket to
// become readable first (it was not woken by the poller). One runs at a time per socket
// (the poller wakes a socket once per park), so it owns what the reader owns (see conn).
// The one that finds the socket closed removes its presences and waits for its writer.
//
// While parked, the socket's idle deadline is the poller's sweep (a socket woken after it is
// closed with 1001); while reading, it is the read deadline, so a client that sends half a
// frame holds a goroutine no longer than an idle socket is kept.
func (g *Gateway) runSocket(w *wsTransport, wait bool) {
	for !w.closing() {
		if !w.rd.c.serveFrame(w.nextFrame(wait)) {
			break
		}
		wait = true
		w.rd.deadline = time.Now().Add(g.cfg.IdleTimeout)
		if w.br != nil && w.br.Buffered() > 0 {
			continue // the next frame is here already
		}
		switch g.park(w) {
		case parked:
			return
		case parkNot:
			// A fresh goroutine waits for the next frame: a goroutine's stack never shrinks
			// below half of what it once needed, and serving a join grows it to 8 KB while
			// waiting in waitReadable needs 2 KB.
			go g.runSocket(w, true)
			return
		}
	}
	g.endSocket(w.rd.c)
}

// endSocket removes a closed socket's channels and presences, waits for its writer and
// frees its slot.
func (g *Gateway) endSocket(c *conn) {
	defer g.wg.Done()
	c.stopExpiry()
	c.close(0, "")
	c.cleanup()
	<-c.writerDone
	g.unregister(c)
	g.release(c.ip)
	g.metrics.conns.Add(-1)
}

// nextFrame reads the socket's next frame, by its idle deadline. With wait and nothing
// buffered, it first waits for the socket to become readable (waitReadable) on a small stack,
// before it calls into gorilla, whose read path is deeper than the runtime poller's wait.
func (w *wsTransport) nextFrame(wait bool) (int, []byte, error) {
	w.unshelveReadBuffer()
	if err := w.ws.SetReadDeadline(w.rd.deadline); err != nil {
		return 0, nil, err
	}
	if wait && w.raw != nil && w.br.Buffered() == 0 {
		if err := waitReadable(w.raw); err != nil {
			return 0, nil, err
		}
	}
	return w.ws.ReadMessage()
}

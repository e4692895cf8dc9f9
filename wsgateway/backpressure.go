package wsgateway

// Back-pressure on a socket's own requests. Every frame a socket queues outside presence diffs
// (which are coalesced in place) answers one of its own requests: a reply, a presence_state, a
// phx_close. A client that sends a burst of requests (a list page rejoining 1,100 channels)
// is therefore not a slow consumer when its answers outrun the writer: its reader simply stops
// reading until the writer has made room, as TCP would. A client that never reads is still
// closed, by WriteTimeout on the writer's side. Fan-out never waits here: only the socket's
// own reader does.

// maxFramesPerRequest is the most frames one request queues (phx_close, phx_reply and
// presence_state for a duplicate join).
const maxFramesPerRequest = 3

// answerBytes bounds the bytes of one request's answers: each echoes at most the request's
// refs and topic (so at most MaxFrameBytes) plus a small envelope and payload.
func (c *conn) answerBytes() int {
	return maxFramesPerRequest * (int(c.g.cfg.MaxFrameBytes) + answerOverhead)
}

// answerOverhead is more than the envelope and payload of any answer (presence_state with
// connections is under 100 bytes).
const answerOverhead = 256

// waitRoom blocks the reader until the queue has room for one request's answers. It returns
// false when the socket is closing. Reader goroutine only; it holds no lock while waiting.
func (c *conn) waitRoom() bool {
	limit := max(c.g.cfg.MaxQueuedBytes-c.answerBytes(), 0)
	for {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return false
		}
		if c.queued+c.inflight <= limit {
			c.mu.Unlock()
			return true
		}
		if c.room == nil {
			c.room = make(chan struct{}, 1)
		}
		room := c.room
		c.mu.Unlock()
		select {
		case <-room:
		case <-c.done:
			return false
		}
	}
}

// madeRoom wakes a reader waiting in waitRoom. Called by the writer with c.mu held, after it
// wrote what it took from the queue.
func (c *conn) madeRoom() {
	if c.room != nil {
		select {
		case c.room <- struct{}{}:
		default:
		}
	}
}

package wsgateway

import (
	"encoding/json"
	"time"
	"unicode/utf8"
)

// Events of the Phoenix protocol.
const (
	evJoin      = "phx_join"
	evLeave     = "phx_leave"
	evReply     = "phx_reply"
	evClose     = "phx_close"
	evHeartbeat = "heartbeat"
	topicPhx    = "phoenix"
)

// joinParams are the join payload fields the gateway understands; others are ignored.
type joinParams struct {
	// Connections asks for "connections" counts in presence_state and presence_diff.
	Connections bool `json:"connections"`
	// Observe joins without being counted (observe.go).
	Observe bool `json:"observe"`
	// Partial asks for "partial" in presence_state and presence_diff (partial.go).
	Partial bool `json:"partial"`
}

// decodeText decodes one text frame from the client, whatever transport carried it. A frame
// that is not UTF-8 (as RFC 6455 section 8.1 has it for a WebSocket text frame) or not a
// Phoenix message closes the connection with 1007. It keeps no reference to data. Reader only.
func (c *conn) decodeText(data []byte) (message, bool) {
	if !utf8.Valid(data) {
		c.g.metrics.fail("invalid_utf8")
		c.close(closeInvalidPayload, "invalid UTF-8")
		return message{}, false
	}
	m, err := decodeFrame(c.vsn, data)
	if err != nil {
		c.g.metrics.fail("malformed")
		c.g.log.Debug("malformed frame", "conn", c.id, "err", err)
		c.close(closeInvalidPayload, "malformed frame")
		return message{}, false
	}
	return m, true
}

// serve handles m once the queue has room for its answers (backpressure.go); it reports
// whether the connection is still open. Reader only.
func (c *conn) serve(m message) bool {
	if !c.waitRoom() {
		return false
	}
	c.handle(m)
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// handle runs one decoded frame. Reader only (see conn).
func (c *conn) handle(m message) {
	switch {
	case m.Topic == topicPhx && m.Event == evHeartbeat:
		c.reply(m, optString{}, replyOK(nil))
	case m.Event == evJoin:
		c.join(m)
	case m.Event == evLeave:
		c.leave(m)
	default:
		s := c.chans[m.Topic]
		if s == nil || (m.JoinRef.Valid && m.JoinRef != s.joinRef) {
			c.g.metrics.fail("unmatched_topic")
			c.reply(m, optString{}, replyError("unmatched topic"))
			return
		}
		// Channels here only carry presence: there is nothing to push to.
		c.g.metrics.fail("unknown_event")
		c.reply(m, s.joinRef, replyError("unknown event"))
	}
}

// reply queues a phx_reply to m.
func (c *conn) reply(m message, joinRef optString, payload []byte) {
	c.enqueue(appendFrame(nil, c.vsn, joinRef, m.Ref, m.Topic, evReply, payload))
}

// badTopic reports why a topic cannot be joined, or "".
func (c *conn) badTopic(topic string) string {
	switch {
	case topic == "":
		return "invalid topic"
	case len(topic) > c.g.cfg.MaxTopicBytes:
		return "topic too long"
	case !utf8.ValidString(topic) || topic == topicPhx:
		return "invalid topic"
	}
	return ""
}

// allowJoin takes a token from the socket's join bucket.
func (c *conn) allowJoin(now time.Time) bool {
	return c.joins.take(now, c.g.cfg.JoinRate, c.g.cfg.JoinBurst)
}

func (c *conn) join(m message) {
	g := c.g
	joinRef := m.JoinRef
	if !joinRef.Valid {
		joinRef = m.Ref // Phoenix uses the join's ref as join_ref when the client sends none
	}
	fail := func(kind, reason string) {
		g.metrics.fail(kind)
		c.enqueue(appendFrame(nil, c.vsn, joinRef, m.Ref, m.Topic, evReply, replyError(reason)))
	}
	if why := c.badTopic(m.Topic); why != "" {
		fail("bad_topic", why)
		return
	}
	var params joinParams
	if len(m.Payload) > 0 && string(m.Payload) != "null" {
		if m.Payload[0] != '{' || json.Unmarshal(m.Payload, &params) != nil {
			fail("bad_params", "invalid join params")
			return
		}
	}
	access := AccessTrack
	if params.Observe {
		access = AccessObserve
	}
	if !g.mayAccess(c.ident, m.Topic, access) {
		fail("unauthorized", "unauthorized")
		return
	}
	old := c.chans[m.Topic]
	if kind, why := c.admitJoin(m.Topic, old, params.Observe); why != "" {
		fail(kind, why)
		return
	}
	if old != nil {
		// A duplicate join replaces the channel, as Phoenix does: the old one is closed with
		// its own join ref. A tracked presence stays tracked (unless the new join observes),
		// so nobody sees a leave and a join.
		c.dropSub(old)
		c.delChan(old)
		c.enqueue(appendFrame(nil, c.vsn, old.joinRef, old.joinRef, m.Topic, evClose, []byte("{}")))
	}
	if err := c.attach(m.Topic, old, params.Observe); err != nil {
		kind, reason := joinFailure(err)
		g.log.Debug("join failed", "conn", c.id, "topic", m.Topic, "observe", params.Observe, "err", err)
		fail(kind, reason)
		return
	}
	s := &sub{c: c, topic: m.Topic, joinRef: joinRef, withConns: params.Connections, observe: params.Observe, partial: params.Partial}
	c.addChan(s)
	g.metrics.joins.Add(1)
	g.metrics.channels.Add(1)

	// Under the topic lock, the counts this client is told and its membership in the topic
	// change together, so the next broadcast starts from exactly what it holds.
	t := g.hub.lockTopic(m.Topic)
	counts := g.countNow(m.Topic).view(s.shape())
	s.base, s.target = counts, counts
	t.subs[s] = struct{}{}
	c.enqueue(
		appendFrame(nil, c.vsn, joinRef, m.Ref, m.Topic, evReply, replyOK(nil)),
		appendFrame(nil, c.vsn, joinRef, optString{}, m.Topic, "presence_state", appendCounts(nil, counts, s.shape())),
	)
	t.mu.Unlock()
}

func (c *conn) leave(m message) {
	s := c.chans[m.Topic]
	if s == nil || (m.JoinRef.Valid && m.JoinRef != s.joinRef) {
		// Leaving a channel that is not joined succeeds, as in Phoenix.
		c.reply(m, m.JoinRef, replyOK(nil))
		return
	}
	c.dropSub(s)
	c.delChan(s)
	if !s.observe {
		_ = c.g.cfg.Tracker.Untrack(c.id, m.Topic) // only fails if it is already gone
	}
	c.enqueue(
		appendFrame(nil, c.vsn, s.joinRef, m.Ref, m.Topic, evReply, replyOK(nil)),
		appendFrame(nil, c.vsn, s.joinRef, s.joinRef, m.Topic, evClose, []byte("{}")),
	)
}

package wsgateway

import (
	"encoding/json"
	"errors"
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
			c.g.metrics.errors.WithLabelValues("unmatched_topic").Inc()
			c.reply(m, optString{}, replyError("unmatched topic"))
			return
		}
		// Channels here only carry presence: there is nothing to push to.
		c.g.metrics.errors.WithLabelValues("unknown_event").Inc()
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
	cfg := c.g.cfg
	if c.joinAt.IsZero() {
		c.joinTokens = float64(cfg.JoinBurst)
	} else {
		c.joinTokens += now.Sub(c.joinAt).Seconds() * cfg.JoinRate
		if c.joinTokens > float64(cfg.JoinBurst) {
			c.joinTokens = float64(cfg.JoinBurst)
		}
	}
	c.joinAt = now
	if c.joinTokens < 1 {
		return false
	}
	c.joinTokens--
	return true
}

func (c *conn) join(m message) {
	g := c.g
	joinRef := m.JoinRef
	if !joinRef.Valid {
		joinRef = m.Ref // Phoenix uses the join's ref as join_ref when the client sends none
	}
	fail := func(kind, reason string) {
		g.metrics.errors.WithLabelValues(kind).Inc()
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
	if !g.mayAccess(c.ident, m.Topic, AccessTrack) {
		fail("unauthorized", "unauthorized")
		return
	}
	old := c.chans[m.Topic]
	if old == nil && len(c.chans) >= g.cfg.MaxChannels {
		fail("too_many_channels", "too many channels")
		return
	}
	if !c.allowJoin(time.Now()) {
		fail("too_many_joins", "too many joins")
		return
	}
	if old != nil {
		// A duplicate join replaces the channel, as Phoenix does: the old one is closed with
		// its own join ref. The presence stays tracked, so nobody sees a leave and a join.
		c.dropSub(old)
		delete(c.chans, m.Topic)
		c.enqueue(appendFrame(nil, c.vsn, old.joinRef, old.joinRef, m.Topic, evClose, []byte("{}")))
	} else if err := g.eng.track(c.id, m.Topic, c.user); err != nil {
		kind, reason := "track", "join failed"
		switch {
		case errors.Is(err, errTrackerClosed):
			kind, reason = "track_closed", "node shutting down"
		case errors.Is(err, errInvalidTopic):
			kind, reason = "bad_topic", "invalid topic"
		case errors.Is(err, errInvalidUser):
			kind, reason = "bad_user", "invalid user"
		}
		g.log.Debug("track failed", "conn", c.id, "topic", m.Topic, "err", err)
		fail(kind, reason)
		return
	}
	s := &sub{c: c, topic: m.Topic, joinRef: joinRef, withConns: params.Connections}
	c.chans[m.Topic] = s
	g.metrics.joins.Inc()
	g.metrics.channels.Inc()

	// Under the topic lock, the counts this client is told and its membership in the topic
	// change together, so the next broadcast starts from exactly what it holds.
	t := g.hub.lockTopic(m.Topic)
	counts := g.eng.count(m.Topic).view(s.withConns)
	s.base, s.target = counts, counts
	t.subs[s] = struct{}{}
	c.enqueue(
		appendFrame(nil, c.vsn, joinRef, m.Ref, m.Topic, evReply, replyOK(nil)),
		appendFrame(nil, c.vsn, joinRef, optString{}, m.Topic, "presence_state", appendCounts(nil, counts, s.withConns)),
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
	delete(c.chans, m.Topic)
	_ = c.g.eng.untrack(c.id, m.Topic) // only fails if it is already gone
	c.enqueue(
		appendFrame(nil, c.vsn, s.joinRef, m.Ref, m.Topic, evReply, replyOK(nil)),
		appendFrame(nil, c.vsn, s.joinRef, s.joinRef, m.Topic, evClose, []byte("{}")),
	)
}

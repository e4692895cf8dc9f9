package wsgateway

import (
	"errors"
	"time"

	"github.com/headcount-io/headcount/tracker"
)

// Observer joins (issue 12). A join with {"observe": true} gets presence_state and
// presence_diff exactly as a tracked join does, but the gateway tracks nothing: an observer
// costs a channel in the hub (a subscription), never a replicated presence. A topic ending in
// "*" is a roll-up (see tracker.HoldRollup) and may only be observed.

// Reasons of the error replies specific to observers.
const (
	reasonObserveOnly     = "observe only"
	reasonTooManyObserved = "too many observed channels"
)

// admitJoin checks the join limits of a join of topic in the given mode (old is the channel
// it replaces, or nil) and takes a token from that mode's join bucket. It returns the metric
// kind and reason of the refusal, or "". Reader goroutine only.
func (c *conn) admitJoin(topic string, old *sub, observe bool) (kind, reason string) {
	cfg := c.g.cfg
	switch {
	case !observe && tracker.IsRollup(topic):
		return "observe_only", reasonObserveOnly
	case observe && (old == nil || !old.observe) && c.observed >= cfg.MaxObserved:
		return "too_many_observed", reasonTooManyObserved
	case !observe && (old == nil || old.observe) && c.tracked >= cfg.MaxChannels:
		return "too_many_channels", "too many channels"
	}
	now := time.Now()
	if observe {
		if !c.observeJoins.take(now, cfg.ObserveJoinRate, cfg.ObserveJoinBurst) {
			return "too_many_joins", "too many joins"
		}
	} else if !c.allowJoin(now) {
		return "too_many_joins", "too many joins"
	}
	return "", ""
}

// attach starts what a channel of topic costs in the tracker: a presence for a tracked join
// (unless old, the channel it replaces, was tracked already: the presence stays), nothing for
// an observer but a hold on its roll-up. It undoes a replaced tracked channel's presence
// when the new one observes. Reader goroutine only.
func (c *conn) attach(topic string, old *sub, observe bool) error {
	g := c.g
	if observe {
		if old != nil && !old.observe {
			_ = g.cfg.Tracker.Untrack(c.id, topic)
		}
		if tracker.IsRollup(topic) {
			return g.cfg.Tracker.HoldRollup(topic)
		}
		return nil
	}
	if old != nil && !old.observe {
		return nil
	}
	_, err := g.cfg.Tracker.Track(c.id, topic, c.user, nil)
	return err
}

// detach releases what an observer channel holds in the tracker (its roll-up). Tracked
// presences are untracked by the caller, which knows whether the presence stays.
func (c *conn) detach(s *sub) {
	if s.observe && tracker.IsRollup(s.topic) {
		c.g.cfg.Tracker.ReleaseRollup(s.topic)
	}
}

// addChan and delChan keep the per-mode channel counts with c.chans. Reader goroutine only.
func (c *conn) addChan(s *sub) {
	c.chans[s.topic] = s
	if s.observe {
		c.observed++
	} else {
		c.tracked++
	}
}

func (c *conn) delChan(s *sub) {
	if c.chans[s.topic] != s {
		return
	}
	delete(c.chans, s.topic)
	if s.observe {
		c.observed--
	} else {
		c.tracked--
	}
}

// joinFailure maps an attach error to the metric kind and reason of the error reply.
func joinFailure(err error) (kind, reason string) {
	switch {
	case errors.Is(err, tracker.ErrClosed):
		return "track_closed", "node shutting down"
	case errors.Is(err, tracker.ErrInvalidTopic):
		return "bad_topic", "invalid topic"
	case errors.Is(err, tracker.ErrInvalidUser):
		return "bad_user", "invalid user"
	case errors.Is(err, tracker.ErrTooManyRollups):
		return "too_many_rollups", "too many roll-ups"
	case errors.Is(err, tracker.ErrTooManyPresences):
		return "node_presence_limit", "too many presences on this node"
	case errors.Is(err, tracker.ErrTooManyTopics):
		return "node_topic_limit", "too many topics on this node"
	}
	return "track", "join failed"
}

// bucket is a token bucket for joins.
type bucket struct {
	tokens float64
	at     time.Time
}

// take refills b at rate per second up to burst and takes one token if there is one.
func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	if b.at.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.at).Seconds()*rate)
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

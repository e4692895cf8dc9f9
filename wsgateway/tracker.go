package wsgateway

import (
	"errors"

	"github.com/headcount-io/headcount/tracker"
)

// Tracker is what the gateway needs from package tracker; *tracker.Tracker implements it.
// Every method is called concurrently from socket goroutines and must not block on I/O.
type Tracker interface {
	// NewOwner mints the owner of one connection's presences (tracker.Tracker.NewOwner): the
	// gateway takes every owner from here, so presences an embedder tracks never collide.
	NewOwner() tracker.Owner
	Track(o tracker.Owner, topic, user string, meta []byte) (tracker.Ref, error)
	Untrack(o tracker.Owner, topic string) error
	UntrackOwner(o tracker.Owner) int
	Count(topic string) tracker.Counts
	Subscribe() *tracker.Subscription
	Stats() tracker.Stats
	// Readers (issue 12): roll-up topics and busiest-first listings.
	HoldRollup(topic string) error
	ReleaseRollup(topic string)
	Busiest(prefix string, limit int) (tracker.Counts, []tracker.TopicCounts, error)
}

var _ Tracker = (*tracker.Tracker)(nil)

// trackerEngine adapts a Tracker to the gateway's engine.
type trackerEngine struct{ t Tracker }

func engineOf(t Tracker) engine { return trackerEngine{t} }

func (e trackerEngine) track(owner uint64, topic, user string) error {
	_, err := e.t.Track(tracker.Owner(owner), topic, user, nil)
	switch {
	case errors.Is(err, tracker.ErrClosed):
		return errors.Join(errTrackerClosed, err)
	case errors.Is(err, tracker.ErrInvalidTopic):
		return errors.Join(errInvalidTopic, err)
	case errors.Is(err, tracker.ErrInvalidUser):
		return errors.Join(errInvalidUser, err)
	case errors.Is(err, tracker.ErrTooManyPresences):
		return errors.Join(errNodePresenceLimit, err)
	case errors.Is(err, tracker.ErrTooManyTopics):
		return errors.Join(errNodeTopicLimit, err)
	}
	return err
}

func (e trackerEngine) untrack(owner uint64, topic string) error {
	return e.t.Untrack(tracker.Owner(owner), topic)
}

func (e trackerEngine) untrackOwner(owner uint64) { e.t.UntrackOwner(tracker.Owner(owner)) }

func (e trackerEngine) count(topic string) Counts {
	c := e.t.Count(topic)
	return Counts{Viewers: c.Viewers, Users: c.Users, Connections: c.Connections}
}

func (e trackerEngine) subscribe() engineSub { return e.t.Subscribe() }

func (e trackerEngine) newOwner() uint64 { return uint64(e.t.NewOwner()) }

func (e trackerEngine) holdRollup(topic string) error {
	err := e.t.HoldRollup(topic)
	if errors.Is(err, tracker.ErrTooManyRollups) {
		return errors.Join(errTooManyRollups, err)
	}
	return err
}

func (e trackerEngine) releaseRollup(topic string) { e.t.ReleaseRollup(topic) }

func (e trackerEngine) busiest(prefix string, limit int) (Counts, []topicCount, error) {
	total, top, err := e.t.Busiest(prefix, limit)
	if err != nil {
		if errors.Is(err, tracker.ErrTooManyRollups) {
			return Counts{}, nil, errors.Join(errTooManyRollups, err)
		}
		return Counts{}, nil, err
	}
	out := make([]topicCount, len(top))
	for i, tc := range top {
		out[i] = topicCount{Topic: tc.Topic, Counts: Counts{Viewers: tc.Viewers, Users: tc.Users, Connections: tc.Connections}}
	}
	return Counts{Viewers: total.Viewers, Users: total.Users, Connections: total.Connections}, out, nil
}

func (e trackerEngine) downReplicas() int { return e.t.Stats().Down }

package tracker

import "fmt"

// localCount counts this node's own presences, in total and in topics, for
// Config.MaxLocalPresences and Config.MaxLocalTopics; the count per topic is
// topicState.local (a local presence is always visible, so its topic has a
// state). Guarded by Tracker.mu.
type localCount struct {
	presences int
	topics    int // topics with a local presence
	refused   uint64
}

// admit checks that one more local presence in the topic whose state is ts
// (nil when it has none) stays within the caps (0 = no limit), or returns
// the cap it would exceed.
func (l *localCount) admit(ts *topicState, maxPresences, maxTopics int) error {
	if maxPresences > 0 && l.presences >= maxPresences {
		l.refused++
		return fmt.Errorf("%w (%d)", ErrTooManyPresences, maxPresences)
	}
	if (ts == nil || ts.local == 0) && maxTopics > 0 && l.topics >= maxTopics {
		l.refused++
		return fmt.Errorf("%w (%d)", ErrTooManyTopics, maxTopics)
	}
	return nil
}

// count counts one more local presence in the topic whose state is ts.
func (l *localCount) count(ts *topicState) {
	if ts.local == 0 {
		l.topics++
	}
	ts.local++
	l.presences++
}

// release counts one local presence less in the topic whose state is ts.
func (l *localCount) release(ts *topicState) {
	if ts == nil || ts.local == 0 {
		return
	}
	ts.local--
	l.presences--
	if ts.local == 0 {
		l.topics--
	}
}

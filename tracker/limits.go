package tracker

import "fmt"

// localCount counts this node's own presences, in total and per topic, for
// Config.MaxLocalPresences and Config.MaxLocalTopics. Guarded by Tracker.mu.
type localCount struct {
	presences int
	topics    map[string]int
	refused   uint64
}

// admit counts one more local presence in topic, or returns the cap it
// would exceed (0 = no limit).
func (l *localCount) admit(topic string, maxPresences, maxTopics int) error {
	if maxPresences > 0 && l.presences >= maxPresences {
		l.refused++
		return fmt.Errorf("%w (%d)", ErrTooManyPresences, maxPresences)
	}
	n := l.topics[topic]
	if n == 0 && maxTopics > 0 && len(l.topics) >= maxTopics {
		l.refused++
		return fmt.Errorf("%w (%d)", ErrTooManyTopics, maxTopics)
	}
	if l.topics == nil {
		l.topics = make(map[string]int)
	}
	l.topics[topic] = n + 1
	l.presences++
	return nil
}

// release counts one local presence in topic less.
func (l *localCount) release(topic string) {
	n, ok := l.topics[topic]
	if !ok {
		return
	}
	l.presences--
	if n <= 1 {
		delete(l.topics, topic)
	} else {
		l.topics[topic] = n - 1
	}
}

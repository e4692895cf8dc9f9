package tracker

import "slices"

// Subscription reports which topics changed. Delivery never blocks the
// tracker: changes are coalesced into a set of topic names, and C receives
// a wake-up (buffered, at most one outstanding) whenever the set becomes
// non-empty. A slow subscriber therefore sees each changed topic once,
// however many times it changed, and must read the counts itself.
type Subscription struct {
	t     *Tracker
	c     chan struct{}
	dirty map[string]struct{} // guarded by t.mu
}

// Subscribe returns a new Subscription to changes in every topic. Close it
// when done.
func (t *Tracker) Subscribe() *Subscription {
	s := &Subscription{t: t, c: make(chan struct{}, 1), dirty: make(map[string]struct{})}
	t.mu.Lock()
	t.subs = append(t.subs, s)
	t.mu.Unlock()
	return s
}

// C returns the wake-up channel. After a receive, call Topics.
func (s *Subscription) C() <-chan struct{} { return s.c }

// Topics drains and returns the topics whose presences changed since the
// previous call (counts may or may not differ), in no particular order.
func (s *Subscription) Topics() []string {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	if len(s.dirty) == 0 {
		return nil
	}
	out := make([]string, 0, len(s.dirty))
	for k := range s.dirty {
		out = append(out, k)
	}
	clear(s.dirty)
	return out
}

// Close stops the subscription. It is idempotent.
func (s *Subscription) Close() {
	s.t.mu.Lock()
	defer s.t.mu.Unlock()
	s.t.subs = slices.DeleteFunc(s.t.subs, func(x *Subscription) bool { return x == s })
	s.dirty = nil
}

// touch marks topic changed for every subscriber. Called with t.mu held.
func (t *Tracker) touch(topic string) {
	for _, s := range t.subs {
		if _, ok := s.dirty[topic]; ok {
			continue
		}
		s.dirty[topic] = struct{}{}
		if len(s.dirty) == 1 {
			select {
			case s.c <- struct{}{}:
			default:
			}
		}
	}
}

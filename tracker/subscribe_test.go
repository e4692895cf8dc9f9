package tracker_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// Subscriptions and concurrent use.

func TestSubscribeCoalesces(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	s := tr.Subscribe()
	defer s.Close()
	require.False(t, woken(s))
	require.Nil(t, s.Topics())

	for i := range 100 {
		track(t, tr, tracker.Owner(i), "a", "")
	}
	for i := range 50 {
		track(t, tr, tracker.Owner(1000+i), "b", "u")
	}
	require.NoError(t, tr.Untrack(0, "a"))
	require.True(t, woken(s), "a change wakes the subscriber")
	require.False(t, woken(s), "151 changes make a single wake-up")
	require.Equal(t, []string{"a", "b"}, sorted(s.Topics()))
	require.Nil(t, s.Topics(), "Topics drains")

	// The next change wakes it again.
	require.Equal(t, 1, tr.UntrackOwner(1000))
	require.NoError(t, tr.Untrack(1, "a"))
	require.True(t, woken(s))
	require.Equal(t, []string{"a", "b"}, sorted(s.Topics()))
}

func TestSubscribeWakeupNotLostWhenTopicsReadFirst(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	s := tr.Subscribe()
	defer s.Close()
	track(t, tr, 1, "a", "")
	require.Equal(t, []string{"a"}, s.Topics()) // read before the wake-up
	track(t, tr, 2, "b", "")
	// A wake-up is still pending, and Topics then shows the new change.
	require.True(t, woken(s))
	require.Equal(t, []string{"b"}, s.Topics())
}

func TestSubscribeClose(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	s1, s2 := tr.Subscribe(), tr.Subscribe()
	defer s2.Close()
	s1.Close()
	s1.Close() // idempotent
	track(t, tr, 1, "a", "")
	require.False(t, woken(s1), "a closed subscription gets no wake-up")
	require.Nil(t, s1.Topics())
	require.True(t, woken(s2), "other subscriptions are unaffected")
	require.Equal(t, []string{"a"}, s2.Topics())
}

func TestSlowSubscriberNeverBlocksTrack(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	s := tr.Subscribe() // never read
	defer s.Close()
	done := make(chan struct{})
	var trackErr error
	go func() {
		defer close(done)
		for i := range 20_000 {
			if _, err := tr.Track(tracker.Owner(i), fmt.Sprintf("t%d", i%100), "", nil); err != nil {
				trackErr = err
				return
			}
		}
	}()
	require.Eventually(t, func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	}, 60*time.Second, time.Millisecond)
	require.NoError(t, trackErr)
	require.Len(t, s.Topics(), 100, "the slow subscriber sees each changed topic once")
}

func TestSubscribeSeesRemoteAndMembershipChanges(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	s := b.Subscribe()
	defer s.Close()
	track(t, a, 1, "remote", "")
	r.Step(time.Millisecond)
	require.True(t, woken(s))
	require.Equal(t, []string{"remote"}, s.Topics())

	b.ReplicaDown(a.Self())
	require.True(t, woken(s))
	require.Equal(t, []string{"remote"}, s.Topics())
	require.Equal(t, tracker.Counts{}, b.Count("remote"))
}

func TestConcurrentUse(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	b.ReplicaUp(a.Self())
	sub := a.Subscribe()
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { // a subscriber that keeps up
		defer readers.Done()
		for {
			select {
			case <-sub.C():
				for _, topic := range sub.Topics() {
					a.Count(topic)
				}
			case <-stop:
				return
			}
		}
	}()
	go func() { // a transport: ticks a and hands its output to b
		defer readers.Done()
		now := epochT0
		for {
			select {
			case <-a.Pending():
			case <-stop:
				return
			}
			now = now.Add(time.Millisecond)
			for _, o := range a.Tick(now) {
				// Over the wire: Handle takes ownership of a message's
				// entries, so a's own message must not be handed over.
				buf, err := crdt.Marshal(a.Self(), o.Msg)
				if err != nil {
					t.Error(err)
					return
				}
				from, m, err := crdt.Unmarshal(buf)
				if err != nil {
					t.Error(err)
					return
				}
				b.Handle(from, m)
			}
			b.List("t0")
			b.Stats()
		}
	}()
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range 500 {
				o := tracker.Owner(w*1000 + i)
				topic := fmt.Sprintf("t%d", i%5)
				if _, err := a.Track(o, topic, fmt.Sprintf("u%d", i%7), nil); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if _, err := a.Update(o, topic, []byte("m")); err != nil {
						t.Error(err)
						return
					}
				}
				if i%3 == 0 {
					a.UntrackOwner(o)
				}
			}
		}()
	}
	writers.Wait()
	// Let the transport flush what is left, then stop the readers.
	require.Eventually(t, func() bool {
		return b.Stats().Presences == a.Stats().Presences && len(a.Pending()) == 0
	}, 60*time.Second, time.Millisecond)
	close(stop)
	readers.Wait()
	sub.Close()

	want := 4 * (500 - 167) // owners i with i%3 == 0 untracked themselves
	require.Equal(t, want, a.Stats().Presences)
	total := 0
	for i := range 5 {
		ca := a.Count(fmt.Sprintf("t%d", i))
		require.Equal(t, ca, b.Count(fmt.Sprintf("t%d", i)))
		total += ca.Connections
	}
	require.Equal(t, want, total)
}

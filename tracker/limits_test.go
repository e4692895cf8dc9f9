package tracker_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/tracker"
)

// TestLocalCaps pins issue 10: nothing capped the presences and topics one node's clients add
// to the cluster, which every node replicates.
func TestLocalCaps(t *testing.T) {
	tr := mkTracker(t, "a", 1, func(c *tracker.Config) { c.MaxLocalPresences, c.MaxLocalTopics = 4, 2 })
	for _, p := range []struct {
		owner tracker.Owner
		topic string
	}{{1, "x"}, {2, "x"}, {1, "y"}} {
		_, err := tr.Track(p.owner, p.topic, "", nil)
		require.NoError(t, err)
	}
	_, err := tr.Track(1, "z", "", nil) // a third topic
	require.ErrorIs(t, err, tracker.ErrTooManyTopics)
	_, err = tr.Track(3, "y", "", nil) // an existing topic: the fourth presence
	require.NoError(t, err)
	_, err = tr.Track(4, "x", "", nil)
	require.ErrorIs(t, err, tracker.ErrTooManyPresences)
	s := tr.Stats()
	require.Equal(t, 4, s.LocalPresences)
	require.Equal(t, 2, s.LocalTopics)
	require.Equal(t, uint64(2), s.LocalRefused)

	// Leaving frees room: a topic with no local presence left no longer counts.
	require.NoError(t, tr.Untrack(1, "y"))
	require.Equal(t, 1, tr.UntrackOwner(3))
	_, err = tr.Track(1, "z", "", nil)
	require.NoError(t, err)
	s = tr.Stats()
	require.Equal(t, 3, s.LocalPresences)
	require.Equal(t, 2, s.LocalTopics)
}

// TestLocalCapsIgnoreRemotePresences: the caps bound what this node's own clients add;
// presences replicated from peers are theirs to cap.
func TestLocalCapsIgnoreRemotePresences(t *testing.T) {
	a := mkTracker(t, "a", 1, func(c *tracker.Config) { c.MaxLocalPresences, c.MaxLocalTopics = 1, 1 })
	b := mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	for o := tracker.Owner(1); o <= 5; o++ {
		_, err := b.Track(o, "remote", "", nil)
		require.NoError(t, err)
	}
	r.settle("remote", tracker.Counts{Viewers: 5, Connections: 5})
	_, err := a.Track(1, "mine", "", nil)
	require.NoError(t, err)
	_, err = a.Track(2, "mine", "", nil)
	require.ErrorIs(t, err, tracker.ErrTooManyPresences)
}

func TestLocalCapsValidated(t *testing.T) {
	for _, mod := range []func(*tracker.Config){
		func(c *tracker.Config) { c.MaxLocalPresences = -1 },
		func(c *tracker.Config) { c.MaxLocalTopics = -1 },
	} {
		cfg := tracker.LocalConfig()
		cfg.Name = "a"
		mod(&cfg)
		_, err := tracker.New(cfg)
		require.ErrorIs(t, err, tracker.ErrConfig)
	}
}

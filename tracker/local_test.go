package tracker_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// The local API: Track, Update, Untrack, Count, List and their errors.

func TestTrackErrors(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	cfg := tr.Config()
	track(t, tr, 1, "room", "alice")
	cases := []struct {
		name string
		do   func() error
		want error
	}{
		{"empty topic", func() error { _, err := tr.Track(2, "", "", nil); return err }, tracker.ErrInvalidTopic},
		{"topic too long", func() error {
			_, err := tr.Track(2, strings.Repeat("t", cfg.MaxTopicLen+1), "", nil)
			return err
		}, tracker.ErrInvalidTopic},
		{"user too long", func() error {
			_, err := tr.Track(2, "room", strings.Repeat("u", cfg.MaxUserLen+1), nil)
			return err
		}, tracker.ErrInvalidUser},
		{"meta too large", func() error {
			_, err := tr.Track(2, "room", "", make([]byte, cfg.MaxMetaLen+1))
			return err
		}, tracker.ErrMetaTooLarge},
		{"already tracked", func() error { _, err := tr.Track(1, "room", "bob", nil); return err }, tracker.ErrAlreadyTracked},
		{"update unknown owner", func() error { _, err := tr.Update(9, "room", nil); return err }, tracker.ErrNoPresence},
		{"update other topic", func() error { _, err := tr.Update(1, "hall", nil); return err }, tracker.ErrNoPresence},
		{"update meta too large", func() error {
			_, err := tr.Update(1, "room", make([]byte, cfg.MaxMetaLen+1))
			return err
		}, tracker.ErrMetaTooLarge},
		{"untrack unknown owner", func() error { return tr.Untrack(9, "room") }, tracker.ErrNoPresence},
		{"untrack other topic", func() error { return tr.Untrack(1, "hall") }, tracker.ErrNoPresence},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.do()
			require.ErrorIs(t, err, c.want)
			require.True(t, strings.HasPrefix(err.Error(), "tracker: "), "error %q lacks the package prefix", err)
			// A refused call changes nothing.
			require.Equal(t, counts(0, 1, 1), tr.Count("room"))
			require.Equal(t, tracker.Counts{}, tr.Count("hall"))
			require.Equal(t, 1, tr.Stats().Presences)
		})
	}
	// The limits themselves are accepted.
	_, err := tr.Track(3, strings.Repeat("t", cfg.MaxTopicLen), strings.Repeat("u", cfg.MaxUserLen), make([]byte, cfg.MaxMetaLen))
	require.NoError(t, err)
}

func TestErrClosedAfterLeave(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	track(t, tr, 1, "room", "")
	track(t, tr, 2, "room", "")
	outs := tr.Leave()
	require.Len(t, outs, 1)
	require.Equal(t, tracker.ToAll, outs[0].Target)
	require.Equal(t, &crdt.Goodbye{Replica: tr.Self()}, outs[0].Msg)

	_, err := tr.Track(3, "room", "", nil)
	require.ErrorIs(t, err, tracker.ErrClosed)
	_, err = tr.Update(1, "room", []byte("x"))
	require.ErrorIs(t, err, tracker.ErrClosed)
	require.True(t, errors.Is(err, tracker.ErrClosed))

	// Reads still work, and local removals keep the local view right.
	require.Equal(t, counts(2, 0, 2), tr.Count("room"))
	require.NoError(t, tr.Untrack(1, "room"))
	require.Equal(t, 1, tr.UntrackOwner(2))
	require.Equal(t, tracker.Counts{}, tr.Count("room"))

	// After the goodbye nothing more is sent: no deltas, no digests.
	require.Empty(t, tr.Tick(epochT0))
	require.Empty(t, tr.Tick(epochT0.Add(time.Hour)))
}

func TestTrackUpdateUntrack(t *testing.T) {
	tr := mkTracker(t, "a", 1)
	r1 := track(t, tr, 1, "room", "alice")
	r2 := track(t, tr, 1, "hall", "alice") // same owner, another topic
	r3 := track(t, tr, 2, "room", "")      // another owner, same topic
	require.NotZero(t, r1)
	require.Greater(t, r2, r1)
	require.Greater(t, r3, r2)
	require.Equal(t, counts(1, 1, 2), tr.Count("room"))
	require.Equal(t, counts(0, 1, 1), tr.Count("hall"))

	// Update mints a new ref, keeps the user and the counts, replaces meta.
	r4, err := tr.Update(1, "room", []byte(`{"typing":true}`))
	require.NoError(t, err)
	require.Greater(t, r4, r3)
	require.Equal(t, counts(1, 1, 2), tr.Count("room"))
	var mine []tracker.Presence
	for _, p := range tr.List("room") {
		if p.Owner == 1 {
			mine = append(mine, p)
		}
	}
	require.Len(t, mine, 1)
	require.Equal(t, r4, mine[0].Ref)
	require.Equal(t, "alice", mine[0].User)
	require.Equal(t, []byte(`{"typing":true}`), mine[0].Meta)

	// Untrack removes one presence; the owner's others stay.
	require.NoError(t, tr.Untrack(1, "room"))
	require.Equal(t, counts(1, 0, 1), tr.Count("room"))
	require.Equal(t, counts(0, 1, 1), tr.Count("hall"))
	require.ErrorIs(t, tr.Untrack(1, "room"), tracker.ErrNoPresence)

	// Tracking again after an untrack is allowed and mints a new ref.
	r5 := track(t, tr, 1, "room", "alice")
	require.Greater(t, r5, r4)

	// UntrackOwner removes all of an owner's presences, once.
	require.Equal(t, 2, tr.UntrackOwner(1))
	require.Equal(t, 0, tr.UntrackOwner(1))
	require.Equal(t, 0, tr.UntrackOwner(42))
	require.Equal(t, counts(1, 0, 1), tr.Count("room"))
	require.Equal(t, tracker.Counts{}, tr.Count("hall"))
	require.Equal(t, []string{"room"}, tr.Topics())
	st := tr.Stats()
	require.Equal(t, 1, st.Presences)
	require.Equal(t, 1, st.Topics)
}

func TestCount(t *testing.T) {
	type pres struct {
		owner tracker.Owner
		topic string
		user  string
	}
	cases := []struct {
		name   string
		tracks []pres
		remove []pres // untracked afterwards
		topic  string
		want   tracker.Counts
	}{
		{name: "unknown topic", topic: "x", want: tracker.Counts{}},
		{name: "anonymous count per connection", tracks: []pres{{1, "x", ""}, {2, "x", ""}, {3, "x", ""}}, topic: "x", want: counts(3, 0, 3)},
		{name: "distinct users", tracks: []pres{{1, "x", "alice"}, {2, "x", "bob"}}, topic: "x", want: counts(0, 2, 2)},
		{name: "two tabs of one user count once", tracks: []pres{{1, "x", "alice"}, {2, "x", "alice"}, {3, "x", ""}}, topic: "x", want: counts(1, 1, 3)},
		{name: "closing one tab keeps the user", tracks: []pres{{1, "x", "alice"}, {2, "x", "alice"}}, remove: []pres{{1, "x", ""}}, topic: "x", want: counts(0, 1, 1)},
		{name: "closing both tabs drops the user", tracks: []pres{{1, "x", "alice"}, {2, "x", "alice"}, {3, "x", "bob"}}, remove: []pres{{1, "x", ""}, {2, "x", ""}}, topic: "x", want: counts(0, 1, 1)},
		{name: "other topics do not leak", tracks: []pres{{1, "x", "alice"}, {1, "y", ""}, {2, "y", "alice"}}, topic: "x", want: counts(0, 1, 1)},
		{name: "topics are case sensitive", tracks: []pres{{1, "X", ""}}, topic: "x", want: tracker.Counts{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := mkTracker(t, "a", 1)
			for _, p := range c.tracks {
				track(t, tr, p.owner, p.topic, p.user)
			}
			for _, p := range c.remove {
				require.NoError(t, tr.Untrack(p.owner, p.topic))
			}
			require.Equal(t, c.want, tr.Count(c.topic))
			require.Len(t, tr.List(c.topic), c.want.Connections)
		})
	}
}

func TestCountAcrossTrackers(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 1)
	r := newRouter(t, a, b)
	r.MeshUp()
	track(t, a, 1, "video:1", "alice")
	track(t, b, 1, "video:1", "alice") // alice's second tab, on another node
	track(t, a, 2, "video:1", "")
	track(t, b, 2, "video:1", "")
	track(t, b, 3, "video:1", "bob")
	r.Step(time.Millisecond)
	require.Equal(t, counts(2, 2, 5), a.Count("video:1"))
	require.Equal(t, counts(2, 2, 5), b.Count("video:1"))

	// alice closes her tab on b: she is still there on a.
	require.Equal(t, 1, b.UntrackOwner(1))
	r.Step(time.Millisecond)
	require.Equal(t, counts(2, 2, 4), a.Count("video:1"))
	require.Equal(t, counts(2, 2, 4), b.Count("video:1"))
	require.NoError(t, a.Untrack(1, "video:1"))
	r.Step(time.Millisecond)
	require.Equal(t, counts(2, 1, 3), a.Count("video:1"))
	require.Equal(t, counts(2, 1, 3), b.Count("video:1"))
}

func TestList(t *testing.T) {
	a, b := mkTracker(t, "a", 1), mkTracker(t, "b", 7)
	r := newRouter(t, a, b)
	r.MeshUp()
	ra := track(t, a, 10, "room", "alice")
	rb, err := b.Track(20, "room", "", []byte("m"))
	require.NoError(t, err)
	track(t, b, 21, "elsewhere", "")
	r.Step(time.Millisecond)

	want := []tracker.Presence{
		{Node: a.Self(), Owner: 10, Topic: "room", User: "alice", Ref: ra},
		{Node: b.Self(), Owner: 20, Topic: "room", Meta: []byte("m"), Ref: rb},
	}
	for _, tr := range []*tracker.Tracker{a, b} {
		got := tr.List("room")
		slices.SortFunc(got, func(x, y tracker.Presence) int { return strings.Compare(x.Node.Name, y.Node.Name) })
		require.Len(t, got, 2)
		for i := range got {
			if len(got[i].Meta) == 0 {
				got[i].Meta = nil
			}
		}
		require.Equal(t, want, got, "on %s", tr.Self().Name)
	}
	require.Nil(t, a.List("nobody-here"))
}

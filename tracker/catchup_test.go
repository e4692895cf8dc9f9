package tracker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// Issue 9: answering a catch-up request built (and sorted) a whole partition under the tracker's
// mutex, stalling every Track and Count meanwhile. Only taking the answer is under the mutex now:
// while its build is held paused, Track and Count complete, and the answer is the partition as it
// was when the request was handled.
func TestCatchUpAnswerIsBuiltOutsideTheMutex(t *testing.T) {
	b := mkTracker(t, "b", 1, func(c *tracker.Config) { c.LogMaxOps = 8; c.SnapshotChunk = 16 })
	for i := range 40 {
		track(t, b, tracker.Owner(i+1), "x", "")
	}
	b.Tick(epochT0)
	entered, release := make(chan struct{}), make(chan struct{})
	tracker.SetAnswerHook(b, func() { close(entered); <-release })
	answered := make(chan []tracker.Outbound, 1)
	go func() { answered <- b.Handle(crdt.Replica{Name: "c", Epoch: 1}, &crdt.Request{Owner: b.Self()}) }()
	const bound = 10 * time.Second
	select {
	case <-entered:
	case <-time.After(bound):
		t.Fatal("the request was not answered")
	}
	tracked := make(chan error, 1)
	go func() {
		_, err := b.Track(41, "x", "", nil)
		tracked <- err
	}()
	select {
	case err := <-tracked:
		require.NoError(t, err)
	case <-time.After(bound):
		close(release)
		t.Fatal("Track blocked while a catch-up answer was built")
	}
	require.Equal(t, counts(41, 0, 41), b.Count("x"))
	close(release)
	out := <-answered
	require.Len(t, out, 3, "40 entries in parts of 16")
	var refs []crdt.Seq
	for i, o := range out {
		require.Equal(t, tracker.ToOne, o.Target)
		sn := o.Msg.(*crdt.Snapshot)
		require.Equal(t, crdt.Seq(40), sn.Seq, "as of the request: the presence tracked meanwhile is not in it")
		require.Equal(t, uint32(i), sn.Part)
		for _, e := range sn.Entries {
			refs = append(refs, e.Ref)
		}
	}
	require.Len(t, refs, 40)
	for i, r := range refs {
		require.Equal(t, crdt.Seq(i+1), r, "parts hold the entries in ref order")
	}
	require.Equal(t, uint64(1), b.Stats().SnapshotsSent)
}

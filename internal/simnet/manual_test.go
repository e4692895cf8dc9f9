package simnet_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/internal/simnet"
	"github.com/headcount-io/headcount/tracker"
)

func manualTracker(t *testing.T, name string, epoch uint64) *tracker.Tracker {
	t.Helper()
	c := tracker.LocalConfig()
	c.Name, c.Epoch = name, epoch
	tr, err := tracker.New(c)
	require.NoError(t, err)
	return tr
}

// The hand-driven mode: a one-way cut drops what crosses it until restored, a message for an
// incarnation that is gone is lost, and a node given its own delta panics.
func TestManualCutsIncarnationsAndOwnDelta(t *testing.T) {
	a, b := manualTracker(t, "a", 1), manualTracker(t, "b", 1)
	n := simnet.Manual(time.Unix(1_000_000, 0), a, b)
	n.MeshUp()
	n.Cut("a", "b", true)
	_, err := a.Track(1, "x", "", nil)
	require.NoError(t, err)
	n.Step(time.Millisecond)
	require.Zero(t, b.Count("x").Viewers, "cut one way")
	n.Cut("a", "b", false)
	for range 100 {
		if b.Count("x").Viewers == 1 {
			break
		}
		n.Step(50 * time.Millisecond) // digests find and repair the loss
	}
	require.Equal(t, 1, b.Count("x").Viewers)
	require.Positive(t, n.Sent["*crdt.Digest"])

	b2 := manualTracker(t, "b", 2)
	n.Put(b2)
	require.Same(t, b2, n.Tracker("b"))
	before := n.Delivered
	n.Inject(a.Self(), b.Self(), &crdt.Goodbye{Replica: a.Self()})
	n.Deliver()
	require.Equal(t, before, n.Delivered, "addressed to the gone incarnation")

	require.Panics(t, func() {
		n.Inject(b2.Self(), a.Self(), &crdt.Delta{Owner: a.Self(), From: 1, To: 1})
		n.Deliver()
	})
}

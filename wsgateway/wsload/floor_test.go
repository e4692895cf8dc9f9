package wsload

import (
	"context"
	"testing"
	"time"
)

// TestFloorMeasuresEveryConnection: every connection gets every round's frame, and the frame
// is the one-viewer presence_diff a watcher counts.
func TestFloorMeasuresEveryConnection(t *testing.T) {
	if d, ok := diffDelta(diffFrame()[2:]); !ok || d != 1 {
		t.Fatalf("floor frame counts %d (%v), want 1", d, ok)
	}
	res, err := Floor(context.Background(), FloorConfig{Conns: 20, Rounds: 3, Writers: 3, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivery.N != 60 || res.Everyone.N != 3 || res.Writers != 3 || res.FrameBytes != len(diffFrame()) {
		t.Fatalf("result %+v", res)
	}
	if res.Everyone.P50 <= 0 || res.Delivery.Max != res.Everyone.Max {
		t.Fatalf("distributions %v / %v", res.Delivery, res.Everyone)
	}
	if _, err := Floor(context.Background(), FloorConfig{Conns: 0, Rounds: 1, Timeout: time.Second}); err == nil {
		t.Fatal("Conns 0 accepted")
	}
}

package wsload

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// TestFloorMeasuresEveryConnection: every connection gets every round's frame, and the frame
// is the one-viewer presence_diff a watcher counts. Floor's readers are Run's (socket.run), so
// the run also checks that the frame is a WebSocket frame they accept (the 151-byte frame
// before, its 149-byte length in one byte, read as a masked frame and was refused).
func TestFloorMeasuresEveryConnection(t *testing.T) {
	if len(diffPayload) < 126 || len(diffFrame()) != 4+len(diffPayload) {
		t.Fatalf("payload %d bytes, frame %d: diffFrame's length encoding no longer fits", len(diffPayload), len(diffFrame()))
	}
	if d, ok := diffDelta([]byte(diffPayload)); !ok || d != 1 {
		t.Fatalf("floor frame counts %d (%v), want 1", d, ok)
	}
	methods := []bool{false}
	if runtime.GOOS == "linux" {
		methods = append(methods, true) // the io_uring floor, as the gateway's writers send
	}
	for _, ring := range methods {
		// 100 connections, 34 per writer (32 for the last): full submissions and short ones.
		res, err := Floor(context.Background(), FloorConfig{Conns: 100, Rounds: 3, Writers: 3, IOUring: ring, Timeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]string{false: "write(2)", true: "io_uring"}[ring]
		if res.Delivery.N != 300 || res.Everyone.N != 3 || res.Writers != 3 || res.FrameBytes != len(diffFrame()) || res.Method != want {
			t.Fatalf("result %+v", res)
		}
		if res.First.N != 3 || res.First.P50 <= 0 || res.First.Max > res.Everyone.Max || res.First.P50 > res.Everyone.P50 {
			t.Fatalf("%s: first %v, everyone %v", want, res.First, res.Everyone)
		}
		if res.Everyone.P50 <= 0 || res.Delivery.Max != res.Everyone.Max {
			t.Fatalf("%s: distributions %v / %v", want, res.Delivery, res.Everyone)
		}
	}
	if _, err := Floor(context.Background(), FloorConfig{Conns: 0, Rounds: 1, Timeout: time.Second}); err == nil {
		t.Fatal("Conns 0 accepted")
	}
}

// wsFrame is an unmasked server frame with a payload under 64 KiB.
func wsFrame(fin bool, op byte, payload string) []byte {
	if fin {
		op |= 0x80
	}
	if n := len(payload); n >= 126 {
		return append([]byte{op, 126, byte(n >> 8), byte(n)}, payload...)
	}
	return append([]byte{op, byte(len(payload))}, payload...)
}

// TestFloorAndFanoutReadAlike: a watcher (socket.run, which both Run and Floor read with) and
// a bare readDiffs loop read alike: on one stream of frames (a reply that is not a diff, a diff
// in two fragments, a leave, a join) both see the same three deltas and skip the reply.
func TestFloorAndFanoutReadAlike(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := openPairs(ctx, 2)
	defer p.close()
	if err != nil {
		t.Fatal(err)
	}
	const diff = `[null,null,"t","presence_diff",{"joins":{"viewers":{"count":%d},"users":{"count":0}},"leaves":{"viewers":{"count":%d},"users":{"count":0}}}]`
	join, leave := fmt.Sprintf(diff, 1, 0), fmt.Sprintf(diff, 0, 1)
	var stream []byte
	stream = append(stream, wsFrame(true, 1, `[null,"1","phoenix","phx_reply",{"status":"ok","response":{}}]`)...)
	stream = append(stream, wsFrame(false, 1, join[:40])...)
	stream = append(stream, wsFrame(true, 0, join[40:])...)
	stream = append(stream, append(wsFrame(true, 1, leave), wsFrame(true, 1, join)...)...)
	for _, c := range p.servers {
		if _, err := c.Write(stream); err != nil {
			t.Fatal(err)
		}
	}

	fanout := make(chan int64, 3)
	s := &socket{ws: p.clients[0], done: make(chan struct{})}
	fn := countFunc(func(n int64, _ time.Time) { fanout <- n })
	s.onCount.Store(&fn)
	go s.run()
	var floor []int64
	readDiffs(p.clients[1], func(d int64, _ time.Time) bool {
		floor = append(floor, d)
		return len(floor) < 3
	})
	var counts []int64
	for range 3 {
		select {
		case n := <-fanout:
			counts = append(counts, n)
		case <-ctx.Done():
			t.Fatalf("fan-out reader saw counts %v only", counts)
		}
	}
	p.close()
	<-s.done
	if fmt.Sprint(floor) != "[1 -1 1]" || fmt.Sprint(counts) != "[1 0 1]" || s.frames.Load() != 3 {
		t.Fatalf("floor deltas %v, fan-out counts %v after %d diffs; want [1 -1 1], [1 0 1], 3", floor, counts, s.frames.Load())
	}
}

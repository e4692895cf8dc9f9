package wsgateway

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/headcount-io/headcount/tracker"
)

// Benchmarks of the readers (issue 12). Run:
//
//	go test -run '^$' -bench 'ListPage' -benchtime 20000x ./wsgateway/

const listTopics = 50

// nullTransport discards frames: the server side of a connection without a socket.
type nullTransport struct{}

func (nullTransport) write(*outFrame) error { return nil }
func (nullTransport) finish(int, string)    {}
func (nullTransport) abort()                {}

// BenchmarkListPageFrames: one socket observes 50 topics while their presences churn (each
// op is one Track or Untrack, on the tracker directly, spread over the 50 topics: the counts
// grow for half of the ops, then shrink). It reports
// the presence_diff frames the page receives per second and per change: coalescing bounds
// them by 50 topics x one diff per CoalesceWindow, however fast the counts change.
func BenchmarkListPageFrames(b *testing.B) {
	tg := startGateway(b, nil)
	c := tg.dial(b, "vsn=2.0.0")
	for i := range listTopics {
		c.sendRaw(fmt.Sprintf(`["%d","%d","video:%d","phx_join",{"observe":true}]`, i, i, i))
	}
	for range 2 * listTopics {
		c.read()
	}
	var frames atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := c.ws.ReadMessage(); err != nil {
				return
			}
			frames.Add(1)
		}
	}()
	owners := 1 << 40 // far from the gateway's own connection ids
	b.ResetTimer()
	start := time.Now()
	half := (b.N + 1) / 2 // the counts grow for half of the ops, then shrink back
	for i := 0; i < b.N; i++ {
		p := i
		if i >= half {
			p = i - half
		}
		o, topic := tracker.Owner(owners+p), fmt.Sprintf("video:%d", p%listTopics)
		if i < half {
			if _, err := tg.tr.Track(o, topic, "", nil); err != nil {
				b.Fatal(err)
			}
		} else if err := tg.tr.Untrack(o, topic); err != nil {
			b.Fatal(err)
		}
	}
	// Let the last window's diffs arrive.
	time.Sleep(3 * DefaultConfig().CoalesceWindow) // a measurement window, not a synchronisation
	elapsed := time.Since(start)
	b.StopTimer()
	n := frames.Load()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "frames/s")
	b.ReportMetric(float64(n)/float64(b.N), "frames/change")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "changes/s")
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.ws.Close()
	<-done
}

// BenchmarkListPageMemory: the gateway's heap per list page observing 50 topics (its 50
// channels, their hub entries and join answers), measured over 200 pages on connections
// without sockets; a socket's own buffers and goroutines come on top (BENCHMARKS.md [K]).
func BenchmarkListPageMemory(b *testing.B) {
	const pages = 200
	tg := startGateway(b, nil)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		conns := make([]*conn, pages)
		before := heapAlloc()
		b.StartTimer()
		for p := range conns {
			c := &conn{g: tg.g, t: nullTransport{}, id: tg.g.cfg.Tracker.NewOwner(), vsn: vsn2,
				done: make(chan struct{}), writerDone: make(chan struct{}), chans: map[string]*sub{}}
			for t := range listTopics {
				jr := optString{S: fmt.Sprint(t), Valid: true}
				c.handle(message{JoinRef: jr, Ref: jr, Topic: fmt.Sprintf("video:%d", t), Event: evJoin, Payload: []byte(`{"observe":true}`)})
			}
			conns[p] = c
		}
		b.StopTimer()
		for _, c := range conns { // let the writers drain the join answers
			for {
				c.mu.Lock()
				idle := !c.writing
				c.mu.Unlock()
				if idle {
					break
				}
				runtime.Gosched()
			}
		}
		after := heapAlloc()
		b.ReportMetric(float64(after-before)/pages, "B/page")
		b.ReportMetric(float64(after-before)/pages/listTopics, "B/observed-channel")
		if got := tg.tr.Stats().Presences; got != 0 {
			b.Fatalf("observers tracked %d presences", got)
		}
		for _, c := range conns {
			c.close(0, "")
			c.cleanup()
			<-c.writerDone
		}
		b.StartTimer()
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

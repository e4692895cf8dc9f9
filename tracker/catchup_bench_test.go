package tracker_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// BenchmarkTrackDuringCatchUp measures Track's latency on a node of 100k local presences while
// another goroutine answers catch-up requests for that partition back to back (each a 100k-entry
// snapshot in two sorted parts, as for a peer that just joined). It reports Track's p50, p99 and
// worst latency, and the mean time to answer one request: when the answer is built under the
// tracker's mutex, Track's worst case is about one answer.
func BenchmarkTrackDuringCatchUp(b *testing.B) {
	const partition = 100_000
	tr := benchTracker(b, "big")
	for i := range partition {
		if _, err := tr.Track(tracker.Owner(i+1), fmt.Sprintf("video:%d", i%1000), "", nil); err != nil {
			b.Fatal(err)
		}
	}
	now := time.Unix(1_700_000_000, 0)
	tr.Tick(now)
	if tr.Config().LogMaxOps >= partition {
		b.Fatal("the log reaches back: requests would be answered from it, not by a snapshot")
	}
	var (
		stop     atomic.Bool
		answers  atomic.Int64
		answerNs atomic.Int64
		wg       sync.WaitGroup
	)
	started := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		close(started)
		for i := 0; !stop.Load(); i++ {
			// A distinct requester each time: answers are rate-limited per requester and owner.
			from := crdt.Replica{Name: fmt.Sprint("peer-", i), Epoch: 1}
			t0 := time.Now()
			out := tr.Handle(from, &crdt.Request{Owner: tr.Self(), Since: 0})
			answerNs.Add(int64(time.Since(t0)))
			answers.Add(1)
			if len(out) != 2 {
				panic(fmt.Sprintf("want a snapshot in 2 parts, got %d messages", len(out)))
			}
		}
	}()
	<-started
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		owner := tracker.Owner(partition + 1 + i)
		t0 := time.Now()
		_, err := tr.Track(owner, "live", "", nil)
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		if tr.UntrackOwner(owner) != 1 {
			b.Fatal("untrack")
		}
		if i%1000 == 999 {
			now = now.Add(time.Millisecond)
			tr.Tick(now)
		}
	}
	b.StopTimer()
	stop.Store(true)
	wg.Wait()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "track-p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "track-p99-ns")
	b.ReportMetric(float64(lat[len(lat)-1].Nanoseconds()), "track-max-ns")
	if n := answers.Load(); n > 0 {
		b.ReportMetric(float64(answerNs.Load())/float64(n)/1e6, "answer-ms")
		b.ReportMetric(float64(n), "answers")
	}
}

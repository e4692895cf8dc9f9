// Package solo drives a tracker that has no peers: the one tick loop of a single node.
//
// A tracker only flushes its local operations when someone calls Tick (package gossip does,
// for a cluster). A node without gossip still needs that, or its batch of unsent operations
// grows forever; package node runs Run for it, and so do tests of packages that cannot
// import node. Run never sends anything: there is no one to send to.
package solo

import (
	"time"

	"github.com/headcount-io/headcount/tracker"
)

// Run ticks t when it has pending local operations and every t.Config().DigestInterval (for
// its timers), dropping the outbound messages, until stop is closed. It blocks; the caller
// owns the goroutine that runs it.
func Run(t *tracker.Tracker, stop <-chan struct{}) {
	tick := time.NewTicker(t.Config().DigestInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.Pending():
		case <-tick.C:
		}
		t.Tick(time.Now())
	}
}

// Start runs Run in a new goroutine and returns the function that stops it and waits for it.
func Start(t *tracker.Tracker) (stop func()) {
	ch, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		Run(t, ch)
	}()
	return func() {
		close(ch)
		<-done
	}
}

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/headcount-io/headcount/testcluster"
	"github.com/headcount-io/headcount/tracker"
)

// benchFailover measures, rounds times, how long the presences of the last
// node take to leave every other node's counts after it crashes (kill) and
// after it stops gracefully (stop). The node is restarted between rounds.
func benchFailover(ctx context.Context, c *testcluster.Cluster, rounds, presences int, timeout time.Duration) (crash, graceful []time.Duration, err error) {
	victim := c.Len() - 1
	for round := range 2 * rounds {
		topic := fmt.Sprintf("bench:failover:%d", round)
		v := c.Node(victim)
		for range presences {
			if _, err := v.Track(topic, ""); err != nil {
				return nil, nil, err
			}
		}
		var others []*testcluster.Node
		var subs []*tracker.Subscription
		for _, n := range c.Live() {
			if n.Index() != victim {
				others = append(others, n)
				subs = append(subs, n.Tracker().Subscribe())
			}
		}
		closeSubs := func() {
			for _, s := range subs {
				s.Close()
			}
		}
		want := presences
		if _, err := waitAll(ctx, others, subs, topic, timeout, time.Now(), func(n tracker.Counts) bool { return n.Viewers == want }); err != nil {
			closeSubs()
			return nil, nil, fmt.Errorf("before the stop: %w", err)
		}
		// Watch before stopping: Stop returns only after memberlist's leave
		// broadcast, long after the goodbye has been applied by the peers.
		type waited struct {
			d   time.Duration
			err error
		}
		done := make(chan waited, 1)
		start := time.Now()
		go func() {
			d, err := waitAll(ctx, others, subs, topic, timeout, start, func(n tracker.Counts) bool { return n.Viewers == 0 })
			done <- waited{d, err}
		}()
		kill := round%2 == 0
		if kill {
			err = c.Kill(victim)
		} else {
			err = c.Stop(ctx, victim)
		}
		w := <-done
		closeSubs()
		if err != nil {
			return nil, nil, err
		}
		d, err := w.d, w.err
		if err != nil {
			return nil, nil, err
		}
		if kill {
			crash = append(crash, d)
		} else {
			graceful = append(graceful, d)
		}
		if err := c.Restart(victim); err != nil {
			return nil, nil, err
		}
	}
	return crash, graceful, nil
}

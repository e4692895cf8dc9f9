package main

import (
	"context"
	"fmt"
	"time"

	"github.com/headcount-io/headcount/testcluster"
	"github.com/headcount-io/headcount/tracker"
)

// waitCount waits until tr's counts of topic satisfy ok, woken by sub, and
// returns when that happened. It fails after ctx ends.
func waitCount(ctx context.Context, tr *tracker.Tracker, sub *tracker.Subscription, topic string, ok func(tracker.Counts) bool) (time.Time, error) {
	for {
		if ok(tr.Count(topic)) {
			return time.Now(), nil
		}
		select {
		case <-sub.C():
			sub.Topics() // drain; the count is read again above
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("topic %q on %s: counts %+v: %w", topic, tr.Self().Name, tr.Count(topic), ctx.Err())
		}
	}
}

// benchConvergence measures, samples times, how long one track (then its
// untrack) on one node takes to show in the counts of every other node.
func benchConvergence(ctx context.Context, c *testcluster.Cluster, samples int, timeout time.Duration) (track, untrack []time.Duration, err error) {
	nodes := c.Live()
	for i := range samples {
		origin := nodes[i%len(nodes)]
		topic := fmt.Sprintf("bench:converge:%d", i)
		var subs []*tracker.Subscription
		var others []*testcluster.Node
		for _, n := range nodes {
			if n != origin {
				others = append(others, n)
				subs = append(subs, n.Tracker().Subscribe())
			}
		}
		closeSubs := func() {
			for _, s := range subs {
				s.Close()
			}
		}
		start := time.Now()
		owner, err := origin.Track(topic, "")
		if err != nil {
			closeSubs()
			return nil, nil, err
		}
		d, err := waitAll(ctx, others, subs, topic, timeout, start, func(n tracker.Counts) bool { return n.Viewers == 1 })
		if err != nil {
			closeSubs()
			return nil, nil, err
		}
		track = append(track, d)
		start = time.Now()
		if err := origin.Tracker().Untrack(owner, topic); err != nil {
			closeSubs()
			return nil, nil, err
		}
		d, err = waitAll(ctx, others, subs, topic, timeout, start, func(n tracker.Counts) bool { return n.Viewers == 0 })
		closeSubs()
		if err != nil {
			return nil, nil, err
		}
		untrack = append(untrack, d)
	}
	return track, untrack, nil
}

// waitAll waits on every node at once and returns the time from start until
// the last of them saw ok.
func waitAll(ctx context.Context, nodes []*testcluster.Node, subs []*tracker.Subscription, topic string, timeout time.Duration, start time.Time, ok func(tracker.Counts) bool) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type seen struct {
		at  time.Time
		err error
	}
	ch := make(chan seen, len(nodes))
	for i, n := range nodes {
		go func() {
			at, err := waitCount(ctx, n.Tracker(), subs[i], topic, ok)
			ch <- seen{at, err}
		}()
	}
	var last time.Time
	var firstErr error
	for range nodes {
		s := <-ch
		if s.err != nil && firstErr == nil {
			firstErr = s.err
		}
		if s.at.After(last) {
			last = s.at
		}
	}
	if firstErr != nil {
		return 0, firstErr
	}
	return last.Sub(start), nil
}

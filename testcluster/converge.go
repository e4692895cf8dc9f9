package testcluster

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/headcount-io/headcount/tracker"
)

// Truth returns the counts every running node should show for every topic: the ground truth,
// computed from the presences each running node owns (what it tracked itself). Topics visible on
// any running node are included, so a ghost topic shows up with zero counts.
func (c *Cluster) Truth() map[string]tracker.Counts {
	return truth(c.Live())
}

// Check compares every running node's tracker.Count for every topic with Truth and returns an
// error describing the first differences, or nil.
func (c *Cluster) Check() error { return check(c.Live()) }

// CheckGroup is Check restricted to the running nodes among idx: the truth is computed from their
// presences only, as it should be inside one side of a partition.
func (c *Cluster) CheckGroup(idx ...int) error {
	var nodes []*Node
	for _, i := range idx {
		if n := c.Node(i); n != nil && n.Running() {
			nodes = append(nodes, n)
		}
	}
	return check(nodes)
}

// WaitConverged waits until Check passes or ctx is done; then it returns an error wrapping the
// last difference.
func (c *Cluster) WaitConverged(ctx context.Context) error {
	return wait(ctx, c.Check)
}

// WaitGroupConverged waits until CheckGroup(idx...) passes or ctx is done.
func (c *Cluster) WaitGroupConverged(ctx context.Context, idx ...int) error {
	return wait(ctx, func() error { return c.CheckGroup(idx...) })
}

// RequireConverged waits up to timeout for every running node's counts to match the ground
// truth and fails the test (t.Fatal) if they do not.
func (c *Cluster) RequireConverged(t testing.TB, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
}

func wait(ctx context.Context, check func() error) error {
	for {
		start := time.Now()
		err := check()
		if err == nil {
			return nil
		}
		// Poll often, but never spend more than about a third of the time checking.
		pause := max(5*time.Millisecond, 2*time.Since(start))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("testcluster: not converged: %w (%v)", err, ctx.Err())
		case <-t.C:
		}
	}
}

func truth(nodes []*Node) map[string]tracker.Counts {
	topics := make(map[string]bool)
	for _, n := range nodes {
		for _, tp := range n.Tracker().Topics() {
			topics[tp] = true
		}
	}
	type acc struct {
		viewers, conns int
		users          map[string]bool
	}
	accs := make(map[string]*acc, len(topics))
	for tp := range topics {
		accs[tp] = &acc{users: make(map[string]bool)}
	}
	for _, n := range nodes {
		tr := n.Tracker()
		self := tr.Self()
		if !ownsPresences(tr) {
			continue
		}
		for tp, a := range accs {
			for _, p := range tr.List(tp) {
				if p.Node != self {
					continue
				}
				a.conns++
				if p.User == "" {
					a.viewers++
				} else {
					a.users[p.User] = true
				}
			}
		}
	}
	out := make(map[string]tracker.Counts, len(accs))
	for tp, a := range accs {
		out[tp] = tracker.Counts{Viewers: a.viewers, Users: len(a.users), Connections: a.conns}
	}
	return out
}

// ownsPresences reports whether tr holds presences of its own.
func ownsPresences(tr *tracker.Tracker) bool {
	for _, r := range tr.Replicas() {
		if r.Self {
			return r.Presences > 0
		}
	}
	return false
}

func check(nodes []*Node) error {
	want := truth(nodes)
	topics := make([]string, 0, len(want))
	for tp := range want {
		topics = append(topics, tp)
	}
	sort.Strings(topics)
	var diffs []string
	for _, n := range nodes {
		tr := n.Tracker()
		for _, tp := range topics {
			if got := tr.Count(tp); got != want[tp] {
				diffs = append(diffs, fmt.Sprintf("%s topic %q: got %+v, want %+v", n.name, tp, got, want[tp]))
			}
		}
	}
	if len(diffs) == 0 {
		return nil
	}
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("... and %d more", len(diffs)-5))
	}
	return fmt.Errorf("counts differ from ground truth: %v", diffs)
}

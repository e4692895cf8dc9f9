package webhook_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/headcount-io/headcount/webhook"
)

// Regressions the simulator (sim_test.go) found, each pinned on a single Core.

// A full queue dropped its oldest event and re-sent that topic only once the queue was empty:
// under steady load it never was, and the topic starved (its state reached the receiver only
// after the load stopped, if the node still owned it then).
func TestRegressionFullQueueTopicNotStarvedUnderLoad(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) { c.QueueMax = 2; c.BatchMax = 1 })
	r.observe("x", counts(1, 0))
	r.observe("b0", counts(1, 0))
	r.observe("b1", counts(1, 0)) // the queue holds 2: x does not fit
	next := 2
	for range 500 { // four new topics a millisecond, one POST a millisecond
		for range 4 {
			r.observe(fmt.Sprintf("b%d", next), counts(1, 0))
			next++
		}
		r.c.Tick(r.now)
		if b := r.c.Next(r.now); b != nil {
			r.got = append(r.got, b.Events...)
			r.c.Done(r.now, true)
		}
		r.now = r.now.Add(time.Millisecond)
	}
	if !slices.Contains(r.names(), "occupied x") {
		t.Fatalf("x starved: %d events delivered, none for x (stats %+v)", len(r.got), r.c.Stats())
	}
}

// A node that told the receiver a topic was occupied, then lost the topic to a member that
// appeared, stayed silent when its view of the topic emptied: the new owner, which never saw
// the topic occupied, had nothing to send either, and the receiver kept occupied for good.
func TestRegressionLostTopicVacatedByTheNodeThatReportedIt(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) { c.VacateGrace = 0; c.Handover = 10 * time.Millisecond })
	topic := ownedBy(t, "b", []string{"a", "b"}, "t")
	r.observe(topic, counts(1, 0))
	r.step(10 * time.Millisecond)
	r.c.SetMembers(r.now, []string{"a", "b"}) // b appears and owns the topic
	r.step(time.Second)                       // past the handover
	r.observe(topic, counts(0, 0))
	r.step(10 * time.Second)
	r.want("occupied "+topic, "vacated "+topic+" 1/0")
}

// The same with a POST that failed but was processed (its response was lost): the node counted
// only answered deliveries as said, so it believed the receiver never heard occupied.
func TestRegressionTimedOutOccupiedCountsAsSaid(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) {
		c.VacateGrace = 0
		c.Handover = 10 * time.Millisecond
		c.MaxAttempts = 1
	})
	topic := ownedBy(t, "b", []string{"a", "b"}, "t")
	r.lost = 1
	r.observe(topic, counts(1, 0))
	r.c.SetMembers(r.now, []string{"a", "b"}) // b takes it before the first attempt
	r.step(time.Second)                       // the attempt is processed, reported failed
	r.observe(topic, counts(0, 0))
	r.step(10 * time.Second)
	// Its state may go again inside the handover (a duplicate around the ownership change);
	// what matters is the last word.
	if got := r.names(); len(got) == 0 || got[len(got)-1] != "vacated "+topic+" 1/0" {
		t.Fatalf("received %q, want the last to be the vacated", got)
	}
}

// After a topic_counts batch failed for good, the topic's state was re-sent while it was empty
// inside the grace (occupied, no counts), but the failed counts stayed recorded as sent: when
// the same counts came back, nothing was sent and the receiver kept the counts before.
func TestRegressionCountsResentAfterFailedBatchInsideGrace(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) {
		c.Events.Counts = true
		c.MaxAttempts = 1
		c.VacateGrace = time.Second
	})
	r.observe("t", counts(2, 0))
	r.step(time.Second)
	r.observe("t", counts(1, 0))
	r.now = r.now.Add(time.Second)
	r.c.Tick(r.now) // the debounced counts 1/0 are decided
	if b := r.c.Next(r.now); b == nil {
		t.Fatal("no counts batch")
	}
	r.c.Done(r.now, false)       // and lost for good
	r.observe("t", counts(0, 0)) // empty, inside the grace
	r.step(10 * time.Millisecond)
	r.observe("t", counts(1, 0)) // back, with the counts that never arrived
	r.step(time.Second)
	var last webhook.Event
	for _, ev := range r.got {
		if ev.Name == webhook.NameCounts {
			last = ev
		}
	}
	if last.Viewers != 1 || last.Users != 0 {
		t.Fatalf("last counts %d/%d, want 1/0: %q", last.Viewers, last.Users, r.names())
	}
}

// A member that restarted under its name, fast enough that no one saw it fail, kept its
// topics, but its new incarnation could not know it had told the receiver occupied, and never
// saw the topic occupied if the last presence left while it started: no one sent vacated.
// Now the runner-up owner sends the state of the restarted member's topics at once.
func TestRegressionRestartedOwnerTopicsResentByRunnerUp(t *testing.T) {
	members := []string{"a", "b"}
	topic := ownedBy(t, "b", members, "t")
	r := testCore(t, "a", func(c *webhook.Config) { c.VacateGrace = 0 })
	r.c.SetMembers(r.now, members)
	r.observe(topic, counts(1, 0)) // b sends occupied; a, not the owner, stays silent
	r.observe(topic, counts(0, 0)) // the presence leaves while b restarts
	r.step(10 * time.Second)
	r.want()
	r.c.MemberRestarted(r.now, "b")
	r.step(10 * time.Second)
	r.want("vacated " + topic + " 1/0")
}

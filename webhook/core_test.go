package webhook_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/webhook"
)

var t0 = time.Unix(1_700_000_000, 0)

// coreRig drives a Core with a fake clock and a receiver that answers as told.
type coreRig struct {
	t    *testing.T
	c    *webhook.Core
	now  time.Time
	got  []webhook.Event
	fail int // answer the next fail POSTs with an error
	lost int // process the next lost POSTs but answer with an error (a lost response)
	sent []*webhook.Batch
	at   []time.Time // when each batch of sent went out
}

func testCore(t *testing.T, self string, mut func(*webhook.Config)) *coreRig {
	t.Helper()
	cfg := webhook.TestConfig()
	cfg.Seed = 1
	if mut != nil {
		mut(&cfg)
	}
	c, err := webhook.NewCore(cfg, self, self)
	if err != nil {
		t.Fatal(err)
	}
	return &coreRig{t: t, c: c, now: t0}
}

func counts(v, u int) tracker.Counts { return tracker.Counts{Viewers: v, Users: u, Connections: v + u} }

// step advances the clock by d, firing deadlines and delivering every due batch on the way.
func (r *coreRig) step(d time.Duration) {
	end := r.now.Add(d)
	for i := 0; i < 100000; i++ {
		r.c.Tick(r.now)
		if b := r.c.Next(r.now); b != nil {
			r.sent = append(r.sent, b)
			r.at = append(r.at, r.now)
			var p webhook.Payload
			if err := json.Unmarshal(b.Body, &p); err != nil {
				r.t.Fatal(err)
			}
			if r.fail > 0 {
				r.fail--
				r.c.Done(r.now, false)
			} else if r.lost > 0 {
				r.lost--
				r.got = append(r.got, p.Events...)
				r.c.Done(r.now, false)
			} else {
				r.got = append(r.got, p.Events...)
				r.c.Done(r.now, true)
			}
			continue
		}
		next := r.c.Deadline()
		if next.IsZero() || next.After(end) {
			r.now = end
			r.c.Tick(r.now)
			return
		}
		if next.After(r.now) {
			r.now = next
		}
	}
	r.t.Fatal("step did not finish")
}

func (r *coreRig) observe(topic string, n tracker.Counts) { r.c.Observe(r.now, topic, n) }

// names returns the received events as "name topic" strings (with counts where they matter).
func (r *coreRig) names() []string {
	var out []string
	for _, e := range r.got {
		switch e.Name {
		case webhook.NameOccupied:
			out = append(out, "occupied "+e.Topic)
		case webhook.NameVacated:
			out = append(out, fmt.Sprintf("vacated %s %d/%d", e.Topic, e.Viewers, e.Users))
		case webhook.NameCounts:
			out = append(out, fmt.Sprintf("counts %s %d/%d", e.Topic, e.Viewers, e.Users))
		}
	}
	return out
}

func (r *coreRig) want(want ...string) {
	r.t.Helper()
	if got := r.names(); !slices.Equal(got, want) {
		r.t.Fatalf("received %q, want %q", got, want)
	}
}

func TestOccupiedOnceVacatedOnceAfterGrace(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) { c.VacateGrace = time.Second })
	r.observe("room", counts(1, 0))
	r.step(10 * time.Millisecond)
	r.observe("room", counts(2, 1))
	r.observe("room", counts(1, 0))
	r.step(10 * time.Millisecond)
	r.want("occupied room")
	r.observe("room", counts(0, 0))
	r.step(999 * time.Millisecond)
	r.want("occupied room")
	r.step(100 * time.Millisecond)
	r.want("occupied room", "vacated room 2/1")
	if ms := r.got[1].OccupiedMS; ms != 20 {
		t.Fatalf("occupied_ms = %d, want 20 (first join to last leave, grace excluded)", ms)
	}
	if r.got[0].ID == r.got[1].ID {
		t.Fatalf("two events share id %q", r.got[0].ID)
	}
}

func TestReloadInsideGraceSendsNothing(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) { c.VacateGrace = time.Second })
	r.observe("room", counts(1, 0))
	r.step(time.Second)
	r.observe("room", counts(0, 0))
	r.step(900 * time.Millisecond)
	r.observe("room", counts(1, 0)) // the page came back
	r.step(5 * time.Second)
	r.want("occupied room")
	// The old grace timer must not fire later either; a real leave still vacates.
	r.observe("room", counts(0, 0))
	r.step(999 * time.Millisecond)
	r.want("occupied room")
	r.step(10 * time.Millisecond) // the grace, then BatchWait
	r.want("occupied room", "vacated room 1/0")
}

func TestZeroGraceVacatesAtOnce(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) { c.VacateGrace = 0 })
	r.observe("room", counts(1, 0))
	r.observe("room", counts(0, 0))
	r.step(time.Second)
	r.want("occupied room", "vacated room 1/0")
}

func TestCountsDebounced(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) {
		c.Events = webhook.Events{Occupied: true, Vacated: true, Counts: true}
		c.Debounce = time.Second
		c.VacateGrace = time.Second
	})
	r.observe("room", counts(1, 0))
	for i := 2; i <= 50; i++ {
		r.step(10 * time.Millisecond)
		r.observe("room", counts(i, 1))
	}
	r.step(time.Second)
	r.want("occupied room", "counts room 50/1")
	// A change that returns to the sent values inside a window sends nothing.
	r.observe("room", counts(49, 1))
	r.step(100 * time.Millisecond)
	r.observe("room", counts(50, 1))
	r.step(2 * time.Second)
	r.want("occupied room", "counts room 50/1")
	// While empty (in the grace) no counts go out; vacated carries the peak.
	r.observe("room", counts(0, 0))
	r.step(2 * time.Second)
	r.want("occupied room", "counts room 50/1", "vacated room 50/1")
}

func TestEventsFilter(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) { c.Events = webhook.Events{Vacated: true}; c.VacateGrace = 0 })
	r.observe("room", counts(1, 0))
	r.observe("room", counts(0, 0))
	r.step(time.Second)
	r.want("vacated room 1/0")
}

func TestRollupTopicsSendNothing(t *testing.T) {
	r := testCore(t, "a", nil)
	r.observe("video:*", counts(3, 1))
	r.step(time.Second)
	r.want()
}

func TestBatchingBoundedBySizeAndWait(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) { c.BatchMax = 10; c.BatchWait = 100 * time.Millisecond })
	for i := range 25 {
		r.observe(fmt.Sprintf("t%02d", i), counts(1, 0))
	}
	r.step(0)
	if len(r.sent) != 2 || len(r.sent[0].Events) != 10 || len(r.sent[1].Events) != 10 {
		t.Fatalf("before the wait: %d batches, want two full ones", len(r.sent))
	}
	r.step(99 * time.Millisecond)
	if len(r.sent) != 2 {
		t.Fatalf("the partial batch left before BatchWait")
	}
	r.step(time.Millisecond)
	if len(r.sent) != 3 || len(r.sent[2].Events) != 5 {
		t.Fatalf("after the wait: %d batches, want a third of 5", len(r.sent))
	}
	// Order is the order of the transitions.
	for i, e := range r.got {
		if e.Topic != fmt.Sprintf("t%02d", i) {
			t.Fatalf("event %d is %s", i, e.Topic)
		}
	}
}

func TestRetrySameIDsAndBodyWithBackoff(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) {
		c.RetryMin, c.RetryMax, c.MaxAttempts = 100*time.Millisecond, time.Second, 10
	})
	r.fail = 5
	r.observe("room", counts(1, 0))
	r.step(10 * time.Second)
	if len(r.sent) != 6 {
		t.Fatalf("%d attempts, want 6", len(r.sent))
	}
	for _, b := range r.sent[1:] {
		if string(b.Body) != string(r.sent[0].Body) {
			t.Fatalf("retry body %s differs from %s", b.Body, r.sent[0].Body)
		}
	}
	r.want("occupied room")
	if s := r.c.Stats(); s.Retries != 5 || s.Sent != 1 {
		t.Fatalf("stats %+v", s)
	}
	// Backoff after the n-th failure: in [d/2, d] with d = min(100ms*2^(n-1), 1s).
	for i := 1; i < len(r.at); i++ {
		d := min(100*time.Millisecond<<(i-1), time.Second)
		if gap := r.at[i].Sub(r.at[i-1]); gap < d/2 || gap > d {
			t.Fatalf("gap before attempt %d = %v, want in [%v, %v]", i+1, gap, d/2, d)
		}
	}
}

func TestDroppedAfterMaxAttemptsThenStateRepaired(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) { c.MaxAttempts = 3; c.VacateGrace = 0 })
	r.fail = 3
	r.observe("room", counts(1, 0))
	r.observe("room", counts(0, 0))
	r.observe("hall", counts(1, 0))
	r.step(5 * time.Second)
	s := r.c.Stats()
	if s.DroppedRetries != 3 {
		t.Fatalf("dropped %d events after retries, want 3 (%+v)", s.DroppedRetries, s)
	}
	// The receiver came back: the current state of each topic was sent again.
	got := r.names()
	slices.Sort(got)
	if !slices.Equal(got, []string{"occupied hall", "vacated room 1/0"}) {
		t.Fatalf("after the drop the receiver got %q", got)
	}
}

// A full queue coalesces: the topics that do not fit wait as "send your state" marks, one per
// topic, served in order with the others (the old queue dropped its oldest event and re-sent
// the topic only once the queue was empty, which under steady load never happened).
func TestFullQueueCoalescesAndRepairs(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) { c.QueueMax = 4; c.BatchMax = 2; c.MaxAttempts = 100 })
	r.fail = 1
	r.observe("t0", counts(1, 0))
	r.step(10 * time.Millisecond) // t0 is in flight and fails
	for i := 1; i <= 8; i++ {
		r.observe(fmt.Sprintf("t%d", i), counts(1, 0))
	}
	if s := r.c.Stats(); s.DroppedQueue != 4 || s.Queued != 8 {
		t.Fatalf("stats %+v, want 4 coalesced and 8 queued (4 events, 4 topics to re-send)", s)
	}
	r.step(10 * time.Second)
	got := r.names()
	slices.Sort(got)
	want := []string{"occupied t0"}
	for i := 1; i <= 8; i++ {
		want = append(want, fmt.Sprintf("occupied t%d", i))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("received %q, want every topic once: %q", got, want)
	}
}

// ownedBy returns a topic name that Owner maps to want among members.
func ownedBy(t *testing.T, want string, members []string, prefix string) string {
	t.Helper()
	for i := range 10000 {
		topic := fmt.Sprintf("%s%d", prefix, i)
		if webhook.Owner(topic, members) == want {
			return topic
		}
	}
	t.Fatalf("no topic owned by %s", want)
	return ""
}

func TestOnlyTheOwnerSends(t *testing.T) {
	members := []string{"a", "b", "c"}
	mine := ownedBy(t, "a", members, "m")
	theirs := ownedBy(t, "b", members, "x")
	r := testCore(t, "a", nil)
	r.c.SetMembers(r.now, members)
	r.observe(mine, counts(1, 0))
	r.observe(theirs, counts(1, 0))
	r.step(time.Second)
	r.want("occupied " + mine)
}

func TestTakeoverSendsCurrentState(t *testing.T) {
	members := []string{"a", "b", "c"}
	occ := ownedBy(t, "b", members, "occ")
	vac := ownedBy(t, "b", members, "vac")
	if webhook.Owner(occ, []string{"a", "c"}) != "a" {
		occ = ownedBy(t, "b", members, "occ2-")
	}
	r := testCore(t, "a", func(c *webhook.Config) { c.VacateGrace = 0 })
	r.c.SetMembers(r.now, members)
	r.observe(occ, counts(2, 1))
	r.observe(vac, counts(1, 0))
	r.observe(vac, counts(0, 0))
	r.step(time.Second)
	r.want()                                  // b's topics
	r.c.SetMembers(r.now, []string{"a", "c"}) // b died
	r.step(time.Second)
	var want []string
	if webhook.Owner(occ, []string{"a", "c"}) == "a" {
		want = append(want, "occupied "+occ)
	}
	if webhook.Owner(vac, []string{"a", "c"}) == "a" {
		want = append(want, "vacated "+vac+" 1/0")
	}
	slices.Sort(want)
	got := r.names()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("after the takeover got %q, want %q", got, want)
	}
}

func TestTakeoverForgetsVacatedAfterRetain(t *testing.T) {
	members := []string{"a", "b"}
	vac := ownedBy(t, "b", members, "vac")
	r := testCore(t, "a", func(c *webhook.Config) { c.VacateGrace = 0; c.Retain = time.Minute })
	r.c.SetMembers(r.now, members)
	r.observe(vac, counts(1, 0))
	r.observe(vac, counts(0, 0))
	r.step(time.Minute)
	r.c.SetMembers(r.now, []string{"a"})
	r.step(time.Second)
	r.want()
}

func TestMemberAppearsHandoverThenSettle(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) {
		c.Handover, c.Settle = time.Second, 3*time.Second
		c.RetryMin, c.RetryMax, c.MaxAttempts = 500*time.Millisecond, 500*time.Millisecond, 100
		c.VacateGrace = 0
	})
	// Alone, a owns everything.
	stale := ownedBy(t, "b", []string{"a", "b"}, "stale")
	still := ownedBy(t, "b", []string{"a", "b"}, "still")
	keep := ownedBy(t, "a", []string{"a", "b"}, "keep")
	r.fail = 10 // receiver down for about 5 s
	r.observe(stale, counts(1, 0))
	r.observe(still, counts(1, 0))
	r.observe(keep, counts(1, 0))
	r.step(10 * time.Millisecond)
	r.c.SetMembers(r.now, []string{"a", "b"}) // b appears: stale and still are b's now
	r.step(1500 * time.Millisecond)           // past the handover
	r.observe(stale, counts(0, 0))            // stale moved on: a's queued occupied is wrong now
	r.step(20 * time.Second)
	// stale's queued event was dropped, but its failed attempts may have reached the receiver,
	// so a corrects its own last word with a vacated (b never saw stale occupied); still's
	// agrees with its state and was delivered; keep's state was delivered once from the queue
	// and once more at settle.
	if s := r.c.Stats(); s.DroppedHandover != 1 {
		t.Fatalf("stats %+v, want 1 handover drop", s)
	}
	r.want("occupied "+still, "occupied "+keep, "vacated "+stale+" 1/0", "occupied "+keep)
}

// Regression: a vacated stuck behind a down receiver while a new member took its topic over
// was dropped after Handover, leaving the receiver with occupied for good (the new member
// never saw the topic occupied, so it had nothing to send).
func TestStuckVacatedSurvivesHandover(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) {
		c.Handover, c.Settle = time.Second, 3*time.Second
		c.RetryMin, c.RetryMax, c.MaxAttempts = 500*time.Millisecond, 500*time.Millisecond, 100
		c.VacateGrace = 0
	})
	topic := ownedBy(t, "b", []string{"a", "b"}, "t")
	r.observe(topic, counts(1, 0))
	r.step(10 * time.Millisecond)
	r.want("occupied " + topic)
	r.fail = 10
	r.observe(topic, counts(0, 0))
	r.step(10 * time.Millisecond)
	r.c.SetMembers(r.now, []string{"a", "b"})
	r.step(20 * time.Second)
	r.want("occupied "+topic, "vacated "+topic+" 1/0")
}

func TestSetMembersAlwaysIncludesSelf(t *testing.T) {
	r := testCore(t, "a", nil)
	r.c.SetMembers(r.now, []string{"c", "b", "b"})
	if got := r.c.Members(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("members %q", got)
	}
}

func TestRendezvousMovesOnlyToTheNewMember(t *testing.T) {
	before := []string{"n1", "n2", "n3", "n4"}
	after := []string{"n1", "n2", "n3", "n4", "n5"}
	per := map[string]int{}
	moved := 0
	const topics = 20000
	for i := range topics {
		topic := fmt.Sprintf("video:%d", i)
		o, n := webhook.Owner(topic, before), webhook.Owner(topic, after)
		per[o]++
		if o != n {
			moved++
			if n != "n5" {
				t.Fatalf("%s moved from %s to %s, not to the new member", topic, o, n)
			}
		}
	}
	for m, n := range per {
		if n < topics/4*8/10 || n > topics/4*12/10 {
			t.Fatalf("member %s owns %d of %d topics: unbalanced %v", m, n, topics, per)
		}
	}
	if moved < topics/5*8/10 || moved > topics/5*12/10 {
		t.Fatalf("%d of %d topics moved, want about a fifth", moved, topics)
	}
	if webhook.Owner("x", nil) != "" {
		t.Fatal("owner among no members")
	}
}

func TestEventJSONShapes(t *testing.T) {
	for _, tc := range []struct {
		ev   webhook.Event
		want string
	}{
		{webhook.Event{ID: "a-1", Name: webhook.NameOccupied, Topic: "room"},
			`{"id":"a-1","name":"topic_occupied","topic":"room"}`},
		{webhook.Event{ID: "a-2", Name: webhook.NameVacated, Topic: "room", Viewers: 3, Users: 2, OccupiedMS: 1500},
			`{"id":"a-2","name":"topic_vacated","topic":"room","peak":{"viewers":{"count":3},"users":{"count":2}},"occupied_ms":1500}`},
		{webhook.Event{ID: "a-3", Name: webhook.NameCounts, Topic: "room", Viewers: 0, Users: 7},
			`{"id":"a-3","name":"topic_counts","topic":"room","viewers":{"count":0},"users":{"count":7}}`},
	} {
		b, err := json.Marshal(tc.ev)
		if err != nil || string(b) != tc.want {
			t.Fatalf("marshal %+v = %s, %v; want %s", tc.ev, b, err, tc.want)
		}
		var back webhook.Event
		if err := json.Unmarshal(b, &back); err != nil || back != tc.ev {
			t.Fatalf("round trip of %s = %+v, %v", b, back, err)
		}
	}
	if _, err := json.Marshal(webhook.Event{Name: "nope"}); err == nil {
		t.Fatal("unknown name encoded")
	}
	if err := json.Unmarshal([]byte(`{"name":"nope"}`), new(webhook.Event)); err == nil {
		t.Fatal("unknown name decoded")
	}
}

func TestSignVerify(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"time_ms":1,"events":[]}`)
	sig := webhook.Sign(secret, body)
	if !strings.HasPrefix(sig, "sha256=") || len(sig) != len("sha256=")+64 {
		t.Fatalf("signature %q", sig)
	}
	if !webhook.Verify(secret, body, sig) {
		t.Fatal("own signature does not verify")
	}
	for _, bad := range []string{"", "sha256=", "sha256=zz", sig[:len(sig)-1] + "0", "sha1=" + sig[7:]} {
		if bad != sig && webhook.Verify(secret, body, bad) {
			t.Fatalf("%q verifies", bad)
		}
	}
	if webhook.Verify([]byte("other"), body, sig) || webhook.Verify(secret, append(body, ' '), sig) {
		t.Fatal("wrong key or body verifies")
	}
}

func TestParseEvents(t *testing.T) {
	e, err := webhook.ParseEvents("occupied, topic_vacated,counts")
	if err != nil || e != (webhook.Events{Occupied: true, Vacated: true, Counts: true}) || e.String() != "occupied,vacated,counts" {
		t.Fatalf("ParseEvents = %+v, %v", e, err)
	}
	for _, bad := range []string{"", ",", "occupied,joined"} {
		if _, err := webhook.ParseEvents(bad); err == nil {
			t.Fatalf("ParseEvents(%q) accepted", bad)
		}
	}
}

func TestBatchLeadingEdgeAfterQuiet(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) { c.BatchWait = 100 * time.Millisecond })
	r.observe("one", counts(1, 0))
	r.step(0)
	if len(r.sent) != 1 {
		t.Fatal("a lone event after a quiet spell waited for BatchWait")
	}
	r.step(10 * time.Millisecond)
	r.observe("two", counts(1, 0))
	r.step(10 * time.Millisecond)
	r.observe("three", counts(1, 0))
	r.step(79 * time.Millisecond) // 99 ms after the first batch
	if len(r.sent) != 1 {
		t.Fatal("events under load left before BatchWait")
	}
	r.step(time.Millisecond)
	if len(r.sent) != 2 || len(r.sent[1].Events) != 2 {
		t.Fatalf("%d batches, want the second holding two and three", len(r.sent))
	}
}

// Forget takes a topic's waiting events (and its mark to re-send its state) out of the outbox:
// nothing of it is sent, and Stats.Queued counts only what is left.
func TestForgetDropsTheTopicsWaitingEvents(t *testing.T) {
	r := testCore(t, "a", func(c *webhook.Config) { c.QueueMax = 2 })
	r.observe("room", counts(1, 0))
	r.observe("hall", counts(1, 0))
	r.observe("yard", counts(1, 0)) // the queue is full: yard is marked to re-send its state
	if q := r.c.Stats().Queued; q != 3 {
		t.Fatalf("Queued = %d, want 3 (two events and a mark)", q)
	}
	r.c.Forget("room")
	r.c.Forget("yard")
	if q := r.c.Stats().Queued; q != 1 {
		t.Fatalf("Queued = %d after Forget, want 1 (hall's event)", q)
	}
	r.step(time.Second)
	r.want("occupied hall")
	if q := r.c.Stats().Queued; q != 0 {
		t.Fatalf("Queued = %d after delivery, want 0", q)
	}
}

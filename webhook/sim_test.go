package webhook_test

import (
	"container/heap"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/webhook"
)

// The simulator runs K Cores against a model of the cluster: a ground truth of presences per
// topic, per-node replicated views that lag (each origin's operations reach each node in order,
// after a random delay, and only while the two can talk), membership views that learn crashes,
// restarts and partitions after a random delay that differs per node, and a receiver that
// fails with 500s or timeouts for a while. After a random schedule it quiesces (heals
// everything, the receiver recovers, views converge, time runs past every deadline) and checks
// what the package promises.
var (
	simSeed = flag.Uint64("webhook.seed", 0, "run only this simulator schedule, with a trace")
	simRuns = flag.Int("webhook.sims", simDefaultRuns, "simulator schedules TestSimulator runs (default 300, 40 under -race)")
)

// simCfg is the Config every simulated Core runs. The membership spread (simDetectMax) must stay
// under Settle - Handover - Timeout, the bound the package documents; and a partition lasts at
// least simDetectMax, so every node notices it (a partition that heals before some nodes detect
// it is a documented limit: a node that saw the others fail, unseen by them, sends events no
// owner supersedes).
func simCfg(seed uint64, small bool, withCounts bool) webhook.Config {
	c := webhook.TestConfig()
	c.Seed = seed
	c.Timeout = 500 * time.Millisecond
	c.Handover = 500 * time.Millisecond
	c.Settle = 2 * time.Second
	c.VacateGrace = 300 * time.Millisecond
	c.Debounce = 100 * time.Millisecond
	c.Retain = time.Hour // the simulator never runs long enough to forget a vacated topic
	c.RetryMin, c.RetryMax = 20*time.Millisecond, 300*time.Millisecond
	c.MaxAttempts = 4
	c.BatchMax = 4
	c.Events.Counts = withCounts
	if small {
		c.QueueMax = 3
	}
	return c
}

const (
	simLagMax    = 150 * time.Millisecond // replication delay, per operation and per node
	simDetectMin = 50 * time.Millisecond  // membership learns a change this late at least (more than a POST takes)
	simDetectMax = 600 * time.Millisecond // membership learns a change this late at most
	simAEEvery   = 250 * time.Millisecond // anti-entropy round (catch-up of anything behind)
)

type simPresence struct {
	id    int
	topic string
	user  string // "" for an anonymous viewer
}

// simLife is when a presence joined and left (zero while it lives).
type simLife struct {
	topic       string
	add, remove time.Time
}

type simOp struct {
	add bool
	p   simPresence
}

// simOrigin is what one node holds of another node's incarnation: how far into its log.
type simOrigin struct {
	inc  int
	seq  int
	pres map[int]simPresence
}

type simNode struct {
	idx     int
	name    string
	up      bool
	inc     int
	core    *webhook.Core
	posting bool

	own     map[int]simPresence // its live presences (the truth for this node)
	members map[int]int         // the other nodes it sees alive -> their incarnation
	data    map[int]*simOrigin  // what it holds of each other node
	view    map[string]tracker.Counts
}

type simEvent struct {
	at  time.Time
	seq int
	fn  func()
}

type simHeap []simEvent

func (h simHeap) Len() int { return len(h) }
func (h simHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h simHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *simHeap) Push(x any)   { *h = append(*h, x.(simEvent)) }
func (h *simHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// simArrival is one batch the receiver processed.
type simArrival struct {
	at     time.Time
	from   string
	inc    int
	timeMS int64
	events []webhook.Event
}

type sim struct {
	t      testing.TB
	seed   uint64
	rng    *rand.Rand
	cfg    webhook.Config
	now    time.Time
	events simHeap
	evSeq  int
	nodes  []*simNode
	logs   map[[2]int][]simOp // (node, incarnation) -> operations, seq = index + 1
	side   []int              // partition side of each node
	partAt time.Time          // when the partition began
	nextID int
	topics []string
	users  []string

	// receiver
	rcvMode  int // 0 healthy, 1 answers 500, 2 times out (sometimes after processing)
	arrivals []simArrival

	// unseenDeath[(node, inc)][observer] is true when observer's membership did not hold that
	// incarnation when it died (it was partitioned away, or never seen).
	unseenDeath map[[2]int]map[int]bool
	// seenIDs[(node, inc)][topic] holds every presence that incarnation's view ever had.
	seenIDs map[[2]int]map[string]map[int]bool

	// calm schedules have no crash, restart or partition: the membership never changes, so
	// the transitions check applies.
	calm bool
	life map[int]*simLife // every presence's lifetime, by id

	trace   bool
	crashes int
	steps   int
}

const (
	rcvHealthy = iota
	rcv500
	rcvTimeout
)

func (s *sim) logf(format string, args ...any) {
	if s.trace {
		s.t.Logf("%8.3fs "+format, append([]any{s.now.Sub(t0).Seconds()}, args...)...)
	}
}

func (s *sim) at(d time.Duration, fn func()) {
	s.evSeq++
	heap.Push(&s.events, simEvent{at: s.now.Add(d), seq: s.evSeq, fn: fn})
}

func (s *sim) dur(max time.Duration) time.Duration {
	return time.Duration(s.rng.Int64N(int64(max) + 1))
}

func newSim(t testing.TB, seed uint64, trace bool) *sim {
	rng := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15+1))
	s := &sim{t: t, seed: seed, rng: rng, now: t0, logs: map[[2]int][]simOp{}, unseenDeath: map[[2]int]map[int]bool{}, seenIDs: map[[2]int]map[string]map[int]bool{}, trace: trace}
	s.cfg = simCfg(seed, rng.IntN(3) == 0, rng.IntN(2) == 0)
	s.calm = rng.IntN(3) == 0
	s.life = map[int]*simLife{}
	k := 2 + rng.IntN(4)
	nt := 1 + rng.IntN(10)
	for i := range nt {
		s.topics = append(s.topics, fmt.Sprintf("room:%d", i))
	}
	s.users = []string{"", "", "u1", "u2", "u3"}
	s.side = make([]int, k)
	for i := range k {
		n := &simNode{idx: i, name: fmt.Sprintf("n%d", i)}
		s.nodes = append(s.nodes, n)
	}
	for _, n := range s.nodes {
		s.start(n)
	}
	// At first every node sees every other (a formed cluster).
	for _, n := range s.nodes {
		for _, o := range s.nodes {
			if o != n {
				n.members[o.idx] = o.inc
				n.data[o.idx] = &simOrigin{inc: o.inc, pres: map[int]simPresence{}}
			}
		}
		n.core.SetMembers(s.now, s.memberNames(n))
	}
	s.logf("seed %d: %d nodes, %d topics, queue %d, counts %v", seed, k, nt, s.cfg.QueueMax, s.cfg.Events.Counts)
	return s
}

func (s *sim) start(n *simNode) {
	n.up = true
	n.inc++
	cfg := s.cfg
	cfg.Seed = s.seed + uint64(n.idx)*1000 + uint64(n.inc)
	c, err := webhook.NewCore(cfg, n.name, fmt.Sprintf("%s.%d", n.name, n.inc))
	if err != nil {
		s.t.Fatal(err)
	}
	n.core = c
	n.posting = false
	n.own = map[int]simPresence{}
	n.members = map[int]int{}
	n.data = map[int]*simOrigin{}
	n.view = map[string]tracker.Counts{}
}

func (s *sim) memberNames(n *simNode) []string {
	var out []string
	for o := range n.members {
		out = append(out, s.nodes[o].name)
	}
	slices.Sort(out)
	return out
}

func (s *sim) connected(a, b *simNode) bool { return a.up && b.up && s.side[a.idx] == s.side[b.idx] }

// refresh recomputes n's view and feeds the Core the topics whose counts changed.
func (s *sim) refresh(n *simNode) {
	type acc struct {
		viewers, conns int
		users          map[string]bool
	}
	sum := map[string]*acc{}
	ids := s.seenIDs[[2]int{n.idx, n.inc}]
	if ids == nil {
		ids = map[string]map[int]bool{}
		s.seenIDs[[2]int{n.idx, n.inc}] = ids
	}
	add := func(p simPresence) {
		if ids[p.topic] == nil {
			ids[p.topic] = map[int]bool{}
		}
		ids[p.topic][p.id] = true
		a := sum[p.topic]
		if a == nil {
			a = &acc{users: map[string]bool{}}
			sum[p.topic] = a
		}
		a.conns++
		if p.user == "" {
			a.viewers++
		} else {
			a.users[p.user] = true
		}
	}
	for _, p := range n.own {
		add(p)
	}
	for o, inc := range n.members {
		if d := n.data[o]; d != nil && d.inc == inc {
			for _, p := range d.pres {
				add(p)
			}
		}
	}
	next := map[string]tracker.Counts{}
	for topic, a := range sum {
		next[topic] = tracker.Counts{Viewers: a.viewers, Users: len(a.users), Connections: a.conns}
	}
	for _, topic := range s.topics {
		if next[topic] != n.view[topic] {
			n.core.Observe(s.now, topic, next[topic])
		}
	}
	n.view = next
}

// truth returns the counts of every topic over the live presences.
func (s *sim) truth() map[string]tracker.Counts {
	all := &simNode{view: map[string]tracker.Counts{}, own: map[int]simPresence{}}
	for _, n := range s.nodes {
		if n.up {
			for id, p := range n.own {
				all.own[id] = p
			}
		}
	}
	out := map[string]tracker.Counts{}
	for _, p := range all.own {
		c := out[p.topic]
		c.Connections++
		if p.user == "" {
			c.Viewers++
		}
		out[p.topic] = c
	}
	for topic := range out {
		users := map[string]bool{}
		for _, p := range all.own {
			if p.topic == topic && p.user != "" {
				users[p.user] = true
			}
		}
		c := out[topic]
		c.Users = len(users)
		out[topic] = c
	}
	return out
}

// local applies an operation at its origin and schedules its replication to every node.
func (s *sim) local(n *simNode, op simOp) {
	key := [2]int{n.idx, n.inc}
	s.logs[key] = append(s.logs[key], op)
	seq := len(s.logs[key])
	if op.add {
		n.own[op.p.id] = op.p
		s.life[op.p.id] = &simLife{topic: op.p.topic, add: s.now}
	} else {
		delete(n.own, op.p.id)
		s.life[op.p.id].remove = s.now
	}
	s.logf("%s %s %s #%d (%s)", n.name, map[bool]string{true: "join", false: "leave"}[op.add], op.p.topic, op.p.id, op.p.user)
	s.refresh(n)
	for _, o := range s.nodes {
		if o != n {
			o := o
			inc := n.inc
			s.at(s.dur(simLagMax), func() { s.replicate(o, n, inc, seq) })
		}
	}
}

// replicate brings to's copy of from's incarnation inc up to seq, if they can talk and to
// sees that incarnation alive (data never runs ahead of membership).
func (s *sim) replicate(to, from *simNode, inc, seq int) {
	if !s.connected(to, from) || from.inc != inc || to.members[from.idx] != inc {
		return
	}
	d := to.data[from.idx]
	if d == nil || d.inc != inc {
		d = &simOrigin{inc: inc, pres: map[int]simPresence{}}
		to.data[from.idx] = d
	}
	log := s.logs[[2]int{from.idx, inc}]
	if seq > len(log) {
		seq = len(log)
	}
	if seq <= d.seq {
		return
	}
	for _, op := range log[d.seq:seq] {
		if op.add {
			d.pres[op.p.id] = op.p
		} else {
			delete(d.pres, op.p.id)
		}
	}
	d.seq = seq
	s.refresh(to)
}

// learn schedules every node's membership view of every other to catch up with the truth,
// each after its own delay.
func (s *sim) learn() {
	for _, n := range s.nodes {
		for _, o := range s.nodes {
			if n != o {
				n, o := n, o
				s.at(simDetectMin+s.dur(simDetectMax-simDetectMin), func() { s.membership(n, o) })
			}
		}
	}
}

func (s *sim) membership(n, o *simNode) {
	if !n.up {
		return
	}
	inc, seen := n.members[o.idx]
	switch {
	case s.connected(n, o) && (!seen || inc != o.inc):
		n.members[o.idx] = o.inc
		if seen {
			n.core.MemberRestarted(s.now, o.name) // the same name, a new incarnation
		}
		if d := n.data[o.idx]; d == nil || d.inc != o.inc {
			n.data[o.idx] = &simOrigin{inc: o.inc, pres: map[int]simPresence{}}
		}
		s.logf("%s sees %s.%d", n.name, o.name, o.inc)
	case !s.connected(n, o) && seen:
		delete(n.members, o.idx)
		s.logf("%s loses %s", n.name, o.name)
	default:
		return
	}
	n.core.SetMembers(s.now, s.memberNames(n))
	s.refresh(n)
	// A member that appears is caught up by anti-entropy soon after.
	s.at(s.dur(simLagMax), func() { s.replicate(n, o, o.inc, len(s.logs[[2]int{o.idx, o.inc}])) })
}

// antiEntropy catches a random half of the pairs that are behind up; it reschedules itself
// while anything is behind or the schedule is still running.
func (s *sim) antiEntropy(running *bool) {
	behind := false
	for _, n := range s.nodes {
		for _, o := range s.nodes {
			if n == o || !s.connected(n, o) {
				continue
			}
			top := len(s.logs[[2]int{o.idx, o.inc}])
			d := n.data[o.idx]
			if n.members[o.idx] != o.inc || d == nil || d.inc != o.inc || d.seq < top {
				behind = true
				if s.rng.IntN(2) == 0 {
					s.replicate(n, o, o.inc, top)
				}
			}
		}
	}
	if behind || *running {
		s.at(simAEEvery, func() { s.antiEntropy(running) })
	}
}

// pump lets every live Core fire its deadlines and send a due batch.
func (s *sim) pump() {
	for _, n := range s.nodes {
		if !n.up {
			continue
		}
		n.core.Tick(s.now)
		if n.posting {
			continue
		}
		b := n.core.Next(s.now)
		if b == nil {
			continue
		}
		n.posting = true
		s.post(n, n.inc, b)
	}
}

// post models one POST: the receiver processes it after a latency unless it answers 500; a
// timeout may come after the receiver processed it (the answer was lost).
func (s *sim) post(n *simNode, inc int, b *webhook.Batch) {
	var p webhook.Payload
	if err := json.Unmarshal(b.Body, &p); err != nil {
		s.t.Fatal(err)
	}
	lat := time.Millisecond + s.dur(20*time.Millisecond)
	done := func(ok bool) {
		if n.inc != inc || !n.up {
			return // the node crashed meanwhile: its Core is gone
		}
		n.posting = false
		n.core.Done(s.now, ok)
	}
	switch s.rcvMode {
	case rcvHealthy:
		s.at(lat, func() { s.arrive(n, inc, p) })
		s.at(2*lat, func() { done(true) })
	case rcv500:
		s.at(2*lat, func() { done(false) })
	case rcvTimeout:
		if s.rng.IntN(2) == 0 {
			s.at(lat, func() { s.arrive(n, inc, p) })
		}
		s.at(s.cfg.Timeout, func() { done(false) })
	}
}

func (s *sim) arrive(n *simNode, inc int, p webhook.Payload) {
	from := n.name
	s.arrivals = append(s.arrivals, simArrival{at: s.now, from: from, inc: inc, timeMS: p.TimeMS, events: p.Events})
	if s.trace {
		var parts []string
		for _, e := range p.Events {
			parts = append(parts, fmt.Sprintf("%s %s %s %d/%d", e.ID, strings.TrimPrefix(e.Name, "topic_"), e.Topic, e.Viewers, e.Users))
		}
		s.logf("receiver <- %s: %s", from, strings.Join(parts, ", "))
	}
}

// run processes events until the heap is empty and no Core has a deadline, or until end when
// end is not zero.
func (s *sim) run(end time.Time) {
	for {
		s.steps++
		if s.steps > 2_000_000 {
			s.t.Fatalf("seed %d: the simulation did not settle", s.seed)
		}
		s.pump()
		next := time.Time{}
		if len(s.events) > 0 {
			next = s.events[0].at
		}
		for _, n := range s.nodes {
			if !n.up {
				continue
			}
			if d := n.core.Deadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
		if !end.IsZero() && end.Before(s.now) {
			s.t.Fatalf("seed %d: run to %v, before now %v", s.seed, end, s.now)
		}
		if next.IsZero() || (!end.IsZero() && next.After(end)) {
			if !end.IsZero() {
				s.now = end
			}
			return
		}
		if next.After(s.now) {
			s.now = next
		} else if len(s.events) == 0 || s.events[0].at.After(s.now) {
			// A Core says it has work now but produced nothing: step a millisecond so the
			// loop cannot spin; a real livelock still ends at the step bound above.
			s.now = s.now.Add(time.Millisecond)
		}
		for len(s.events) > 0 && !s.events[0].at.After(s.now) {
			e := heap.Pop(&s.events).(simEvent)
			e.fn()
		}
	}
}

// chaos runs one random action.
func (s *sim) chaos() {
	up := func() []*simNode {
		var out []*simNode
		for _, n := range s.nodes {
			if n.up {
				out = append(out, n)
			}
		}
		return out
	}
	live := up()
	r := s.rng.IntN(100)
	if s.calm && r >= 80 && r < 93 {
		r = 93 // no crash, restart or partition: the receiver changes its mood instead
	}
	switch {
	case r < 40: // join
		n := live[s.rng.IntN(len(live))]
		s.nextID++
		s.local(n, simOp{add: true, p: simPresence{id: s.nextID, topic: s.topics[s.rng.IntN(len(s.topics))], user: s.users[s.rng.IntN(len(s.users))]}})
	case r < 70: // leave
		n := live[s.rng.IntN(len(live))]
		if p, ok := s.anyPresence(n); ok {
			s.local(n, simOp{add: false, p: p})
		}
	case r < 80: // reload: leave, and join again inside the grace, maybe on another node
		n := live[s.rng.IntN(len(live))]
		if p, ok := s.anyPresence(n); ok {
			s.local(n, simOp{add: false, p: p})
			m := live[s.rng.IntN(len(live))]
			s.at(s.dur(s.cfg.VacateGrace/2), func() {
				if m.up {
					s.nextID++
					s.local(m, simOp{add: true, p: simPresence{id: s.nextID, topic: p.topic, user: p.user}})
				}
			})
		}
	case r < 85: // crash one node (its presences die with it)
		if len(live) > 1 {
			n := live[s.rng.IntN(len(live))]
			s.crash(n)
			s.logf("%s crashes", n.name)
			s.learn()
		}
	case r < 89: // restart a down node
		for _, n := range s.nodes {
			if !n.up {
				s.start(n)
				s.logf("%s restarts as %s.%d", n.name, n.name, n.inc)
				s.learn()
				break
			}
		}
	case r < 93: // partition in two, or heal
		if s.partitioned() {
			if s.now.Sub(s.partAt) < simDetectMax {
				return // every node notices a partition before it heals (see simDetectMax)
			}
			clear(s.side)
			s.logf("heal")
		} else {
			for i := range s.side {
				s.side[i] = s.rng.IntN(2)
			}
			s.partAt = s.now
			s.logf("partition %v", s.side)
		}
		s.learn()
	default: // the receiver changes its mood
		s.rcvMode = s.rng.IntN(3)
		s.logf("receiver mode %d", s.rcvMode)
	}
}

func (s *sim) crash(n *simNode) {
	n.up = false
	for id := range n.own {
		s.life[id].remove = s.now
	}
	s.crashes++
	unseen := map[int]bool{}
	for _, o := range s.nodes {
		if o != n && o.up && o.members[n.idx] != n.inc {
			unseen[o.idx] = true
		}
	}
	s.unseenDeath[[2]int{n.idx, n.inc}] = unseen
}

func (s *sim) partitioned() bool {
	return slices.ContainsFunc(s.side, func(x int) bool { return x != 0 })
}

func (s *sim) anyPresence(n *simNode) (simPresence, bool) {
	if len(n.own) == 0 {
		return simPresence{}, false
	}
	ids := make([]int, 0, len(n.own))
	for id := range n.own {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return n.own[ids[s.rng.IntN(len(ids))]], true
}

// schedule runs steps random actions, then quiesces: the partition heals, the receiver
// recovers, maybe the down nodes restart, and the simulation runs until nothing is left to do.
func (s *sim) schedule(steps int) {
	running := true
	s.at(simAEEvery, func() { s.antiEntropy(&running) })
	for range steps {
		s.run(s.now.Add(s.dur(200 * time.Millisecond)))
		s.chaos()
	}
	running = false
	if end := s.partAt.Add(simDetectMax); s.partitioned() && end.After(s.now) {
		s.run(end)
	}
	clear(s.side)
	s.rcvMode = rcvHealthy
	if s.rng.IntN(2) == 0 {
		for _, n := range s.nodes {
			if !n.up {
				s.start(n)
			}
		}
	}
	s.logf("quiesce")
	s.learn()
	s.run(time.Time{})
}

// check asserts the promise: for every topic the last event the receiver got matches the truth
// (and the last counts equal the true counts), and an id is never reused except by a retry of
// the same batch.
func (s *sim) check() []string {
	var errs []string
	truth := s.truth()
	type seenID struct {
		ev     webhook.Event
		timeMS int64
		from   string
	}
	ids := map[string]seenID{}
	lastOcc := map[string]webhook.Event{}
	lastFrom := map[string][2]int{}
	lastCounts := map[string]webhook.Event{}
	lastCountsFrom := map[string][2]int{}
	for _, a := range s.arrivals {
		for _, e := range a.events {
			if prev, ok := ids[e.ID]; ok && (prev.ev != e || prev.timeMS != a.timeMS || prev.from != a.from) {
				errs = append(errs, fmt.Sprintf("id %s reused: %+v then %+v", e.ID, prev.ev, e))
			}
			ids[e.ID] = seenID{ev: e, timeMS: a.timeMS, from: a.from}
			switch e.Name {
			case webhook.NameOccupied, webhook.NameVacated:
				lastOcc[e.Topic] = e
				lastFrom[e.Topic] = [2]int{slices.IndexFunc(s.nodes, func(n *simNode) bool { return n.name == a.from }), a.inc}
			case webhook.NameCounts:
				lastCounts[e.Topic] = e
				lastCountsFrom[e.Topic] = [2]int{slices.IndexFunc(s.nodes, func(n *simNode) bool { return n.name == a.from }), a.inc}
			}
		}
	}
	var members []string
	for _, n := range s.nodes {
		if n.up {
			members = append(members, n.name)
		}
	}
	for _, topic := range s.topics {
		want := truth[topic]
		last, got := lastOcc[topic]
		// The documented limits, both about a sender that died: its view had presences the
		// owner after quiesce never saw (they, or the crash of the node that held them,
		// happened before they replicated there), or it died while partitioned away from
		// that owner (nothing tells the owner its last events need superseding).
		owner := s.nodes[slices.IndexFunc(s.nodes, func(n *simNode) bool { return n.name == webhook.Owner(topic, members) })]
		isDead := func(from [2]int) bool { return s.nodes[from[0]].inc != from[1] || !s.nodes[from[0]].up }
		from := lastFrom[topic]
		dead := got && isDead(from)
		if dead && s.unseenDeath[from][owner.idx] {
			continue
		}
		if want.Connections > 0 {
			if s.cfg.Events.Occupied && (!got || last.Name != webhook.NameOccupied) {
				errs = append(errs, fmt.Sprintf("%s: occupied (%d/%d) but the last event is %q", topic, want.Viewers, want.Users, last.Name))
			}
			cf := lastCountsFrom[topic]
			if c, ok := lastCounts[topic]; s.cfg.Events.Counts && (c.Viewers != want.Viewers || c.Users != want.Users) &&
				!(ok && isDead(cf) && s.unseenDeath[cf][owner.idx]) {
				errs = append(errs, fmt.Sprintf("%s: counts %d/%d but the last topic_counts says %d/%d", topic, want.Viewers, want.Users, c.Viewers, c.Users))
			}
			continue
		}
		if got && last.Name == webhook.NameOccupied {
			if dead && s.sawUnseen(from, [2]int{owner.idx, owner.inc}, topic) {
				continue
			}
			errs = append(errs, fmt.Sprintf("%s: empty but the last event is topic_occupied %s (owner %s, sender dead %v)", topic, last.ID, owner.name, dead))
		}
	}
	if s.calm {
		errs = append(errs, s.checkTransitions()...)
	}
	return errs
}

// checkTransitions asserts that no transition is lost in a calm schedule (one owner per topic
// all along) where nothing was dropped: every spell of the truth that the owner must have
// seen as its own occupied spell got a topic_occupied, and every such spell that ended a
// topic_vacated. A spell is a run of presences whose gaps are shorter than the grace plus
// twice the replication lag (the owner may see a shorter gap as no gap at all), holding a
// presence that lived longer than the lag (a shorter one may never reach the owner's view).
func (s *sim) checkTransitions() []string {
	for _, n := range s.nodes {
		if st := n.core.Stats(); st.DroppedQueue > 0 || st.DroppedRetries > 0 {
			return nil // a drop coalesces transitions, by design
		}
	}
	var errs []string
	byTopic := map[string][]*simLife{}
	for _, l := range s.life {
		byTopic[l.topic] = append(byTopic[l.topic], l)
	}
	merge := s.cfg.VacateGrace + 2*simLagMax
	for _, topic := range s.topics {
		ls := byTopic[topic]
		slices.SortFunc(ls, func(a, b *simLife) int { return a.add.Compare(b.add) })
		spells, ended := 0, 0
		var end time.Time // of the current run; zero while one of its presences lives
		inRun, open, significant := false, false, false
		closeRun := func() {
			if inRun && significant {
				spells++
				if !open {
					ended++
				}
			}
		}
		for _, l := range ls {
			if !inRun || (!open && l.add.Sub(end) >= merge) {
				closeRun()
				inRun, open, significant, end = true, false, false, time.Time{}
			}
			if l.remove.IsZero() {
				open, significant = true, true
			} else {
				if l.remove.After(end) {
					end = l.remove
				}
				significant = significant || l.remove.Sub(l.add) > simLagMax
			}
		}
		closeRun()
		var occ, vac int
		prev := ""
		for _, a := range s.arrivals {
			for _, e := range a.events {
				if e.Topic != topic || e.Name == webhook.NameCounts || e.Name == prev {
					continue
				}
				prev = e.Name
				if e.Name == webhook.NameOccupied {
					occ++
				} else {
					vac++
				}
			}
		}
		if occ < spells || vac < ended {
			errs = append(errs, fmt.Sprintf("%s: %d spells (%d ended), but %d occupied and %d vacated", topic, spells, ended, occ, vac))
		}
	}
	return errs
}

// sawUnseen reports whether incarnation a's view had a presence of topic that b's never had.
func (s *sim) sawUnseen(a, b [2]int, topic string) bool {
	for id := range s.seenIDs[a][topic] {
		if !s.seenIDs[b][topic][id] {
			return true
		}
	}
	return false
}

func runSim(t *testing.T, seed uint64, trace bool) []string {
	s := newSim(t, seed, trace)
	s.schedule(40 + s.rng.IntN(120))
	return s.check()
}

// TestSimulator runs -webhook.sims random schedules (seeds 1..N); a failure prints its seed,
// and -webhook.seed=N replays that one with a trace (go test ./webhook/ -run TestSimulator -v -webhook.seed=N).
func TestSimulator(t *testing.T) {
	if *simSeed != 0 {
		if errs := runSim(t, *simSeed, true); len(errs) > 0 {
			t.Fatalf("seed %d:\n%s", *simSeed, strings.Join(errs, "\n"))
		}
		return
	}
	failed := 0
	for seed := uint64(1); seed <= uint64(*simRuns); seed++ {
		if errs := runSim(t, seed, false); len(errs) > 0 {
			failed++
			if failed <= 5 {
				t.Errorf("seed %d (replay: go test ./webhook/ -run TestSimulator -v -webhook.seed=%d):\n%s", seed, seed, strings.Join(errs, "\n"))
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d schedules failed", failed, *simRuns)
	}
}

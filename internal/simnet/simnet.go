// Package simnet is a deterministic, seeded network simulator for
// trackers, used by tests only. It wires N tracker.Tracker engines through
// a virtual network with drop, duplication, reordering, delay, partitions,
// crashes, restarts with a new epoch and graceful leaves, under a virtual
// clock, and computes the ground truth every node must converge to.
//
// Every message crosses the real wire codec (crdt.Marshal/Unmarshal). A
// membership oracle plays the part of memberlist: DetectAfter after a node
// crashes or becomes unreachable, its peers are told it is down; after a
// heal or a restart they are told it is up.
//
// The same seed always produces the same run: simnet has no goroutines,
// reads no wall clock and iterates maps only in sorted order.
//
// Manual (manual.go) is the same network driven by hand, for scenario tests
// of one mechanism: the caller's trackers, membership told explicitly, FIFO
// delivery without loss or delay, one-way cuts and time moved only by Step.
package simnet

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// Config sets up a simulation.
type Config struct {
	// Seed makes the run reproducible.
	Seed uint64
	// Nodes is the number of nodes at the start.
	Nodes int
	// Tracker is the base tracker configuration; Name and Epoch are set
	// per node.
	Tracker tracker.Config
	// TickEvery is how often every live node's Tick runs (virtual time).
	TickEvery time.Duration
	// MaxDelay is the largest one-way message delay; delays are uniform in
	// [0, MaxDelay], which reorders messages.
	MaxDelay time.Duration
	// DetectAfter is how long the membership oracle takes to report a
	// crash, a cut or a recovery.
	DetectAfter time.Duration
	// Fanout is how many peers a ToSome message goes to.
	Fanout int
}

// Node is one simulated node: the current incarnation of a name.
type Node struct {
	Name  string
	T     *tracker.Tracker
	alive bool
	epoch uint64
	// truth: owner -> topic -> user, the presences tracked on this node.
	truth   map[tracker.Owner]map[string]string
	goodbye bool // left gracefully
}

type event struct {
	at   time.Time
	seq  uint64
	kind int // 0 message, 1 reconcile
	from crdt.Replica
	to   string
	// toEpoch, when not 0, addresses one incarnation of to (manual mode's
	// ToOne): a message for an incarnation that is gone is lost.
	toEpoch uint64
	buf     []byte
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// Net is a simulated cluster.
type Net struct {
	cfg      Config
	rng      *rand.Rand
	now      time.Time
	nextTick time.Time
	seq      uint64
	queue    eventQueue
	nodes    []*Node
	group    map[string]int // partition group by name
	loss     float64
	dup      float64
	// view[a][b] is the replica a's membership currently reports for b,
	// with up or down.
	view map[string]map[string]viewEntry
	// Delivered counts messages handed to a tracker.
	Delivered int
	// Bytes counts encoded bytes handed to the network.
	Bytes int
	// Paranoid makes every event verify every live tracker's counters
	// (slow); the first failure is kept in Failure.
	Paranoid bool
	Failure  error

	// Sent counts outbound messages routed, by Go type ("*crdt.Delta").
	Sent map[string]int
	// manual: see Manual. cut[[from, to]] drops what from sends to.
	manual bool
	cut    map[[2]string]bool
}

func (n *Net) paranoid(what string) {
	if !n.Paranoid || n.Failure != nil {
		return
	}
	for _, nd := range n.nodes {
		if nd.alive {
			if err := nd.T.Verify(); err != nil {
				n.Failure = fmt.Errorf("after %s at %v: %s: %w", what, n.now, nd.Name, err)
				return
			}
		}
	}
}

type viewEntry struct {
	r  crdt.Replica
	up bool
}

// New builds a network with cfg.Nodes live nodes that all see each other up.
func New(cfg Config) (*Net, error) {
	if cfg.TickEvery <= 0 {
		cfg.TickEvery = 5 * time.Millisecond
	}
	if cfg.Fanout <= 0 {
		cfg.Fanout = 2
	}
	n := &Net{
		cfg:   cfg,
		rng:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		now:   time.Unix(1_000_000, 0),
		group: make(map[string]int),
		view:  make(map[string]map[string]viewEntry),
		Sent:  make(map[string]int),
	}
	n.nextTick = n.now
	for range cfg.Nodes {
		if _, err := n.Add(); err != nil {
			return nil, err
		}
	}
	n.reconcile()
	return n, nil
}

// Now returns the virtual time.
func (n *Net) Now() time.Time { return n.now }

// Nodes returns every node slot (dead ones included).
func (n *Net) Nodes() []*Node { return n.nodes }

// Node returns node i.
func (n *Net) Node(i int) *Node { return n.nodes[i] }

// Alive reports whether node i is running.
func (nd *Node) Alive() bool { return nd.alive }

func (n *Net) start(name string, epoch uint64) (*Node, error) {
	c := n.cfg.Tracker
	c.Name, c.Epoch = name, epoch
	t, err := tracker.New(c)
	if err != nil {
		return nil, err
	}
	return &Node{Name: name, T: t, alive: true, epoch: epoch, truth: make(map[tracker.Owner]map[string]string)}, nil
}

// Add starts a new node with a fresh name and returns its index. Peers
// learn of it after DetectAfter.
func (n *Net) Add() (int, error) {
	nd, err := n.start(fmt.Sprintf("n%02d", len(n.nodes)), 1)
	if err != nil {
		return 0, err
	}
	n.nodes = append(n.nodes, nd)
	n.view[nd.Name] = make(map[string]viewEntry)
	n.scheduleReconcile()
	return len(n.nodes) - 1, nil
}

// Kill crashes node i: no goodbye; peers see it down after DetectAfter.
func (n *Net) Kill(i int) {
	nd := n.nodes[i]
	nd.alive = false
	nd.truth = map[tracker.Owner]map[string]string{}
	n.scheduleReconcile()
}

// Restart brings node i back under the same name with a new epoch and no
// presences. Messages still in flight to the old incarnation reach the new
// one, as they would on a real network.
func (n *Net) Restart(i int) error {
	return n.RestartWithEpoch(i, n.nodes[i].epoch+1)
}

// RestartWithEpoch is Restart with the given epoch. A lower epoch than the
// previous incarnation's models a restart after the clock stepped back: it
// must still be the newest incarnation, because membership says so.
func (n *Net) RestartWithEpoch(i int, epoch uint64) error {
	old := n.nodes[i]
	nd, err := n.start(old.Name, epoch)
	if err != nil {
		return err
	}
	n.nodes[i] = nd
	n.view[nd.Name] = make(map[string]viewEntry)
	n.scheduleReconcile()
	return nil
}

// Impostor plays a second process with node i's name and the given epoch,
// which membership refused (it never appears in any view): it tracks one
// presence in topic and sends its delta, a snapshot, a digest and a goodbye
// straight to every live node, as memberlist delivers user messages from
// non-members. None of it may ever change a count.
func (n *Net) Impostor(i int, epoch uint64, topic string) error {
	c := n.cfg.Tracker
	c.Name, c.Epoch = n.nodes[i].Name, epoch
	t, err := tracker.New(c)
	if err != nil {
		return err
	}
	if _, err := t.Track(1, topic, "", nil); err != nil {
		return err
	}
	fake := &Node{Name: c.Name, T: t}
	msgs := []crdt.Message{
		&crdt.Snapshot{Owner: t.Self(), Seq: 1 << 20},
		&crdt.Digest{Items: []crdt.DigestItem{{Owner: t.Self(), Seq: 1 << 20}}},
		&crdt.Goodbye{Replica: t.Self()},
	}
	for _, o := range t.Tick(n.now) {
		msgs = append(msgs, o.Msg)
	}
	for _, m := range msgs {
		buf, err := crdt.Marshal(t.Self(), m)
		if err != nil {
			return err
		}
		for _, nd := range n.nodes {
			if nd.alive && nd.Name != c.Name {
				n.send(fake, nd.Name, 0, buf)
			}
		}
	}
	return nil
}

// Leave stops node i gracefully: its goodbye goes to every peer it sees up
// (subject to loss like any message), then it is gone.
func (n *Net) Leave(i int) {
	nd := n.nodes[i]
	if !nd.alive {
		return
	}
	n.route(nd, nd.T.Leave())
	nd.alive = false
	nd.goodbye = true
	nd.truth = map[tracker.Owner]map[string]string{}
	n.scheduleReconcile()
}

// Partition splits the live nodes into the given groups of indexes; nodes
// not listed form one more group.
func (n *Net) Partition(groups ...[]int) {
	clear(n.group)
	for g, idx := range groups {
		for _, i := range idx {
			n.group[n.nodes[i].Name] = g + 1
		}
	}
	n.scheduleReconcile()
}

// Heal joins every partition.
func (n *Net) Heal() {
	clear(n.group)
	n.scheduleReconcile()
}

// SetLoss sets the probability that a message is dropped and that it is
// delivered twice.
func (n *Net) SetLoss(drop, dup float64) { n.loss, n.dup = drop, dup }

func (n *Net) connected(a, b string) bool { return n.group[a] == n.group[b] }

func (n *Net) byName(name string) *Node {
	for _, nd := range n.nodes {
		if nd.Name == name {
			return nd
		}
	}
	return nil
}

// Track tracks a new connection on node i in topic, as user ("" for
// anonymous), and returns its owner id.
func (n *Net) Track(i int, topic, user string) (tracker.Owner, error) {
	nd := n.nodes[i]
	o := nd.T.NewOwner()
	if _, err := nd.T.Track(o, topic, user, nil); err != nil {
		return 0, err
	}
	nd.truth[o] = map[string]string{topic: user}
	return o, nil
}

// TrackMore adds a topic to an existing owner of node i.
func (n *Net) TrackMore(i int, o tracker.Owner, topic, user string) error {
	nd := n.nodes[i]
	if _, err := nd.T.Track(o, topic, user, nil); err != nil {
		return err
	}
	nd.truth[o][topic] = user
	return nil
}

// Untrack removes owner o's presence in topic on node i.
func (n *Net) Untrack(i int, o tracker.Owner, topic string) error {
	nd := n.nodes[i]
	if err := nd.T.Untrack(o, topic); err != nil {
		return err
	}
	delete(nd.truth[o], topic)
	if len(nd.truth[o]) == 0 {
		delete(nd.truth, o)
	}
	return nil
}

// Update re-tracks owner o's presence in topic with new meta.
func (n *Net) Update(i int, o tracker.Owner, topic string, meta []byte) error {
	_, err := n.nodes[i].T.Update(o, topic, meta)
	return err
}

// Close removes every presence of owner o on node i.
func (n *Net) Close(i int, o tracker.Owner) {
	n.nodes[i].T.UntrackOwner(o)
	delete(n.nodes[i].truth, o)
}

// Owners returns node i's owners, sorted.
func (nd *Node) Owners() []tracker.Owner {
	var out []tracker.Owner
	for o := range nd.truth {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}

// Topics returns the topics of owner o, sorted.
func (nd *Node) Topics(o tracker.Owner) []string {
	var out []string
	for t := range nd.truth[o] {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

func (n *Net) push(e *event) {
	if n.manual {
		e.at = time.Time{} // FIFO, whatever the clock did
	}
	n.seq++
	e.seq = n.seq
	heap.Push(&n.queue, e)
}

func (n *Net) scheduleReconcile() {
	n.push(&event{at: n.now.Add(n.cfg.DetectAfter), kind: 1})
}

// reconcile plays memberlist: every live node's view of every other node
// is brought in line with liveness and connectivity.
func (n *Net) reconcile() {
	for _, a := range n.nodes {
		if !a.alive {
			continue
		}
		for _, b := range n.nodes {
			if b == a {
				continue
			}
			cur, known := n.view[a.Name][b.Name]
			me := crdt.Replica{Name: b.Name, Epoch: b.epoch}
			wantUp := b.alive && n.connected(a.Name, b.Name)
			switch {
			case b.goodbye && known:
				// memberlist reports the graceful leave of the name, with
				// whatever incarnation a last heard of.
				a.T.ReplicaLeft(cur.r)
				delete(n.view[a.Name], b.Name)
			case b.goodbye:
			case wantUp && (!known || cur.r != me || !cur.up):
				n.view[a.Name][b.Name] = viewEntry{r: me, up: true}
				n.route(a, a.T.ReplicaUp(me))
			case !wantUp && known && cur.up:
				n.view[a.Name][b.Name] = viewEntry{r: cur.r, up: false}
				a.T.ReplicaDown(cur.r)
			}
		}
	}
}

// route sends a tracker's outbound messages from node nd.
func (n *Net) route(nd *Node, outs []tracker.Outbound) {
	for _, o := range outs {
		buf, err := crdt.Marshal(nd.T.Self(), o.Msg)
		if err != nil {
			panic(fmt.Sprintf("simnet: marshal: %v", err)) // our own messages always encode
		}
		n.Sent[fmt.Sprintf("%T", o.Msg)]++
		if n.manual {
			n.routeManual(nd, o, buf)
			continue
		}
		peers := n.upPeers(nd)
		switch o.Target {
		case tracker.ToOne:
			peers = []string{o.To.Name}
		case tracker.ToSome:
			n.rng.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
			peers = peers[:min(len(peers), n.cfg.Fanout)]
		}
		for _, p := range peers {
			n.send(nd, p, 0, buf)
		}
	}
}

func (n *Net) upPeers(nd *Node) []string {
	var out []string
	for name, v := range n.view[nd.Name] {
		if v.up {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (n *Net) send(from *Node, to string, toEpoch uint64, buf []byte) {
	copies := 1
	if n.rng.Float64() < n.loss {
		copies = 0
	} else if n.rng.Float64() < n.dup {
		copies = 2
	}
	for range copies {
		d := time.Duration(0)
		if n.cfg.MaxDelay > 0 {
			d = time.Duration(n.rng.Int64N(int64(n.cfg.MaxDelay) + 1))
		}
		n.Bytes += len(buf)
		n.push(&event{at: n.now.Add(d), from: from.T.Self(), to: to, toEpoch: toEpoch, buf: buf})
	}
}

func (n *Net) deliver(e *event) {
	nd := n.byName(e.to)
	if nd == nil || !nd.alive || !n.connected(e.from.Name, e.to) || n.cut[[2]string{e.from.Name, e.to}] {
		return
	}
	if e.toEpoch != 0 && nd.T.Self() != (crdt.Replica{Name: e.to, Epoch: e.toEpoch}) {
		return // addressed to an incarnation that is gone
	}
	from, m, err := crdt.Unmarshal(e.buf)
	if err != nil {
		panic(fmt.Sprintf("simnet: unmarshal: %v", err))
	}
	if n.manual {
		checkNotOwn(from, nd.T.Self(), m)
	}
	n.Delivered++
	n.route(nd, nd.T.Handle(from, m))
}

// RunFor advances virtual time by d, delivering messages, ticking every
// live node every TickEvery and running membership updates.
func (n *Net) RunFor(d time.Duration) {
	end := n.now.Add(d)
	for {
		next := n.nextTick
		if len(n.queue) > 0 && n.queue[0].at.Before(next) {
			next = n.queue[0].at
		}
		if next.After(end) {
			n.now = end
			return
		}
		n.now = next
		if len(n.queue) > 0 && !n.queue[0].at.After(n.now) && n.queue[0].at.Before(n.nextTick) {
			e := heap.Pop(&n.queue).(*event)
			if e.kind == 1 {
				n.reconcile()
				n.paranoid("membership")
			} else {
				n.deliver(e)
				if n.Paranoid && n.Failure == nil {
					_, m, _ := crdt.Unmarshal(e.buf)
					n.paranoid(fmt.Sprintf("delivery %s->%s %T %+v", e.from, e.to, m, m))
				}
			}
			continue
		}
		for _, nd := range n.nodes {
			if nd.alive {
				n.route(nd, nd.T.Tick(n.now))
			}
		}
		n.paranoid("tick")
		n.nextTick = n.now.Add(n.cfg.TickEvery)
	}
}

// Truth returns the counts every node must show for topic once the network
// is healed and quiet: the presences tracked on live nodes.
func (n *Net) Truth(topic string) tracker.Counts {
	var c tracker.Counts
	users := map[string]bool{}
	for _, nd := range n.nodes {
		if !nd.alive {
			continue
		}
		for _, topics := range nd.truth {
			u, ok := topics[topic]
			if !ok {
				continue
			}
			c.Connections++
			if u == "" {
				c.Viewers++
			} else {
				users[u] = true
			}
		}
	}
	c.Users = len(users)
	return c
}

// TruthList returns "node|owner|user" for every live presence in topic,
// sorted.
func (n *Net) TruthList(topic string) []string {
	var out []string
	for _, nd := range n.nodes {
		if !nd.alive {
			continue
		}
		for o, topics := range nd.truth {
			if u, ok := topics[topic]; ok {
				out = append(out, fmt.Sprintf("%s/%d|%d|%s", nd.Name, nd.epoch, o, u))
			}
		}
	}
	slices.Sort(out)
	return out
}

// List returns node nd's view of topic in the same form as TruthList.
func List(nd *Node, topic string) []string {
	var out []string
	for _, p := range nd.T.List(topic) {
		out = append(out, fmt.Sprintf("%s|%d|%s", p.Node, p.Owner, p.User))
	}
	slices.Sort(out)
	return out
}

// Check compares every live node's counts and lists of the given topics
// with the ground truth, and every topic a node shows must be among them.
func (n *Net) Check(topics []string) error {
	for _, nd := range n.nodes {
		if !nd.alive {
			continue
		}
		if err := nd.T.Verify(); err != nil {
			return fmt.Errorf("%s: %w", nd.Name, err)
		}
		for _, tp := range topics {
			if got, want := nd.T.Count(tp), n.Truth(tp); got != want {
				return fmt.Errorf("%s: Count(%q) = %+v, want %+v", nd.Name, tp, got, want)
			}
			if got, want := List(nd, tp), n.TruthList(tp); !slices.Equal(got, want) {
				return fmt.Errorf("%s: List(%q) = %v, want %v", nd.Name, tp, got, want)
			}
		}
		for _, tp := range nd.T.Topics() {
			if !slices.Contains(topics, tp) {
				return fmt.Errorf("%s: shows unknown topic %q (%+v)", nd.Name, tp, nd.T.Count(tp))
			}
		}
	}
	return nil
}

// Rand exposes the simulation's seeded random source for schedule
// generators, so a whole run depends on the seed alone.
func (n *Net) Rand() *rand.Rand { return n.rng }

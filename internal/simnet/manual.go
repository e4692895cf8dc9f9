package simnet

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// Manual returns a network driven by hand, for scenario tests of one mechanism (the tracker's
// replication, membership and incarnation tests): every step is the test's.
//
//   - The nodes are the caller's trackers (Put), in name order; Put with a name already there
//     replaces that node (a new incarnation).
//   - There is no membership oracle: Up tells one tracker that another is up, MeshUp tells
//     everyone of everyone, anything else the test calls on the trackers itself.
//   - ToAll and ToSome go to every other node put on the network, whatever the sender was
//     told (the receiver decides what it accepts); ToOne goes to the addressed incarnation
//     only. Every message crosses the wire codec, in FIFO order, without loss, duplication or
//     delay. Cut drops one direction of a link.
//   - Time moves only by Step (and SetNow): each Step ticks every node once, in name order,
//     then delivers everything, replies included.
//
// A delivered message that gives a node its own delta or snapshot panics: a tracker must never
// send a peer that peer's own entries.
func Manual(now time.Time, trs ...*tracker.Tracker) *Net {
	n := &Net{
		rng:    rand.New(rand.NewPCG(0, 0)), // no loss, no delay: only for send's draws
		now:    now,
		group:  make(map[string]int),
		view:   make(map[string]map[string]viewEntry),
		Sent:   make(map[string]int),
		manual: true,
		cut:    make(map[[2]string]bool),
	}
	for _, t := range trs {
		n.Put(t)
	}
	return n
}

// Put adds t as the node with its name, or replaces the node with that name.
func (n *Net) Put(t *tracker.Tracker) {
	nd := &Node{Name: t.Self().Name, T: t, alive: true, epoch: t.Self().Epoch}
	if i := slices.IndexFunc(n.nodes, func(x *Node) bool { return x.Name == nd.Name }); i >= 0 {
		n.nodes[i] = nd
		return
	}
	n.nodes = append(n.nodes, nd)
	slices.SortFunc(n.nodes, func(a, b *Node) int { return strings.Compare(a.Name, b.Name) })
}

// Tracker returns the tracker of the node with that name, or nil.
func (n *Net) Tracker(name string) *tracker.Tracker {
	if nd := n.byName(name); nd != nil {
		return nd.T
	}
	return nil
}

// Send routes outs as sent by from, which need not be on the network (an impostor); nothing is
// delivered until Deliver or Step.
func (n *Net) Send(from *tracker.Tracker, outs []tracker.Outbound) {
	n.route(&Node{Name: from.Self().Name, T: from}, outs)
}

// Inject queues m from one replica to one incarnation as if it came off the wire, whoever sent
// it.
func (n *Net) Inject(from, to crdt.Replica, m crdt.Message) {
	buf, err := crdt.Marshal(from, m)
	if err != nil {
		panic(fmt.Sprintf("simnet: marshal: %v", err))
	}
	n.push(&event{at: n.now, from: from, to: to.Name, toEpoch: to.Epoch, buf: buf})
}

// Cut drops (cut) or restores (!cut) what from sends to to, checked when a message is
// delivered.
func (n *Net) Cut(from, to string, cut bool) {
	if cut {
		n.cut[[2]string{from, to}] = true
	} else {
		delete(n.cut, [2]string{from, to})
	}
}

// Up tells a that b is up and delivers the consequences.
func (n *Net) Up(a, b *tracker.Tracker) {
	n.Send(a, a.ReplicaUp(b.Self()))
	n.Deliver()
}

// MeshUp tells every node that every other node is up.
func (n *Net) MeshUp() {
	for _, a := range slices.Clone(n.nodes) {
		for _, b := range slices.Clone(n.nodes) {
			if a != b {
				n.Up(a.T, b.T)
			}
		}
	}
}

// SetNow sets the virtual clock.
func (n *Net) SetNow(t time.Time) { n.now = t }

// Step advances the clock by d, ticks every node once and delivers everything.
func (n *Net) Step(d time.Duration) {
	n.now = n.now.Add(d)
	for _, nd := range slices.Clone(n.nodes) {
		n.route(nd, nd.T.Tick(n.now))
	}
	n.Deliver()
}

// maxDeliveries bounds one Deliver: a run that never quiets down is a bug.
const maxDeliveries = 1_000_000

// Deliver hands every queued message, and every reply, to its receiver.
func (n *Net) Deliver() {
	for k := 0; len(n.queue) > 0; k++ {
		if k >= maxDeliveries {
			panic("simnet: messages never stop")
		}
		n.deliver(heap.Pop(&n.queue).(*event))
	}
}

// routeManual resolves a target in manual mode (see Manual).
func (n *Net) routeManual(from *Node, o tracker.Outbound, buf []byte) {
	switch o.Target {
	case tracker.ToAll, tracker.ToSome:
		for _, nd := range n.nodes {
			if nd.Name != from.Name {
				n.send(from, nd.Name, 0, buf)
			}
		}
	case tracker.ToOne:
		n.send(from, o.To.Name, o.To.Epoch, buf)
	default:
		panic(fmt.Sprintf("simnet: unknown target %d", o.Target))
	}
}

// checkNotOwn panics if m gives to (a delta or snapshot) its own entries.
func checkNotOwn(from, to crdt.Replica, m crdt.Message) {
	var owner crdt.Replica
	switch m := m.(type) {
	case *crdt.Delta:
		owner = m.Owner
	case *crdt.Snapshot:
		owner = m.Owner
	default:
		return
	}
	if owner == to {
		panic(fmt.Sprintf("simnet: %s sent %s its own %T", from, to, m))
	}
}

package testcluster

import (
	"sync"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/node"
	"github.com/headcount-io/headcount/testcluster/memnet"
	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/wsgateway"
)

// Node is one member of a Cluster. A Node value survives restarts: Tracker and Gossip return the
// current incarnation's.
type Node struct {
	c     *Cluster
	index int
	name  string

	mu       sync.Mutex
	nd       *node.Node // the current incarnation
	tr       *tracker.Tracker
	tp       *memnet.Transport
	addr     string
	running  bool
	httpAddr string // kept across restarts

	nextEpoch uint64 // set by RestartWithEpoch for the next start; guarded by Cluster.mu
}

// Index returns the node's index in the cluster.
func (n *Node) Index() int { return n.index }

// Name returns the node's name ("node-<index>").
func (n *Node) Name() string { return n.name }

// Addr returns the node's gossip address.
func (n *Node) Addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addr
}

// Running reports whether the node is running (not killed or stopped).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running
}

// Tracker returns the current incarnation's tracker. After Kill or Stop it stays readable.
func (n *Node) Tracker() *tracker.Tracker {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.tr
}

// Gossip returns the current incarnation's gossip node.
func (n *Node) Gossip() *gossip.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nd == nil {
		return nil
	}
	return n.nd.Gossip()
}

// Node returns the current incarnation (package node): its Handler, Members, Leave.
func (n *Node) Node() *node.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nd
}

// Gateway returns the node's WebSocket gateway (nil without Options.Gateways, or while the
// node is not running).
func (n *Node) Gateway() *wsgateway.Gateway {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nd == nil || !n.running {
		return nil
	}
	return n.nd.Gateway()
}

// HTTPAddr returns the host:port of the node's gateway ("" without Options.Gateways).
func (n *Node) HTTPAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.httpAddr
}

// URL returns the base URL of the node's gateway, e.g. "http://127.0.0.1:41234" (the demo page
// is at URL()+"/", the Phoenix socket at URL()+"/socket"), or "" without Options.Gateways.
func (n *Node) URL() string {
	if a := n.HTTPAddr(); a != "" {
		return "http://" + a
	}
	return ""
}

// NewOwner mints an owner on the current incarnation's tracker (Tracker.NewOwner), so owners
// of Track and of the gateway's sockets never collide.
func (n *Node) NewOwner() tracker.Owner { return n.Tracker().NewOwner() }

// Track tracks a presence of a new owner in topic (user "" = anonymous) and returns the owner.
func (n *Node) Track(topic, user string) (tracker.Owner, error) {
	o := n.NewOwner()
	_, err := n.Tracker().Track(o, topic, user, nil)
	return o, err
}

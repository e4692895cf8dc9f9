package testcluster

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/headcount-io/headcount/gossip"
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

	mu      sync.Mutex
	tr      *tracker.Tracker
	g       *gossip.Node
	tp      *memnet.Transport
	addr    string
	running bool

	gw       *wsgateway.Gateway // with Options.Gateways, while running
	srv      *http.Server
	srvDone  chan struct{}
	httpAddr string // kept across restarts

	owners atomic.Uint64
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
	return n.g
}

// Gateway returns the node's WebSocket gateway (nil without Options.Gateways, or while the
// node is not running).
func (n *Node) Gateway() *wsgateway.Gateway {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gw
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

// NewOwner mints a connection id unique on this node (across restarts too).
func (n *Node) NewOwner() tracker.Owner { return tracker.Owner(n.owners.Add(1)) }

// Track tracks a presence of a new owner in topic (user "" = anonymous) and returns the owner.
func (n *Node) Track(topic, user string) (tracker.Owner, error) {
	o := n.NewOwner()
	_, err := n.Tracker().Track(o, topic, user, nil)
	return o, err
}

package testcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/node"
	"github.com/headcount-io/headcount/testcluster/memnet"
	"github.com/headcount-io/headcount/tracker"
)

// Errors returned by Cluster methods.
var (
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("testcluster: closed")
	// ErrNoFaults is returned by fault-injection methods on a loopback cluster.
	ErrNoFaults = errors.New("testcluster: fault injection needs the in-memory network (Options.Loopback is set)")
	// ErrBadIndex is returned for a node index out of range.
	ErrBadIndex = errors.New("testcluster: no such node")
	// ErrRunning is returned by Restart for a node that is running.
	ErrRunning = errors.New("testcluster: node is running")
	// ErrNotRunning is returned by Kill and Stop for a node that is not running.
	ErrNotRunning = errors.New("testcluster: node is not running")
)

// Options configures a Cluster. The zero value is a 3-node in-memory cluster with the fast test
// profiles.
type Options struct {
	// Nodes is the number of nodes New starts (default 3; 0 means 3, use Add for more later).
	Nodes int
	// Loopback runs the nodes on real UDP and TCP sockets on 127.0.0.1 (ephemeral ports) instead of
	// the in-memory network. Partition, Cut, SetLoss and SetDelay then return ErrNoFaults.
	Loopback bool
	// Gossip returns node i's gossip configuration (nil = gossip.TestConfig()). The cluster sets
	// Join, Transport, BindAddr, BindPort and, if unset, Label; package node sets Name, Logger
	// and Registerer.
	Gossip func(i int) gossip.Config
	// Tracker returns node i's tracker configuration (nil = tracker.LocalConfig()). The cluster
	// sets Epoch; package node sets Name and Logger.
	Tracker func(i int) tracker.Config
	// Network configures the in-memory network (ignored with Loopback).
	Network memnet.Options
	// Label is the gossip label of the cluster (default a unique "testcluster-N"), so clusters in
	// one process never mix.
	Label string
	// Logger receives every node's logs (nil = silent). In tests, route it to t.Log.
	Logger *slog.Logger
	// Gateways, when not nil, serves a WebSocket gateway on every node: see Node.URL.
	Gateways *GatewayOptions
	// OnNodeStart is called after a node starts (New, Add, Restart), for example to attach an
	// HTTP gateway to n.Tracker(). It runs on the caller's goroutine.
	OnNodeStart func(n *Node)
	// OnNodeStop is called before a node stops (Kill, Stop, Close), for example to shut its
	// gateway down.
	OnNodeStop func(n *Node)
}

var clusterSeq atomic.Uint64

// Cluster is a set of in-process nodes (package node: a tracker, its gossip link and,
// with Options.Gateways, a gateway), on a fault-injecting network. Its methods are safe for concurrent use, but node lifecycle calls
// (Kill, Stop, Restart, Add) are serialised.
type Cluster struct {
	opts  Options
	net   *memnet.Network // nil with Loopback
	label string
	log   *slog.Logger

	life      sync.Mutex // serialises lifecycle calls (Add, Kill, Stop, Restart, Close)
	mu        sync.Mutex // guards the fields below; never held while a node starts or stops
	nodes     []*Node
	lastEpoch uint64
	fault     memnet.Fault // network-wide fault set by SetLoss and SetDelay
	closed    bool
}

// New starts a cluster of opts.Nodes nodes and returns once every node has been started and has
// joined (it does not wait for convergence: see WaitConverged).
func New(opts Options) (*Cluster, error) {
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Cluster{opts: opts, log: lg, label: opts.Label}
	if c.label == "" {
		c.label = "testcluster-" + strconv.FormatUint(clusterSeq.Add(1), 10)
	}
	if !opts.Loopback {
		c.net = memnet.New(opts.Network)
	}
	for i := 0; i < opts.Nodes; i++ {
		if _, err := c.Add(); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	return c, nil
}

// Network returns the in-memory network, or nil for a loopback cluster.
func (c *Cluster) Network() *memnet.Network { return c.net }

// Len returns the number of nodes ever started (running or not).
func (c *Cluster) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.nodes)
}

// Node returns node i (nil if out of range).
func (c *Cluster) Node(i int) *Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if i < 0 || i >= len(c.nodes) {
		return nil
	}
	return c.nodes[i]
}

// Nodes returns every node, running or not, by index.
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Node(nil), c.nodes...)
}

// Live returns the running nodes.
func (c *Cluster) Live() []*Node {
	var out []*Node
	for _, n := range c.Nodes() {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// Add starts a new node that joins the running ones and returns it.
func (c *Cluster) Add() (*Node, error) {
	c.life.Lock()
	defer c.life.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	i := len(c.nodes)
	n := &Node{c: c, index: i, name: fmt.Sprintf("node-%d", i)}
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	if err := c.start(n); err != nil {
		return nil, err
	}
	c.started(n)
	return n, nil
}

// Kill crashes node i: its network endpoints vanish first, then it stops without a goodbye.
// Peers hide its presences after failure detection.
func (c *Cluster) Kill(i int) error {
	c.life.Lock()
	defer c.life.Unlock()
	n, err := c.running(i)
	if err != nil {
		return err
	}
	tp, nd := c.halt(n)
	if tp != nil {
		_ = tp.Shutdown()
	}
	return nd.Close() // gossip goes before the sockets, so their untracks never reach the peers
}

// Stop stops node i gracefully (node.Node.Leave): peers drop its presences at once, its sockets
// get 1001.
func (c *Cluster) Stop(ctx context.Context, i int) error {
	c.life.Lock()
	defer c.life.Unlock()
	n, err := c.running(i)
	if err != nil {
		return err
	}
	_, nd := c.halt(n)
	return nd.Leave(ctx)
}

// Restart starts a stopped or killed node i again: same name and address, a new tracker with a
// new (higher) epoch and no presences. Peers drop the old incarnation's presences as soon as they
// see the new one.
func (c *Cluster) Restart(i int) error {
	c.life.Lock()
	defer c.life.Unlock()
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return ErrClosed
	}
	n := c.Node(i)
	if n == nil {
		return fmt.Errorf("%w: %d", ErrBadIndex, i)
	}
	if n.Running() {
		return fmt.Errorf("%w: %d", ErrRunning, i)
	}
	if err := c.start(n); err != nil {
		return err
	}
	c.started(n)
	return nil
}

// Close stops every node (as a crash, without goodbyes, which is fastest) and the network, and
// waits for all their goroutines. It is idempotent.
func (c *Cluster) Close() error {
	c.life.Lock()
	defer c.life.Unlock()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	nodes := append([]*Node(nil), c.nodes...)
	c.mu.Unlock()
	var errs []error
	for _, n := range nodes {
		if !n.Running() {
			continue
		}
		_, nd := c.halt(n)
		errs = append(errs, nd.Close())
	}
	if c.net != nil {
		errs = append(errs, c.net.Close())
	}
	return errors.Join(errs...)
}

func (c *Cluster) running(i int) (*Node, error) {
	n := c.Node(i)
	if n == nil {
		return nil, fmt.Errorf("%w: %d", ErrBadIndex, i)
	}
	if !n.Running() {
		return nil, fmt.Errorf("%w: %d", ErrNotRunning, i)
	}
	return n, nil
}

func (c *Cluster) started(n *Node) {
	if c.opts.OnNodeStart != nil {
		c.opts.OnNodeStart(n)
	}
}

// halt runs the stop hook, marks n stopped and returns the transport and node the caller must
// shut down (crash, leave or close).
func (c *Cluster) halt(n *Node) (*memnet.Transport, *node.Node) {
	c.stopping(n)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.running = false
	return n.tp, n.nd
}

func (c *Cluster) stopping(n *Node) {
	if c.opts.OnNodeStop != nil {
		c.opts.OnNodeStop(n)
	}
}

// start starts (or restarts) n as a new node.Node with a fresh tracker. c.life must be held.
func (c *Cluster) start(n *Node) error {
	tc := tracker.LocalConfig()
	if c.opts.Tracker != nil {
		tc = c.opts.Tracker(n.index)
	}
	c.mu.Lock()
	epoch := uint64(time.Now().UnixNano())
	if epoch <= c.lastEpoch {
		epoch = c.lastEpoch + 1
	}
	c.lastEpoch = epoch
	if n.nextEpoch != 0 { // an injected epoch (faults.go)
		epoch, n.nextEpoch = n.nextEpoch, 0
	}
	var seeds []string
	for _, o := range c.nodes {
		if o != n && o.Running() && len(seeds) < 3 {
			seeds = append(seeds, o.Addr())
		}
	}
	c.mu.Unlock()
	tc.Name, tc.Epoch = "", epoch
	gc := gossip.TestConfig()
	if c.opts.Gossip != nil {
		gc = c.opts.Gossip(n.index)
	}
	gc.Name = ""
	if gc.Label == "" {
		gc.Label = c.label
	}
	gc.Join = seeds
	var tp *memnet.Transport
	var err error
	if c.net != nil {
		tp, err = c.net.NewTransport(n.addr)
		if err != nil {
			return fmt.Errorf("testcluster: node %d: %w", n.index, err)
		}
		gc.Transport = tp
	} else {
		gc.BindAddr = "127.0.0.1"
		gc.BindPort = 0
		gc.AdvertiseAddr = ""
		gc.AdvertisePort = 0
		if n.addr != "" {
			_, port, _ := net.SplitHostPort(n.addr)
			gc.BindPort, _ = strconv.Atoi(port)
		}
	}
	goodbye := gc.LeaveTimeout
	if goodbye <= 0 {
		goodbye = 2 * time.Second
	}
	nc := node.Config{
		Name: n.name, Tracker: tc, Gossip: &gc, Logger: c.log,
		ReadHeaderTimeout: 10 * time.Second,
		Stop:              node.StopConfig{Drain: time.Second, Goodbye: goodbye, Sockets: 5 * time.Second},
	}
	if c.opts.Gateways != nil {
		if nc.Listener, err = c.listenGateway(n); err != nil {
			if tp != nil {
				_ = tp.Shutdown()
			}
			return err
		}
		nc.Gateway = c.gatewayConfig(n)
	}
	nd, err := node.New(nc)
	if err != nil {
		if tp != nil {
			_ = tp.Shutdown()
		}
		if nc.Listener != nil {
			_ = nc.Listener.Close()
		}
		return fmt.Errorf("testcluster: node %d: %w", n.index, err)
	}
	n.mu.Lock()
	n.nd, n.tr, n.tp, n.addr, n.running = nd, nd.Tracker(), tp, nd.Gossip().Addr(), true
	if nc.Listener != nil {
		n.httpAddr = nd.HTTPAddr()
	}
	n.mu.Unlock()
	return nil
}

package testcluster

import (
	"fmt"
	"time"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/testcluster/memnet"
	"github.com/headcount-io/headcount/tracker"
)

// Partition splits the network into groups of node indexes; nodes in different groups cannot
// reach each other. Nodes not listed form one more group. It replaces any earlier partition.
func (c *Cluster) Partition(groups ...[]int) error {
	if c.net == nil {
		return ErrNoFaults
	}
	addrs := make([][]string, len(groups))
	for g, idx := range groups {
		for _, i := range idx {
			n := c.Node(i)
			if n == nil {
				return fmt.Errorf("%w: %d", ErrBadIndex, i)
			}
			addrs[g] = append(addrs[g], n.Addr())
		}
	}
	c.net.Partition(addrs...)
	return nil
}

// Heal removes every partition, cut, loss and delay.
func (c *Cluster) Heal() error {
	if c.net == nil {
		return ErrNoFaults
	}
	c.mu.Lock()
	c.fault = memnet.Fault{}
	c.mu.Unlock()
	c.net.Heal()
	return nil
}

// Cut drops all traffic from node from to node to (one direction only: to can still reach from
// with packets, though streams need both directions).
func (c *Cluster) Cut(from, to int) error {
	if c.net == nil {
		return ErrNoFaults
	}
	a, b := c.Node(from), c.Node(to)
	if a == nil || b == nil {
		return fmt.Errorf("%w: %d or %d", ErrBadIndex, from, to)
	}
	c.net.SetLinkFault(a.Addr(), b.Addr(), memnet.Fault{Cut: true})
	return nil
}

// SetLoss drops each packet on every link with probability p (streams are not affected).
func (c *Cluster) SetLoss(p float64) error {
	return c.setAll(func(f *memnet.Fault) { f.Loss = p })
}

// SetDialLoss makes every stream dial on every link lose its SYN with probability p, as TCP
// does under packet loss (see memnet.Fault.DialLoss). With SetLoss(p) it models loss on the
// wire for both memberlist's datagrams and its TCP fallback probes and streams.
func (c *Cluster) SetDialLoss(p float64) error {
	return c.setAll(func(f *memnet.Fault) { f.DialLoss = p })
}

// SetDelay delays every packet and stream dial on every link by d.
func (c *Cluster) SetDelay(d time.Duration) error {
	return c.setAll(func(f *memnet.Fault) { f.Delay = d })
}

func (c *Cluster) setAll(change func(*memnet.Fault)) error {
	if c.net == nil {
		return ErrNoFaults
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	change(&c.fault)
	c.net.SetFault(c.fault)
	return nil
}

// BlockPackets drops every datagram from node from to node to while streams still pass (UDP
// blocked, TCP open). from = -1 or to = -1 means every node.
func (c *Cluster) BlockPackets(from, to int) error {
	if c.net == nil {
		return ErrNoFaults
	}
	nodes := c.Nodes()
	pick := func(i int) ([]*Node, error) {
		if i == -1 {
			return nodes, nil
		}
		if n := c.Node(i); n != nil {
			return []*Node{n}, nil
		}
		return nil, fmt.Errorf("%w: %d", ErrBadIndex, i)
	}
	fs, err := pick(from)
	if err != nil {
		return err
	}
	ts, err := pick(to)
	if err != nil {
		return err
	}
	for _, a := range fs {
		for _, b := range ts {
			if a != b {
				c.net.SetLinkFault(a.Addr(), b.Addr(), memnet.Fault{DropPackets: true})
			}
		}
	}
	return nil
}

// RestartWithEpoch is Restart with the given tracker epoch. An epoch lower than the previous
// incarnation's models a restart after the wall clock stepped back (NTP, VM migration).
func (c *Cluster) RestartWithEpoch(i int, epoch uint64) error {
	n := c.Node(i)
	if n == nil {
		return fmt.Errorf("%w: %d", ErrBadIndex, i)
	}
	c.mu.Lock()
	n.nextEpoch = epoch
	c.mu.Unlock()
	return c.Restart(i)
}

// RestartAt is Restart at a new address (a container that came back with a new IP; "" = a fresh
// one), with the in-memory network only.
func (c *Cluster) RestartAt(i int, addr string) error {
	if c.net == nil {
		return ErrNoFaults
	}
	n := c.Node(i)
	if n == nil {
		return fmt.Errorf("%w: %d", ErrBadIndex, i)
	}
	if n.Running() {
		return fmt.Errorf("%w: %d", ErrRunning, i)
	}
	if addr == "" {
		addr = c.net.NextAddr()
	}
	n.mu.Lock()
	n.addr = addr
	n.mu.Unlock()
	return c.Restart(i)
}

// Impostor is a second process running under a live node's name at another address (a
// mis-deployed replica). memberlist refuses it as a member, but its messages reach the nodes.
type Impostor struct {
	tp *memnet.Transport
	g  *gossip.Node
}

// Tracker returns the impostor's tracker, to track presences that must never count anywhere.
func (im *Impostor) Tracker() *tracker.Tracker { return im.g.Tracker() }

// Gossip returns the impostor's gossip node.
func (im *Impostor) Gossip() *gossip.Node { return im.g }

// Close crashes the impostor.
func (im *Impostor) Close() error {
	_ = im.tp.Shutdown()
	return im.g.Close()
}

// StartImpostor starts an impostor of node i at a fresh address, joining the running nodes, with
// the given tracker epoch (0 = a fresh one, higher than any so far). The caller closes it.
func (c *Cluster) StartImpostor(i int, epoch uint64) (*Impostor, error) {
	if c.net == nil {
		return nil, ErrNoFaults
	}
	victim, err := c.running(i)
	if err != nil {
		return nil, err
	}
	tc := tracker.LocalConfig()
	if c.opts.Tracker != nil {
		tc = c.opts.Tracker(i)
	}
	if epoch == 0 {
		epoch = uint64(time.Now().UnixNano()) + 1<<40
	}
	tc.Name, tc.Epoch, tc.Logger = victim.Name(), epoch, c.log
	tr, err := tracker.New(tc)
	if err != nil {
		return nil, err
	}
	gc := gossip.TestConfig()
	if c.opts.Gossip != nil {
		gc = c.opts.Gossip(i)
	}
	gc.Name, gc.Logger = victim.Name(), c.log.With("impostor", true)
	if gc.Label == "" {
		gc.Label = c.label
	}
	for _, o := range c.Live() {
		gc.Join = append(gc.Join, o.Addr())
	}
	tp, err := c.net.NewTransport("")
	if err != nil {
		return nil, err
	}
	gc.Transport = tp
	g, err := gossip.New(gc, tr)
	if err != nil {
		_ = tp.Shutdown()
		return nil, fmt.Errorf("testcluster: impostor: %w", err)
	}
	return &Impostor{tp: tp, g: g}, nil
}

package testcluster

import (
	"fmt"
	"time"

	"github.com/headcount-io/headcount/testcluster/memnet"
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

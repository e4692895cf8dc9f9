package gossip

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// State is a Node's lifecycle state, as in serf: Alive until Leave or Close, Leaving while the
// goodbye is sent, Left once memberlist has been left, Shutdown when every goroutine is stopped
// or stopping. It only moves forward.
type State uint32

const (
	// StateAlive: running and replicating.
	StateAlive State = iota
	// StateLeaving: Leave was called; the goodbye is being sent.
	StateLeaving
	// StateLeft: memberlist was left; Close follows at once.
	StateLeft
	// StateShutdown: Close was called (directly or by Leave).
	StateShutdown
)

var stateNames = [...]string{"alive", "leaving", "left", "shutdown"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", uint32(s))
}

// State returns the node's lifecycle state.
func (n *Node) State() State { return State(n.state.Load()) }

// advance moves the state forward to s, under lifeMu; false if the node is already at or past s.
func (n *Node) advance(s State) bool {
	if n.State() >= s {
		return false
	}
	n.state.Store(uint32(s))
	return true
}

type goodbye struct {
	node  memberlist.Node
	frame []byte
}

// Leave leaves the cluster gracefully: it sends the tracker's goodbye to every live member (by
// datagram at once, then by reliable stream), so they drop this node's presences without waiting
// for failure detection, then leaves memberlist and closes the node. The tracker refuses new
// local presences afterwards. On a Host the service's memberlist is not left: the node's meta
// is withdrawn instead. Without a deadline in ctx, Config.LeaveTimeout bounds it.
// It returns ErrClosed if the node was already closed or leaving; the node is closed when it
// returns, even on error.
func (n *Node) Leave(ctx context.Context) error {
	n.lifeMu.Lock()
	ok := n.advance(StateLeaving)
	n.lifeMu.Unlock()
	if !ok {
		return ErrClosed
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, n.cfg.LeaveTimeout)
		defer cancel()
	}
	reply := make(chan []goodbye, 1)
	var errs []error
	select {
	case n.leaveCh <- reply:
		n.sendGoodbyes(ctx, <-reply)
	case <-n.stop:
		return ErrClosed
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	n.lifeMu.Lock()
	if n.advance(StateLeft) {
		timeout := time.Millisecond
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) > timeout {
			timeout = time.Until(dl)
		}
		if n.host != nil {
			// The service's memberlist stays: withdrawing our meta is our leave, and peers
			// that had the goodbye take it as graceful. It spreads even if not yet sent.
			if err := n.host.detach(n, timeout); err != nil {
				n.log.Debug("gossip: meta withdrawal not yet broadcast", "err", err)
			}
		} else if err := n.ml.Leave(timeout); err != nil {
			errs = append(errs, fmt.Errorf("gossip: memberlist leave: %w", err))
		}
	}
	n.lifeMu.Unlock()
	errs = append(errs, n.Close())
	return errors.Join(errs...)
}

// sendGoodbyes sends the reliable goodbye copies in parallel and waits for them or ctx. The
// goroutines are added to n.wg under lifeMu and only while the node is not shut down, so a
// concurrent Close either waits for them or they are never started.
func (n *Node) sendGoodbyes(ctx context.Context, gs []goodbye) {
	n.lifeMu.Lock()
	if n.State() == StateShutdown {
		n.lifeMu.Unlock()
		return
	}
	n.wg.Add(len(gs))
	n.lifeMu.Unlock()
	var wg sync.WaitGroup
	wg.Add(len(gs))
	for _, g := range gs {
		go func() {
			defer n.wg.Done()
			defer wg.Done()
			if err := n.ml.SendReliable(&g.node, g.frame); err != nil {
				n.stats.sendErrors.Add(1)
				n.log.Debug("gossip: goodbye failed", "peer", g.node.Name, "err", err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Close stops the node without a goodbye: peers see a crash and hide its presences after failure
// detection (on a Host: at once, when its meta is withdrawn; the service's memberlist stays
// up). It waits for every goroutine of the node and is idempotent. Use Leave for a graceful
// stop.
func (n *Node) Close() error {
	n.lifeMu.Lock()
	if !n.advance(StateShutdown) {
		n.lifeMu.Unlock()
		n.wg.Wait() // a concurrent Close may still be stopping
		return nil
	}
	close(n.stop)
	var err error
	if n.host != nil {
		// Without a goodbye peers take the withdrawal as a failure, as they would a crash.
		_ = n.host.detach(n, time.Millisecond)
	} else {
		err = n.ml.Shutdown()
	}
	n.lifeMu.Unlock()
	n.wg.Wait()
	if n.mlLog != nil {
		n.mlLog.close()
	}
	if n.coll != nil {
		n.cfg.Registerer.Unregister(n.coll)
	}
	return err
}

package node

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// This file is the one place that decides how a Headcount node stops. The order:
//
//  1. not ready: /readyz answers 503, so load balancers send new clients elsewhere;
//  2. stop accepting: no new sockets (503) and, on the owned server, no new connections;
//     plain HTTP requests in flight get Stop.Drain, then their connections are cut;
//  3. goodbye and leave: the webhook sender stops first (the members that take this node's
//     topics over send their state), then peers are told to drop this node's presences at once
//     (Stop.Goodbye) and memberlist is left; a crash-like Close skips the goodbye and just
//     closes gossip, before the sockets close, so their untracks never reach the peers;
//  4. close sockets with 1001 (going away), so phoenix clients reconnect, to another node
//     (Stop.Sockets);
//  5. close: the tick loop, the server, the metrics.
//
// Each step has its own bound, started when the step starts: a step that hangs (a client that
// never reads, a peer that never answers) cannot eat a later step's time.

// Leave stops the node gracefully, in the order above, within the sum of Config.Stop's bounds.
// ctx can only shorten the steps. A step that fails or runs out of time is logged and the stop
// goes on (peers then notice by failure detection); the errors are returned joined. The node
// is stopped when Leave returns, even on error. It returns ErrClosed after Leave or Close.
func (n *Node) Leave(ctx context.Context) error {
	first := false
	n.stopOnce.Do(func() {
		first = true
		n.stopErr = n.stop(ctx, true)
		close(n.stopped)
	})
	if !first {
		<-n.stopped
		return ErrClosed
	}
	return n.stopErr
}

// Close stops the node as if it crashed, without a goodbye: peers hide its presences after
// failure detection, its clients get 1001 and reconnect. It waits for every goroutine of the
// node and is idempotent; after Leave it does nothing.
func (n *Node) Close() error {
	first := false
	n.stopOnce.Do(func() {
		first = true
		n.stopErr = n.stop(context.Background(), false)
		close(n.stopped)
	})
	if !first {
		<-n.stopped
		return nil
	}
	return n.stopErr
}

// stop runs the steps; graceful says whether to say goodbye.
func (n *Node) stop(ctx context.Context, graceful bool) error {
	start := time.Now()
	var errs []error
	step := func(name string, bound time.Duration, f func(context.Context) error) {
		sctx, cancel := context.WithTimeout(ctx, bound)
		defer cancel()
		if err := f(sctx); err != nil {
			n.log.Warn("stop: "+name+" failed", "err", err)
			errs = append(errs, fmt.Errorf("node: %s: %w", name, err))
		}
	}

	// 1. Not ready.
	n.ready.Store(false)
	if n.gw != nil {
		n.gw.SetReady(false)
	}

	// 2. Stop accepting.
	if n.gw != nil {
		n.gw.Refuse()
	}
	if n.srv != nil {
		step("drain http", n.cfg.Stop.Drain, func(ctx context.Context) error {
			err := n.srv.Shutdown(ctx)
			if err != nil {
				_ = n.srv.Close() // cut the stragglers; upgraded sockets are the gateway's
			}
			return err
		})
	}

	// 3. Goodbye and leave (or, for Close, just go).
	if n.hook != nil {
		_ = n.hook.Close() // never fails; abandons the batch in flight
	}
	switch {
	case graceful && n.gossip != nil:
		step("goodbye", n.cfg.Stop.Goodbye, n.gossip.Leave)
	case graceful:
		n.tr.Leave() // a single node: refuse new presences; nobody to say goodbye to
	case n.gossip != nil:
		if err := n.gossip.Close(); err != nil {
			errs = append(errs, fmt.Errorf("node: close gossip: %w", err))
		}
	}

	// 4. Close sockets with 1001.
	if n.gw != nil {
		step("close sockets", n.cfg.Stop.Sockets, n.gw.Shutdown)
	}

	// 5. Close.
	if n.gossip != nil {
		_ = n.gossip.Close() // idempotent: Leave has closed it already
	}
	if n.stopSolo != nil {
		n.stopSolo()
	}
	if n.srv != nil {
		_ = n.srv.Close()
		n.srvWG.Wait()
	}
	n.reg.unregisterAll()
	n.log.Info("stopped", "graceful", graceful, "took", time.Since(start).Round(time.Millisecond))
	return errors.Join(errs...)
}

// Command hosted shows Headcount carried on the memberlist a Go service already runs for itself:
// one gossip cluster, not two. Each "service" here has a memberlist with its own delegate (a
// broadcast setting, its own node meta); gossip.NewHost puts Headcount next to it and
// node.Config.Gossip.Host starts the Headcount node on it. Two such services run in this one
// process on loopback: the service's broadcast and Headcount's presences both replicate.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/node"
)

// service is the embedding service's own memberlist delegate: one replicated setting.
type service struct {
	name  string
	queue *memberlist.TransmitLimitedQueue
	mu    sync.Mutex
	motd  string
}

type setting []byte

func (s setting) Invalidates(memberlist.Broadcast) bool { return true }
func (s setting) Message() []byte                       { return s }
func (s setting) Finished()                             {}

func (s *service) GetBroadcasts(overhead, limit int) [][]byte {
	return s.queue.GetBroadcasts(overhead, limit)
}
func (s *service) LocalState(bool) []byte            { return []byte(s.get()) }
func (s *service) MergeRemoteState(b []byte, _ bool) { s.NotifyMsg(b) }
func (s *service) NotifyMsg(b []byte) {
	s.mu.Lock()
	s.motd = string(b)
	s.mu.Unlock()
}

// NodeMeta is offered what Headcount's part of the meta leaves of memberlist's 512 bytes.
func (s *service) NodeMeta(limit int) []byte {
	if m := []byte("zone=eu-1"); len(m) <= limit {
		return m
	}
	return nil
}

func (s *service) get() string { s.mu.Lock(); defer s.mu.Unlock(); return s.motd }
func (s *service) set(v string) {
	s.NotifyMsg([]byte(v))
	s.queue.QueueBroadcast(setting(v))
}

// start creates the service's memberlist through a Host, then a Headcount node on it.
func start(name string, join ...string) (*service, *gossip.Host, *node.Node, error) {
	svc := &service{name: name}
	mc := memberlist.DefaultLocalConfig()
	mc.Name, mc.BindAddr, mc.BindPort, mc.AdvertisePort = name, "127.0.0.1", 0, 0
	mc.LogOutput = io.Discard
	mc.Delegate = svc            // the service's own delegate, set as usual...
	h, err := gossip.NewHost(mc) // ...then wrapped, and memberlist created
	if err != nil {
		return nil, nil, nil, err
	}
	svc.queue = &memberlist.TransmitLimitedQueue{NumNodes: h.Memberlist().NumMembers, RetransmitMult: 3}
	cfg := node.LocalConfig()
	cfg.Name = name // the memberlist's node name
	cfg.Gossip.Host = h
	cfg.Gateway = nil // a real service mounts nd.Handler() for the WebSocket front door
	nd, err := node.New(cfg)
	if err != nil {
		_ = h.Memberlist().Shutdown()
		return nil, nil, nil, err
	}
	if len(join) > 0 {
		if _, err := h.Memberlist().Join(join); err != nil {
			_ = nd.Close()
			_ = h.Memberlist().Shutdown()
			return nil, nil, nil, err
		}
	}
	return svc, h, nd, nil
}

func run(w io.Writer) error {
	a, ha, na, err := start("svc-a")
	if err != nil {
		return err
	}
	b, hb, nb, err := start("svc-b", ha.Memberlist().LocalNode().Address())
	if err != nil {
		_ = na.Close()
		_ = ha.Memberlist().Shutdown()
		return err
	}
	a.set("maintenance at noon")
	_, _ = na.Tracker().Track(na.Tracker().NewOwner(), "lobby", "alice", nil)
	_, _ = nb.Tracker().Track(nb.Tracker().NewOwner(), "lobby", "bob", nil)

	deadline := time.Now().Add(30 * time.Second)
	for na.Tracker().Count("lobby").Users != 2 || nb.Tracker().Count("lobby").Users != 2 || b.get() == "" {
		if time.Now().After(deadline) {
			return fmt.Errorf("no convergence: %+v %+v %q", na.Tracker().Count("lobby"), nb.Tracker().Count("lobby"), b.get())
		}
		time.Sleep(10 * time.Millisecond) // polling an outcome in a demo, not synchronising
	}
	fmt.Fprintf(w, "svc-b's setting: %q\n", b.get())
	fmt.Fprintf(w, "lobby on svc-a: %d users, on svc-b: %d users\n", na.Tracker().Count("lobby").Users, nb.Tracker().Count("lobby").Users)
	for _, m := range hb.Memberlist().Members() {
		if m.Name == "svc-a" {
			fmt.Fprintf(w, "svc-a's service meta as svc-b sees it: %s\n", gossip.ServiceMeta(m))
		}
	}

	// Stop order: Headcount first (goodbye), then the service's memberlist.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range []struct {
		n *node.Node
		h *gossip.Host
	}{{na, ha}, {nb, hb}} {
		if err := s.n.Leave(ctx); err != nil {
			return err
		}
		if err := s.h.Memberlist().Leave(time.Second); err != nil {
			return err
		}
		if err := s.h.Memberlist().Shutdown(); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

package webhook_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/testcluster"
	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/webhook"
	"github.com/headcount-io/headcount/webhook/webhooktest"
)

// hookedCluster is a testcluster whose every node runs a Hook to one receiver.
type hookedCluster struct {
	*testcluster.Cluster
	rcv *webhooktest.Receiver
	cfg webhook.Config

	mu    sync.Mutex
	hooks map[int]*webhook.Hook
}

func newHookedCluster(t *testing.T, nodes int) *hookedCluster {
	t.Helper()
	hc := &hookedCluster{rcv: webhooktest.New(secret), hooks: map[int]*webhook.Hook{}}
	t.Cleanup(hc.rcv.Close)
	hc.cfg = webhook.TestConfig()
	hc.cfg.URL, hc.cfg.Secret = hc.rcv.URL(), secret
	hc.cfg.Timeout = 500 * time.Millisecond // Handover 500 ms, Settle 2 s
	hc.cfg.Logger = testLogger(t)
	c, err := testcluster.New(testcluster.Options{
		Nodes:  nodes,
		Logger: testLogger(t),
		OnNodeStart: func(n *testcluster.Node) {
			cfg := hc.cfg
			cfg.Tracker = n.Tracker()
			g := n.Gossip()
			cfg.Members = func() []string {
				var names []string
				for _, m := range g.Members() {
					if m.Status == gossip.StatusAlive {
						names = append(names, m.Name)
					}
				}
				return names
			}
			h, err := webhook.New(cfg)
			if err != nil {
				t.Error(err)
				return
			}
			hc.mu.Lock()
			hc.hooks[n.Index()] = h
			hc.mu.Unlock()
		},
		OnNodeStop: func(n *testcluster.Node) {
			hc.mu.Lock()
			h := hc.hooks[n.Index()]
			delete(hc.hooks, n.Index())
			hc.mu.Unlock()
			if h != nil {
				_ = h.Close()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	hc.Cluster = c
	t.Cleanup(func() { _ = c.Close() })
	c.RequireConverged(t, 10*time.Second)
	waitFor(t, 10*time.Second, func() error { // every node sees every other
		for _, n := range c.Live() {
			if got := n.Gossip().NumMembers(); got != len(c.Live()) {
				return fmt.Errorf("%s sees %d members", n.Name(), got)
			}
		}
		hc.mu.Lock()
		defer hc.mu.Unlock()
		for i, h := range hc.hooks { // and every hook has settled on that view
			if s := h.Stats(); s.Members != len(c.Live()) || s.Settling {
				return fmt.Errorf("hook %d: %d members, settling %v", i, s.Members, s.Settling)
			}
		}
		return nil
	})
	return hc
}

// truth is the cluster's ground truth as receiver states.
func (hc *hookedCluster) truth() map[string]webhooktest.State {
	out := map[string]webhooktest.State{}
	for topic, n := range hc.Truth() {
		if n.Connections > 0 {
			out[topic] = webhooktest.State{Occupied: true, Viewers: n.Viewers, Users: n.Users}
		}
	}
	return out
}

// requireFinalState waits for the cluster to converge and for the receiver's last event of
// every topic to match the truth.
func (hc *hookedCluster) requireFinalState(t *testing.T, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := hc.WaitConverged(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, timeout, func() error { return hc.rcv.Match(hc.truth(), false) })
}

// requireOnce checks that topic's events read want, each once; a repeat in a row is accepted
// only if some hook re-sent state (an ownership change, e.g. a false failure detection on a
// loaded machine): duplicates happen only around ownership changes.
func (hc *hookedCluster) requireOnce(t *testing.T, topic, want string) {
	t.Helper()
	evs := hc.rcv.Of(topic)
	var collapsed []webhook.Event
	for _, e := range evs {
		if len(collapsed) == 0 || collapsed[len(collapsed)-1].Name != e.Name {
			collapsed = append(collapsed, e)
		}
	}
	if got := names(collapsed); got != want {
		t.Fatalf("%s: %q, want %q", topic, names(evs), want)
	}
	if len(collapsed) == len(evs) {
		return
	}
	hc.mu.Lock()
	defer hc.mu.Unlock()
	for _, h := range hc.hooks {
		if h.Stats().Resent > 0 {
			t.Logf("%s: %q: duplicates after an ownership change", topic, names(evs))
			return
		}
	}
	t.Fatalf("%s: %q has duplicates, and no hook re-sent any state", topic, names(evs))
}

type presence struct {
	node  int
	owner tracker.Owner
	topic string
}

func TestClusterOneSenderPerTopic(t *testing.T) {
	hc := newHookedCluster(t, 3)
	var ps []presence
	for i := range 30 {
		topic := fmt.Sprintf("room:%d", i)
		for j := range 1 + i%3 { // some topics have presences on several nodes
			node := (i + j) % 3
			o, err := hc.Node(node).Track(topic, "")
			if err != nil {
				t.Fatal(err)
			}
			ps = append(ps, presence{node, o, topic})
		}
	}
	hc.requireFinalState(t, 10*time.Second)
	for i := range 30 {
		topic := fmt.Sprintf("room:%d", i)
		hc.requireOnce(t, topic, "occupied")
	}
	for _, p := range ps {
		if err := hc.Node(p.node).Tracker().Untrack(p.owner, p.topic); err != nil {
			t.Fatal(err)
		}
	}
	hc.requireFinalState(t, 10*time.Second)
	for i := range 30 {
		topic := fmt.Sprintf("room:%d", i)
		hc.requireOnce(t, topic, "occupied,vacated")
	}
	for _, d := range hc.rcv.Deliveries() {
		if !d.Verified {
			t.Fatal("unsigned delivery")
		}
	}
}

// churn tracks and untracks random presences on the running nodes until stop is closed.
func churn(t *testing.T, hc *hookedCluster, rng *rand.Rand, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	var ps []presence
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		live := hc.Live()
		if rng.IntN(3) > 0 || len(ps) == 0 {
			n := live[rng.IntN(len(live))]
			topic := fmt.Sprintf("churn:%d", rng.IntN(40))
			if o, err := n.Track(topic, ""); err == nil {
				ps = append(ps, presence{n.Index(), o, topic})
			}
		} else {
			k := rng.IntN(len(ps))
			p := ps[k]
			ps = append(ps[:k], ps[k+1:]...)
			if n := hc.Node(p.node); n.Running() {
				_ = n.Tracker().Untrack(p.owner, p.topic)
			}
		}
		if i%10 == 0 {
			time.Sleep(time.Millisecond) // pace the load generator; not a synchronisation
		}
	}
}

func TestClusterFailoverOnKill(t *testing.T) {
	hc := newHookedCluster(t, 3)
	rng := rand.New(rand.NewPCG(1, 2))
	// Presences on every node; some topics live only on the node about to die.
	for i := range 30 {
		if _, err := hc.Node(i%3).Track(fmt.Sprintf("room:%d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go churn(t, hc, rng, stop, done)
	waitFor(t, 10*time.Second, func() error {
		if len(hc.rcv.Events()) < 50 {
			return fmt.Errorf("only %d events so far", len(hc.rcv.Events()))
		}
		return nil
	})
	if err := hc.Kill(1); err != nil { // mid-stream
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // more churn after the kill; not a synchronisation
	close(stop)
	<-done
	hc.requireFinalState(t, 20*time.Second)
	// The dead node's own topics were vacated by the new owners.
	for i := 1; i < 30; i += 3 {
		topic := fmt.Sprintf("room:%d", i)
		if evs := hc.rcv.Of(topic); len(evs) == 0 || evs[len(evs)-1].Name != webhook.NameVacated {
			t.Fatalf("%s: %q, want vacated last", topic, names(evs))
		}
	}
}

func TestClusterFailoverOnPartition(t *testing.T) {
	hc := newHookedCluster(t, 3)
	var ps []presence
	for i := range 30 {
		o, err := hc.Node(i%3).Track(fmt.Sprintf("room:%d", i), "")
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, presence{i % 3, o, fmt.Sprintf("room:%d", i)})
	}
	hc.requireFinalState(t, 10*time.Second)
	if err := hc.Partition([]int{0, 1}, []int{2}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error { // failure detection on both sides
		if a, b := hc.Node(0).Gossip().NumMembers(), hc.Node(2).Gossip().NumMembers(); a != 2 || b != 1 {
			return fmt.Errorf("members: %d and %d", a, b)
		}
		return nil
	})
	// Changes on both sides while they cannot see each other.
	for _, p := range ps[:12] {
		if err := hc.Node(p.node).Tracker().Untrack(p.owner, p.topic); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 6 {
		if _, err := hc.Node(2-i%2*2).Track(fmt.Sprintf("split:%d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	// Each side's owners report their side's truth: node 2, alone, owns every topic on its
	// side and sees room:12 (on node 0) vacated, which is wrong for the whole cluster.
	waitFor(t, 10*time.Second, func() error {
		for _, topic := range []string{"room:0", "room:12"} {
			if evs := hc.rcv.Of(topic); len(evs) == 0 || evs[len(evs)-1].Name != webhook.NameVacated {
				return fmt.Errorf("%s: %q", topic, names(evs))
			}
		}
		return nil
	})
	if err := hc.Heal(); err != nil {
		t.Fatal(err)
	}
	hc.requireFinalState(t, 20*time.Second)
	// Past Settle, the re-sent states still match.
	hc.waitSettled(t, 3)
	hc.requireFinalState(t, 10*time.Second)
}

func TestClusterFailoverOnLeaveAndRestart(t *testing.T) {
	hc := newHookedCluster(t, 3)
	for i := range 30 {
		if _, err := hc.Node(i%3).Track(fmt.Sprintf("room:%d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	hc.requireFinalState(t, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hc.Stop(ctx, 0); err != nil { // graceful: its presences go at once, its topics move
		t.Fatal(err)
	}
	hc.requireFinalState(t, 10*time.Second)
	for i := 0; i < 30; i += 3 {
		topic := fmt.Sprintf("room:%d", i)
		if evs := hc.rcv.Of(topic); evs[len(evs)-1].Name != webhook.NameVacated {
			t.Fatalf("%s: %q, want vacated last after its only node left", topic, names(evs))
		}
	}
	if err := hc.Restart(0); err != nil { // a new incarnation takes its topics back
		t.Fatal(err)
	}
	if _, err := hc.Node(0).Track("room:0", ""); err != nil {
		t.Fatal(err)
	}
	hc.requireFinalState(t, 10*time.Second)
	hc.waitSettled(t, 3)
	hc.requireFinalState(t, 10*time.Second) // past the settle after the rejoin, still right
}

// waitSettled waits until every hook sees members members and has no re-send pending: the
// settle after the last member appeared has passed.
func (hc *hookedCluster) waitSettled(t *testing.T, members int) {
	t.Helper()
	waitFor(t, 15*time.Second, func() error {
		hc.mu.Lock()
		defer hc.mu.Unlock()
		for i, h := range hc.hooks {
			if s := h.Stats(); s.Members != members || s.Settling {
				return fmt.Errorf("hook %d: %d members, settling %v", i, s.Members, s.Settling)
			}
		}
		return nil
	})
}

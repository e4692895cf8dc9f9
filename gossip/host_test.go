package gossip_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/testcluster/memnet"
	"github.com/headcount-io/headcount/tracker"
)

// kvService stands for an embedding service with a memberlist of its own: a replicated map
// spread by memberlist broadcasts and push/pull, direct messages, its own node meta, and an
// event delegate. It knows nothing of Headcount except that its direct sends go through Host.
type kvService struct {
	name string
	host *gossip.Host
	q    *memberlist.TransmitLimitedQueue

	mu     sync.Mutex
	vals   map[string]string
	direct []string
	metas  map[string]string // member name -> the meta its join or update showed
}

func newKVService(name string) *kvService {
	return &kvService{name: name, vals: map[string]string{}, metas: map[string]string{}}
}

type kvBroadcast []byte

func (b kvBroadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b kvBroadcast) Message() []byte                       { return b }
func (b kvBroadcast) Finished()                             {}

// set stores k=v and broadcasts it.
func (s *kvService) set(k, v string) {
	s.mu.Lock()
	s.vals[k] = v
	s.mu.Unlock()
	s.q.QueueBroadcast(kvBroadcast("s" + k + "=" + v))
}

func (s *kvService) get(k string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vals[k]
}

func (s *kvService) NodeMeta(limit int) []byte {
	m := []byte("svc:" + s.name)
	if len(m) > limit {
		return nil
	}
	return m
}

func (s *kvService) NotifyMsg(b []byte) {
	if len(b) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch b[0] {
	case 's':
		if k, v, ok := strings.Cut(string(b[1:]), "="); ok {
			s.vals[k] = v
		}
	case 'd':
		s.direct = append(s.direct, string(b[1:]))
	}
}

func (s *kvService) GetBroadcasts(overhead, limit int) [][]byte {
	return s.q.GetBroadcasts(overhead, limit)
}

func (s *kvService) LocalState(bool) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for k, v := range s.vals {
		b.WriteString(k + "=" + v + "\n")
	}
	return []byte(b.String())
}

func (s *kvService) MergeRemoteState(buf []byte, _ bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range strings.Split(string(buf), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			s.vals[k] = v
		}
	}
}

func (s *kvService) NotifyJoin(n *memberlist.Node)   { s.sawMeta(n) }
func (s *kvService) NotifyUpdate(n *memberlist.Node) { s.sawMeta(n) }
func (s *kvService) NotifyLeave(n *memberlist.Node)  {}

func (s *kvService) sawMeta(n *memberlist.Node) {
	s.mu.Lock()
	s.metas[n.Name] = string(n.Meta)
	s.mu.Unlock()
}

func (s *kvService) snapshot() (metas map[string]string, direct []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	metas = map[string]string{}
	for k, v := range s.metas {
		metas[k] = v
	}
	return metas, append([]string(nil), s.direct...)
}

// startService creates the service's memberlist on net through a Host.
func startService(t *testing.T, net *memnet.Network, name string) *kvService {
	t.Helper()
	tp, err := net.NewTransport("")
	require.NoError(t, err)
	svc := newKVService(name)
	mc := memberlist.DefaultLocalConfig()
	mc.Name, mc.Transport, mc.Label = name, tp, t.Name()
	mc.LogOutput = io.Discard
	mc.ProbeInterval, mc.ProbeTimeout = 100*time.Millisecond, 80*time.Millisecond
	mc.GossipInterval, mc.PushPullInterval = 20*time.Millisecond, time.Second
	mc.TCPTimeout = 500 * time.Millisecond
	mc.Delegate, mc.Events = svc, svc
	h, err := gossip.NewHost(mc)
	require.NoError(t, err)
	svc.host = h
	svc.q = &memberlist.TransmitLimitedQueue{NumNodes: h.Memberlist().NumMembers, RetransmitMult: 3}
	t.Cleanup(func() { require.NoError(t, h.Memberlist().Shutdown()) })
	return svc
}

// hostHeadcount starts a Headcount node on the service's memberlist.
func hostHeadcount(t *testing.T, svc *kvService) *gossip.Node {
	t.Helper()
	cfg := gossip.TestConfig()
	cfg.Host = svc.host
	cfg.HTTPAddr = svc.name + ":4000"
	n, err := gossip.New(cfg, newTracker(t, svc.name))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	return n
}

func aliveNames(n *gossip.Node) []string {
	var out []string
	for _, m := range n.Members() {
		if m.Status == gossip.StatusAlive {
			out = append(out, m.Name)
		}
	}
	return out
}

// Two services, each with its own memberlist carrying its own broadcasts, direct messages,
// push/pull state and node meta AND a Headcount node: all of it replicates, counts converge on
// both, and a third member without Headcount is neither listed nor counted.
func TestHostedOnServiceMemberlist(t *testing.T) {
	net := memnet.New(memnet.Options{})
	defer net.Close()
	a, b := startService(t, net, "a"), startService(t, net, "b")
	a.set("before-join", "1") // on a alone: reaches b by push/pull at the join
	ha, hb := hostHeadcount(t, a), hostHeadcount(t, b)
	_, err := b.host.Memberlist().Join([]string{a.host.Memberlist().LocalNode().Address()})
	require.NoError(t, err)

	_, err = ha.Tracker().Track(ha.Tracker().NewOwner(), "room", "alice", nil)
	require.NoError(t, err)
	_, err = hb.Tracker().Track(hb.Tracker().NewOwner(), "room", "bob", nil)
	require.NoError(t, err)
	a.set("colour", "blue")
	want := tracker.Counts{Users: 2, Connections: 2}
	require.Eventually(t, func() bool {
		return ha.Tracker().Count("room") == want && hb.Tracker().Count("room") == want &&
			b.get("before-join") == "1" && b.get("colour") == "blue"
	}, eventually, 5*time.Millisecond)

	// The service's direct sends, both ways.
	for _, p := range []struct{ from, to *kvService }{{a, b}, {b, a}} {
		to := p.to.host.Memberlist().LocalNode()
		require.NoError(t, p.from.host.SendReliable(to, []byte("dreliable from "+p.from.name)))
		require.NoError(t, p.from.host.SendBestEffort(to, []byte("dpacket from "+p.from.name)))
	}
	require.Eventually(t, func() bool { // datagrams may be lost; streams are not
		_, da := a.snapshot()
		_, db := b.snapshot()
		return slices.Contains(da, "reliable from b") && slices.Contains(db, "reliable from a")
	}, eventually, 5*time.Millisecond)
	_, db := b.snapshot()
	for _, d := range db { // and no Headcount frame reaches the service
		require.Contains(t, []string{"reliable from a", "packet from a"}, d)
	}

	// Each side sees the other's service meta without Headcount's part, in its events and
	// through ServiceMeta, and Headcount's members with epochs and HTTP addresses.
	require.Eventually(t, func() bool {
		m, _ := b.snapshot()
		return m["a"] == "svc:a"
	}, eventually, 5*time.Millisecond)
	for _, n := range b.host.Memberlist().Members() {
		require.Equal(t, "svc:"+n.Name, string(gossip.ServiceMeta(n)))
	}
	require.Eventually(t, func() bool {
		m, ok := memberNamed(hb, "a")
		return ok && m.Epoch == ha.Tracker().Self().Epoch && m.HTTP == "a:4000"
	}, eventually, 5*time.Millisecond)

	// A third member that hosts no Headcount node: in the service's membership, not in
	// Headcount's.
	c := startService(t, net, "c")
	_, err = c.host.Memberlist().Join([]string{a.host.Memberlist().LocalNode().Address()})
	require.NoError(t, err)
	c.set("from-c", "3")
	require.Eventually(t, func() bool {
		return a.get("from-c") == "3" && b.get("from-c") == "3" && a.host.Memberlist().NumMembers() == 3
	}, eventually, 5*time.Millisecond)
	require.Equal(t, []string{"a", "b"}, aliveNames(ha))
	require.Len(t, hb.Members(), 2)

	// Headcount leaves a's memberlist, which stays: b drops alice as a graceful leave and
	// lists a no more, and the services keep replicating.
	left := hb.Stats().Left
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, ha.Leave(ctx))
	require.Eventually(t, func() bool {
		return hb.Tracker().Count("room") == tracker.Counts{Users: 1, Connections: 1} &&
			len(hb.Members()) == 1 && hb.Stats().Left == left+1
	}, eventually, 5*time.Millisecond)
	a.set("after-leave", "2")
	require.Eventually(t, func() bool { // (a loaded machine may make memberlist suspect one a while)
		return b.get("after-leave") == "2" && b.host.Memberlist().NumMembers() == 3
	}, eventually, 5*time.Millisecond)
}

// A Headcount node closed without a goodbye on a memberlist that stays up is taken as failed at
// once (its meta is withdrawn), not kept alive by the service's membership; a new node may then
// be attached to the same Host and is counted again.
func TestHostedCloseIsAFailureAndHostIsReusable(t *testing.T) {
	net := memnet.New(memnet.Options{})
	defer net.Close()
	a, b := startService(t, net, "a"), startService(t, net, "b")
	ha, hb := hostHeadcount(t, a), hostHeadcount(t, b)
	_, err := b.host.Memberlist().Join([]string{a.host.Memberlist().LocalNode().Address()})
	require.NoError(t, err)
	_, err = ha.Tracker().Track(1, "room", "alice", nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return hb.Tracker().Count("room").Users == 1 }, eventually, 5*time.Millisecond)

	cfg := gossip.TestConfig()
	cfg.Host = a.host
	_, err = gossip.New(cfg, newTracker(t, "a"))
	require.ErrorIs(t, err, gossip.ErrHostInUse)

	failed := hb.Stats().Failed
	require.NoError(t, ha.Close())
	require.Eventually(t, func() bool {
		return hb.Tracker().Count("room").Users == 0 && hb.Stats().Failed == failed+1 && len(hb.Members()) == 1
	}, eventually, 5*time.Millisecond)

	ha2 := hostHeadcount(t, a)
	_, err = ha2.Tracker().Track(1, "room", "alice", nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return hb.Tracker().Count("room").Users == 1 }, eventually, 5*time.Millisecond)
}

// Config fields the service's memberlist decides are refused with a Host, and the name must be
// the memberlist's.
func TestHostedConfigRefusesMemberlistFields(t *testing.T) {
	net := memnet.New(memnet.Options{})
	defer net.Close()
	a := startService(t, net, "a")
	for field, tweak := range map[string]func(*gossip.Config){
		"Join":       func(c *gossip.Config) { c.Join = []string{"x:1"} },
		"SecretKeys": func(c *gossip.Config) { c.SecretKeys = [][]byte{make([]byte, 16)} },
		"Label":      func(c *gossip.Config) { c.Label = "x" },
		"Name":       func(c *gossip.Config) { c.Name = "other" },
	} {
		cfg := gossip.TestConfig()
		cfg.Host = a.host
		tweak(&cfg)
		name := "a"
		if field == "Name" {
			name = "other"
		}
		_, err := gossip.New(cfg, newTracker(t, name))
		require.ErrorIs(t, err, gossip.ErrInvalidConfig, field)
		require.Contains(t, err.Error(), field)
	}
}

package gossip

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/testcluster/memnet"
	"github.com/headcount-io/headcount/tracker"
)

// senderTestNode starts a node named name with tracker epoch epoch on net, joined to join (if
// set); before (if set) runs on its tracker before the node starts.
func senderTestNode(t *testing.T, net *memnet.Network, name string, epoch uint64, join string, before func(*tracker.Tracker)) (*Node, *memnet.Transport) {
	t.Helper()
	tp, err := net.NewTransport("")
	require.NoError(t, err)
	tc := tracker.LocalConfig()
	tc.Name, tc.Epoch = name, epoch
	tr, err := tracker.New(tc)
	require.NoError(t, err)
	if before != nil {
		before(tr)
	}
	cfg := TestConfig()
	cfg.Transport = tp
	if join != "" {
		cfg.Join = []string{join}
	}
	n, err := New(cfg, tr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	return n, tp
}

// until moves the bubble's virtual clock in 1 ms steps until cond holds (at most a minute).
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 60_000 {
			t.Fatalf("%s: not within a minute of virtual time", what)
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
	}
}

// A frame whose short id names no member this node knows is dropped: its ops are attributed to
// no one, not even to the member with the sender's name. Here p restarted (epoch 2) and v has
// not seen the new incarnation yet. p/2's first delta is built so that it would apply to p/1's
// partition if the receiver took it for p/1, as any receiver that guessed from the name or
// from a reused id would. The same delta under p/1's own id applies, so only the id tells them
// apart. Once membership announces p/2, catch-up brings its presence.
func TestUnknownShortIDIsDroppedThenCaughtUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New(memnet.Options{})
		defer func() {
			_ = net.Close()
			time.Sleep(time.Second) // memberlist's in-flight probes end inside the bubble
		}()
		v, _ := senderTestNode(t, net, "v", 1, "", nil)
		p, ptp := senderTestNode(t, net, "p", 1, v.Addr(), nil)
		_, err := p.Tracker().Track(1, "room", "", nil)
		require.NoError(t, err)
		until(t, "v counts p's presence", func() bool { return v.Tracker().Count("room").Viewers == 1 })

		p1 := p.Tracker().Self()
		p2 := crdt.Replica{Name: p1.Name, Epoch: p1.Epoch + 1}
		seq := seqOf(v.Tracker(), p1)
		next := func(owner crdt.Replica) []byte {
			e := &crdt.Entry{Ref: seq + 1, Topic: "room", Conn: 99}
			b, err := crdt.MarshalBody(owner, &crdt.Delta{Owner: owner, From: seq, To: seq + 1, Ops: []crdt.Op{{Ref: e.Ref, Entry: e}}})
			require.NoError(t, err)
			return testFrame(owner, true, b)
		}
		stats, applied := v.Stats(), v.Tracker().Stats().DeltasApplied
		v.receive(next(p2))
		synctest.Wait()
		require.Equal(t, stats.UnknownSender+1, v.Stats().UnknownSender, "dropped as unknown")
		require.Equal(t, stats.MessagesHandled, v.Stats().MessagesHandled, "nothing reached the tracker")
		require.Equal(t, applied, v.Tracker().Stats().DeltasApplied)
		require.Equal(t, 1, v.Tracker().Count("room").Viewers, "p/2's op was not given to p/1")

		v.receive(next(p1)) // the control: the same delta under p/1's id is p/1's
		synctest.Wait()
		require.Equal(t, 2, v.Tracker().Count("room").Viewers, "a known short id resolves")

		// p crashes and comes back as p/2 with one presence, tracked before it joins: v learns
		// it only through membership (ReplicaUp) and catch-up.
		require.NoError(t, ptp.Shutdown())
		require.NoError(t, p.Close())
		pb, _ := senderTestNode(t, net, "p", p2.Epoch, v.Addr(), func(tr *tracker.Tracker) {
			_, err := tr.Track(1, "room2", "", nil)
			require.NoError(t, err)
		})
		require.Equal(t, p2, pb.Tracker().Self())
		until(t, "v counts p/2's presence and no longer p/1's", func() bool {
			return v.Tracker().Count("room2").Viewers == 1 && v.Tracker().Count("room").Viewers == 0
		})
	})
}

// collidingReplicas returns two replicas of different names with the same short id (found by
// a fixed search, so every run uses the same pair).
func collidingReplicas(t *testing.T) (crdt.Replica, crdt.Replica) {
	t.Helper()
	seen := make(map[uint32]uint64, 1<<17)
	for e := uint64(1); e <= 1<<17; e++ {
		seen[shortID(crdt.Replica{Name: "c", Epoch: e})] = e
	}
	for e := uint64(1); e < 1<<24; e++ {
		d := crdt.Replica{Name: "d", Epoch: e}
		if ce, ok := seen[shortID(d)]; ok {
			return crdt.Replica{Name: "c", Epoch: ce}, d
		}
	}
	t.Fatal("no collision found")
	return crdt.Replica{}, crdt.Replica{}
}

// Two members with one short id: the id resolves to neither (a receiver never picks one), and a
// node whose own id another member has names itself in full.
func TestSharedShortIDResolvesToNobody(t *testing.T) {
	c, d := collidingReplicas(t)
	require.Equal(t, shortID(c), shortID(d))
	rec := func(r crdt.Replica) *member {
		return &member{meta: nodeMeta{Epoch: r.Epoch, Protocol: ProtocolVersion}}
	}
	other := crdt.Replica{Name: "o", Epoch: 5}
	n := &Node{self: crdt.Replica{Name: "self", Epoch: 1}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		members: map[string]*member{"c": rec(c), "d": rec(d), "o": rec(other)}}
	n.senders.init(n.self)
	n.rebuildSenders()
	_, ok := n.frameFrom(frameSender{short: true, id: shortID(c)})
	require.False(t, ok, "a shared id resolves to nobody")
	got, ok := n.frameFrom(frameSender{short: true, id: shortID(other)})
	require.True(t, ok)
	require.Equal(t, other, got)
	require.Equal(t, frameHead(n.self, true), n.frameHead())

	// d leaves: c's id is c's again.
	delete(n.members, "d")
	n.rebuildSenders()
	got, ok = n.frameFrom(frameSender{short: true, id: shortID(c)})
	require.True(t, ok)
	require.Equal(t, c, got)

	// This node is d: c has its id, so it names itself in full, and frames naming the id
	// resolve to nobody.
	n.self = d
	n.senders.init(d)
	n.rebuildSenders()
	require.Equal(t, frameHead(d, false), n.frameHead())
	_, ok = n.frameFrom(frameSender{short: true, id: shortID(c)})
	require.False(t, ok)
	// Members of another protocol or with a bad meta are not in the table.
	n.members = map[string]*member{"o": {meta: nodeMeta{Epoch: 5, Protocol: ProtocolVersion + 1}}}
	n.rebuildSenders()
	_, ok = n.frameFrom(frameSender{short: true, id: shortID(other)})
	require.False(t, ok)
	require.Equal(t, frameHead(d, true), n.frameHead(), "short again once nobody has its id")
}

// v1Delegate is a memberlist delegate publishing a fixed node meta: a node of another version.
type v1Delegate struct{ meta []byte }

func (d v1Delegate) NodeMeta(int) []byte                 { return d.meta }
func (d v1Delegate) NotifyMsg([]byte)                    {}
func (d v1Delegate) GetBroadcasts(int, int) [][]byte     { return nil }
func (d v1Delegate) LocalState(bool) []byte              { return nil }
func (d v1Delegate) MergeRemoteState(buf []byte, _ bool) {}

// syncBuffer is a bytes.Buffer for a logger written by the worker and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Mixed versions: a node of protocol 1 (the wire before short ids) in the cluster is listed as
// incompatible with a Warn that names both versions, is never counted, and its frames are
// refused as bad frames: nothing it sends reaches the tracker.
func TestProtocol1PeerRefusedCleanly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New(memnet.Options{})
		defer func() {
			_ = net.Close()
			time.Sleep(time.Second)
		}()
		tp, err := net.NewTransport("")
		require.NoError(t, err)
		tc := tracker.LocalConfig()
		tc.Name, tc.Epoch = "a", 1
		tr, err := tracker.New(tc)
		require.NoError(t, err)
		var logs syncBuffer
		cfg := TestConfig()
		cfg.Transport = tp
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		a, err := New(cfg, tr)
		require.NoError(t, err)
		defer func() { _ = a.Close() }()

		tx, err := net.NewTransport("")
		require.NoError(t, err)
		mc := memberlist.DefaultLocalConfig()
		mc.Name, mc.Transport = "old", tx
		mc.Delegate = v1Delegate{meta: nodeMeta{Epoch: 7, Protocol: 1}.encode()}
		mc.LogOutput = io.Discard
		ml, err := memberlist.Create(mc)
		require.NoError(t, err)
		defer func() { _ = ml.Shutdown() }()
		_, err = ml.Join([]string{a.Addr()})
		require.NoError(t, err)
		until(t, "the old node listed as incompatible", func() bool {
			for _, m := range a.Members() {
				if m.Name == "old" {
					return m.Status == StatusIncompatible
				}
			}
			return false
		})
		require.Contains(t, logs.String(), "gossip: member ignored")
		require.Contains(t, logs.String(), "protocol 1, want 2")
		require.Equal(t, 1, a.NumMembers())

		// A version-1 frame: magic 'H', version 1, one length-prefixed msgpack delta.
		var local *memberlist.Node
		for _, m := range ml.Members() {
			if m.Name == "a" {
				local = m
			}
		}
		require.NotNil(t, local)
		before := a.Stats()
		require.NoError(t, ml.SendBestEffort(local, []byte{0x48, 1, 9, 0x99, 1, 1, 0xa3, 'o', 'l', 'd', 7, 0xc0, 0xc0}))
		until(t, "the frame counted", func() bool { return a.Stats().FramesReceived > before.FramesReceived })
		require.Equal(t, before.DecodeErrors+1, a.Stats().DecodeErrors)
		require.Equal(t, before.MessagesHandled, a.Stats().MessagesHandled)
	})
}

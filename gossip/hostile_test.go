package gossip

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	crand "crypto/rand"
	"io"
	"log"
	"net"
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

// Corrupt, truncated and oversized input is counted and dropped, never a panic, and the node keeps
// working afterwards.
func TestHostileInputIsCountedNotFatal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New(memnet.Options{})
		defer func() {
			_ = net.Close()
			time.Sleep(time.Second) // memberlist's in-flight probes end inside the bubble
		}()
		tp, err := net.NewTransport("")
		require.NoError(t, err)
		tc := tracker.LocalConfig()
		tc.Name = "victim"
		tr, err := tracker.New(tc)
		require.NoError(t, err)
		cfg := TestConfig()
		cfg.Transport = tp
		cfg.MaxPacketSize = 100
		cfg.MaxMessageSize = 1000
		cfg.InboxBytes, cfg.PeerQueueBytes = 1000, 1000
		n, err := New(cfg, tr)
		require.NoError(t, err)
		defer n.Close()

		n.receive([]byte{})                 // empty
		n.receive([]byte("GET / HTTP/1.1")) // not a frame
		peer := crdt.Replica{Name: "peer", Epoch: 1}
		n.receive(testFrame(peer, false, []byte{0xc1, 0xff, 0x00}))                    // a frame with a corrupt message
		n.receive(append(frameHead(peer, false), 0xff, 0xff))                          // truncated length
		n.receive(append(frameHead(peer, false), make([]byte, 2000)...))               // over the limit
		n.receive([]byte{0x48, 1, 5, 0x99, 1, 1, 0xa1, 'a', 1})                        // a protocol 1 frame
		n.receive(testFrame(crdt.Replica{Name: "x", Epoch: 1}, true, []byte{0x05, 0})) // a short id no member has
		synctest.Wait()                                                                // the worker has handled the inbox
		s := n.Stats()
		require.Equal(t, uint64(5), s.DecodeErrors, "%+v", s)
		require.Equal(t, uint64(1), s.UnknownSender, "%+v", s)
		require.Equal(t, uint64(1), s.Oversize, "%+v", s)

		_, err = tr.Track(1, "still-alive", "", nil)
		require.NoError(t, err)
		require.Equal(t, 1, tr.Count("still-alive").Viewers)
	})
}

// An attacker on the gossip network, on real UDP sockets on loopback. The packets are built as an
// outsider would: this package's frame around crdt.MarshalBody of a forged message, behind
// memberlist's user-message byte and the cluster label (not a secret), sent from a raw socket.
// Genuine packets are captured on the wire by a transport wrapper on the owner node.

// mlUserMsg is memberlist's message type for delegate messages (userMsg in memberlist v0.7's
// net.go; part of its wire protocol).
const (
	mlUserMsg = 8
	mlCrcMsg  = 12
)

// capturingTransport is memberlist's UDP/TCP transport that keeps a copy of every packet it sends,
// as a sniffer on the path would.
type capturingTransport struct {
	*memberlist.NetTransport
	mu   sync.Mutex
	sent [][]byte
}

func newCapturingTransport(t testing.TB) *capturingTransport {
	t.Helper()
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{"127.0.0.1"}, Logger: log.New(io.Discard, "", 0)})
	require.NoError(t, err)
	return &capturingTransport{NetTransport: nt}
}

func (c *capturingTransport) captured() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sent)
}

func (c *capturingTransport) record(b []byte) {
	c.mu.Lock()
	c.sent = append(c.sent, bytes.Clone(b))
	c.mu.Unlock()
}

func (c *capturingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	c.record(b)
	return c.NetTransport.WriteTo(b, addr)
}

func (c *capturingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	c.record(b)
	return c.NetTransport.WriteToAddress(b, a)
}

// find returns the first captured packet that opens with key into a frame sent by from holding a
// message match accepts.
func (c *capturingTransport) find(key []byte, label string, from crdt.Replica, match func(crdt.Message) bool) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, pkt := range c.sent {
		plain, ok := openPacket(key, label, pkt)
		if ok && len(plain) >= 5 && plain[0] == mlCrcMsg {
			plain = plain[5:] // type, CRC-32; memberlist adds it for peers of protocol >= 5
		}
		if !ok || len(plain) < 2 || plain[0] != mlUserMsg {
			continue
		}
		found := false
		pf, err := parseFrame(plain[1:])
		if err != nil || (pf.sender.short && pf.sender.id != shortID(from)) || (!pf.sender.short && pf.sender.full != from) {
			continue
		}
		_ = pf.each(1<<20, func(msg []byte) {
			if m, err := crdt.UnmarshalBody(from, msg); err == nil && match(m) {
				found = true
			}
		})
		if found {
			return pkt
		}
	}
	return nil
}

// sealPacket builds the datagram memberlist sends for plain under key (AES-GCM, encryption
// version 1: version byte, 12-byte nonce, ciphertext and tag, the label as additional data),
// behind the label header. A nil key sends it in clear.
func sealPacket(t *testing.T, key []byte, label string, plain []byte) []byte {
	t.Helper()
	buf := plain
	if key != nil {
		gcm := newGCM(t, key)
		nonce := make([]byte, gcm.NonceSize())
		_, err := crand.Read(nonce)
		require.NoError(t, err)
		buf = append([]byte{1}, nonce...)
		buf = gcm.Seal(buf, nonce, plain, []byte(label))
	}
	out, err := memberlist.AddLabelHeaderToPacket(buf, label)
	require.NoError(t, err)
	return out
}

func openPacket(key []byte, label string, pkt []byte) ([]byte, bool) {
	buf, got, err := memberlist.RemoveLabelHeaderFromPacket(pkt)
	if key == nil && err == nil && got == label {
		return buf, true // no key: the packet is in clear
	}
	if err != nil || got != label || len(buf) < 1+12+16 || buf[0] != 1 {
		return nil, false
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, false
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, false
	}
	plain, err := gcm.Open(nil, buf[1:13], buf[13:], []byte(label))
	return plain, err == nil
}

func newGCM(t *testing.T, key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	gcm, err := cipher.NewGCM(block)
	require.NoError(t, err)
	return gcm
}

// userPacket is the plaintext of a memberlist user message carrying msgs from "from", named in
// full (as a forger who knows the victim's members would; a short id is as easy to forge).
func userPacket(t *testing.T, from crdt.Replica, msgs ...crdt.Message) []byte {
	t.Helper()
	var bodies [][]byte
	for _, m := range msgs {
		b, err := crdt.MarshalBody(from, m)
		require.NoError(t, err)
		bodies = append(bodies, b)
	}
	return append([]byte{mlUserMsg}, testFrame(from, false, bodies...)...)
}

// hostileNode starts a node on real UDP/TCP on 127.0.0.1; grace is the tracker's GoodbyeGrace
// (0 = default) and tp its transport (nil = memberlist's own).
func hostileNode(t testing.TB, name string, keys [][]byte, tp memberlist.Transport, grace time.Duration, join ...string) *Node {
	t.Helper()
	tc := tracker.LocalConfig()
	tc.Name = name
	if grace > 0 {
		tc.GoodbyeGrace = grace
	}
	tr, err := tracker.New(tc)
	require.NoError(t, err)
	cfg := TestConfig()
	cfg.Label = "hostile"
	cfg.SecretKeys = keys
	cfg.Transport = tp
	cfg.Join = join
	n, err := New(cfg, tr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// attacker is a raw UDP socket aimed at a victim's gossip port.
type attacker struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
}

func newAttacker(t *testing.T, victim *Node) *attacker {
	t.Helper()
	to, err := net.ResolveUDPAddr("udp", victim.Addr())
	require.NoError(t, err)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return &attacker{t: t, conn: conn, to: to}
}

func (a *attacker) send(pkt []byte) {
	a.t.Helper()
	_, err := a.conn.WriteToUDP(pkt, a.to)
	require.NoError(a.t, err)
}

const hostileWait = 10 * time.Second

// waitFor polls cond until it holds, at most hostileWait.
func waitFor(t *testing.T, what string, cond func() bool, state func() any) {
	t.Helper()
	require.Eventually(t, cond, hostileWait, time.Millisecond, "%s: %+v", what, state())
}

// entriesOf returns the refs of owner's presences in topic as victim holds them.
func entriesOf(tr *tracker.Tracker, owner crdt.Replica, topic string) []crdt.Seq {
	var refs []crdt.Seq
	for _, p := range tr.List(topic) {
		if p.Node == owner {
			refs = append(refs, p.Ref)
		}
	}
	return refs
}

// seqOf is owner's sequence as tr holds it (what tr's digests say, in clear without a key).
func seqOf(tr *tracker.Tracker, owner crdt.Replica) crdt.Seq {
	for _, r := range tr.Replicas() {
		if r.Replica == owner {
			return r.Seq
		}
	}
	return 0
}

// forgeries are the messages an outsider sends "from" owner, whose chain is at seq cur with
// presences refs: (a) a goodbye of the live incarnation, (b) a delta whose sequence jumps to
// 2^40 with removes of every presence, and (b') a delta within a plausible range that removes
// every presence, fabricates one in topic and pushes the chain 10 past cur.
func forgeries(owner crdt.Replica, cur crdt.Seq, refs []crdt.Seq, topic string) (goodbye, jump, plausible crdt.Message) {
	const top = crdt.Seq(1) << 40
	var removes []crdt.Op
	for _, r := range refs {
		removes = append(removes, crdt.Op{Ref: r})
	}
	jumpOps := append([]crdt.Op(nil), removes...)
	jump = &crdt.Delta{Owner: owner, From: top - crdt.Seq(len(jumpOps)), To: top, Ops: jumpOps}
	to := cur + 10
	ops := append([]crdt.Op(nil), removes...)
	for crdt.Seq(len(ops)) < to-1 {
		ops = append(ops, crdt.Op{Ref: refs[0]}) // removing a removed ref is a no-op, and legal
	}
	ops = append(ops, crdt.Op{Ref: to, Entry: &crdt.Entry{Ref: to, Topic: topic, Conn: 99}})
	plausible = &crdt.Delta{Owner: owner, From: 0, To: to, Ops: ops}
	return &crdt.Goodbye{Replica: owner}, jump, plausible
}

// With a gossip key, nothing an outsider sends changes a count: forged goodbyes and deltas in
// clear or under a foreign key and corrupt packets are refused by memberlist (and counted in
// PacketsRefused); genuine packets replayed from the wire are accepted by memberlist, which has no
// replay protection, and change nothing because every message is idempotent: a replayed delta is
// stale, and a replayed goodbye names an incarnation that has left for good.
func TestHostileGossipWithKeyChangesNothing(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	foreign := []byte("fedcba9876543210fedcba9876543210")
	const label, room = "hostile", "room"
	tp := newCapturingTransport(t)
	a := hostileNode(t, "a", [][]byte{key}, tp, 0)
	v := hostileNode(t, "victim", [][]byte{key}, nil, 0, a.Addr())
	for i := range 3 {
		_, err := a.Tracker().Track(tracker.Owner(i+1), room, "", nil)
		require.NoError(t, err)
	}
	truth := func() tracker.Counts { return a.Tracker().Count(room) }
	counted := func() bool { return v.Tracker().Count(room) == truth() }
	waitFor(t, "victim counts a's presences", counted, func() any { return v.Tracker().Count(room) })
	self := a.Tracker().Self()
	// The victim has applied a's delta; find it on the wire.
	var genuine []byte
	waitFor(t, "a's delta captured", func() bool {
		genuine = tp.find(key, label, self, func(m crdt.Message) bool {
			d, ok := m.(*crdt.Delta)
			return ok && d.Owner == self && len(d.Ops) > 0
		})
		return genuine != nil
	}, func() any { return tp.captured() })

	goodbye, jump, plausible := forgeries(self, seqOf(v.Tracker(), self), entriesOf(v.Tracker(), self, room), room)
	corrupt := bytes.Clone(genuine)
	corrupt[len(corrupt)-1] ^= 0x40 // one flipped bit: the GCM tag no longer matches
	junk := make([]byte, 200)
	_, _ = crand.Read(junk)
	attacks := []struct {
		name string
		pkt  []byte
	}{
		{"goodbye in clear", sealPacket(t, nil, label, userPacket(t, self, goodbye))},
		{"sequence jump in clear", sealPacket(t, nil, label, userPacket(t, self, jump))},
		{"plausible delta in clear", sealPacket(t, nil, label, userPacket(t, self, plausible))},
		{"goodbye under a foreign key", sealPacket(t, foreign, label, userPacket(t, self, goodbye))},
		{"plausible delta under a foreign key", sealPacket(t, foreign, label, userPacket(t, self, plausible))},
		{"genuine packet, one bit flipped", corrupt},
		{"random bytes", sealPacket(t, nil, label, junk)},
	}
	evil := newAttacker(t, v)
	invalid := v.Tracker().Stats().Invalid
	for _, at := range attacks {
		before := v.Stats()
		evil.send(at.pkt)
		waitFor(t, at.name+": refused", func() bool { return v.Stats().PacketsRefused == before.PacketsRefused+1 },
			func() any { return v.Stats() })
		require.Equal(t, truth(), v.Tracker().Count(room), at.name)
		require.Equal(t, invalid, v.Tracker().Stats().Invalid, at.name)
	}
	require.Zero(t, v.Stats().DecodeErrors, "nothing forged reached the frame decoder")

	// A replayed delta is decrypted and handled: stale, nothing changes.
	before := v.Tracker().Stats()
	evil.send(genuine)
	waitFor(t, "replayed delta handled as stale", func() bool { return v.Tracker().Stats().Stale > before.Stale },
		func() any { return v.Tracker().Stats() })
	require.Equal(t, truth(), v.Tracker().Count(room))

	// The chain is not frozen and nothing was hidden: a's next presence is counted.
	_, err := a.Tracker().Track(4, room, "", nil)
	require.NoError(t, err)
	waitFor(t, "a's next presence counted", func() bool { return v.Tracker().Count(room).Viewers == 4 },
		func() any { return v.Tracker().Count(room) })
	require.Zero(t, v.Tracker().Stats().GoodbyesUndone, "no forged goodbye was ever applied")

	// a leaves: its goodbye is on the wire. A new incarnation of a comes up; the old goodbye,
	// replayed, names the incarnation that left and is ignored.
	require.NoError(t, a.Leave(context.Background()))
	var bye []byte
	waitFor(t, "a's goodbye captured", func() bool {
		bye = tp.find(key, label, self, func(m crdt.Message) bool { _, ok := m.(*crdt.Goodbye); return ok })
		return bye != nil
	}, func() any { return tp.captured() })
	waitFor(t, "a's leave applied", func() bool { return v.Tracker().Count(room) == tracker.Counts{} },
		func() any { return v.Tracker().Count(room) })
	a2 := hostileNode(t, "a", [][]byte{key}, nil, 0, v.Addr())
	require.NotEqual(t, self, a2.Tracker().Self())
	_, err = a2.Tracker().Track(1, room, "", nil)
	require.NoError(t, err)
	truth = func() tracker.Counts { return a2.Tracker().Count(room) }
	waitFor(t, "victim counts the new incarnation", counted, func() any { return v.Tracker().Count(room) })
	before = v.Tracker().Stats()
	unknown := v.Stats().UnknownSender
	evil.send(bye)
	// It names the old incarnation by short id, which no member has now: the frame is dropped
	// before the tracker sees it (a goodbye in full would reach it and be ignored there).
	waitFor(t, "replayed goodbye dropped or ignored", func() bool {
		return v.Stats().UnknownSender > unknown || v.Tracker().Stats().Ignored > before.Ignored
	}, func() any { return v.Tracker().Stats() })
	require.Equal(t, truth(), v.Tracker().Count(room))
	_, err = a2.Tracker().Track(2, room, "", nil)
	require.NoError(t, err)
	waitFor(t, "the new incarnation's next presence counted", func() bool { return v.Tracker().Count(room).Viewers == 2 },
		func() any { return v.Tracker().Count(room) })
}

// Without a key (allowed on loopback only, or with --insecure-gossip) the risk is the one
// docs/operations.md "Security model" states: an outsider who knows a live node's name and epoch
// (public in /v1/members) and its sequence (in every digest) deletes, fabricates and freezes that
// node's presences with one crafted delta, for good: anti-entropy does not repair it. What the
// tracker's defence in depth does refuse is shown too: a forged goodbye of a live node hides its
// presences only until GoodbyeGrace, and a sequence jump far beyond what the node could have
// produced is refused.
func TestHostileGossipWithoutKeyShowsTheRisk(t *testing.T) {
	const label, room = "hostile", "room"
	const grace = time.Second
	a := hostileNode(t, "a", nil, nil, 0)
	v := hostileNode(t, "victim", nil, nil, grace, a.Addr())
	for i := range 3 {
		_, err := a.Tracker().Track(tracker.Owner(i+1), room, "", nil)
		require.NoError(t, err)
	}
	truth := func() tracker.Counts { return a.Tracker().Count(room) }
	waitFor(t, "victim counts a's presences", func() bool { return v.Tracker().Count(room) == truth() },
		func() any { return v.Tracker().Count(room) })
	var self crdt.Replica
	for _, m := range v.Members() {
		if m.Name == "a" {
			self = crdt.Replica{Name: m.Name, Epoch: m.Epoch} // what /v1/members shows
		}
	}
	require.Equal(t, a.Tracker().Self(), self)
	goodbye, jump, plausible := forgeries(self, seqOf(v.Tracker(), self), entriesOf(v.Tracker(), self, room), room)
	evil := newAttacker(t, v)

	// (a) A forged goodbye hides a's presences at once, and they come back after GoodbyeGrace
	// because membership never confirms the leave.
	evil.send(sealPacket(t, nil, label, userPacket(t, self, goodbye)))
	waitFor(t, "forged goodbye hides a", func() bool { return v.Tracker().Count(room) == tracker.Counts{} },
		func() any { return v.Tracker().Count(room) })
	waitFor(t, "forged goodbye undone after GoodbyeGrace", func() bool {
		return v.Tracker().Stats().GoodbyesUndone == 1 && v.Tracker().Count(room) == truth()
	}, func() any { return v.Tracker().Stats() })

	// (b) A sequence jump to 2^40 is refused as implausible.
	before := v.Tracker().Stats()
	evil.send(sealPacket(t, nil, label, userPacket(t, self, jump)))
	waitFor(t, "sequence jump refused", func() bool { return v.Tracker().Stats().Invalid == before.Invalid+1 },
		func() any { return v.Tracker().Stats() })
	require.Equal(t, truth(), v.Tracker().Count(room))

	// (b') A delta within the plausible range is applied: a's presences are deleted, one is
	// fabricated, and a's chain on the victim is pushed past a's own.
	evil.send(sealPacket(t, nil, label, userPacket(t, self, plausible)))
	forged := tracker.Counts{Viewers: 1, Connections: 1}
	waitFor(t, "plausible forged delta applied", func() bool { return v.Tracker().Count(room) == forged },
		func() any { return v.Tracker().Count(room) })
	// Anti-entropy never repairs it: a's digests say a is behind the victim, so nobody asks.
	// And a's next presence is a stale delta to the victim: the partition is frozen.
	handled := v.Stats().MessagesHandled
	stale := v.Tracker().Stats().Stale
	_, err := a.Tracker().Track(4, room, "", nil)
	require.NoError(t, err)
	waitFor(t, "a's next delta arrives, stale", func() bool {
		return v.Tracker().Stats().Stale > stale && v.Stats().MessagesHandled >= handled+10
	}, func() any { return v.Tracker().Stats() })
	require.Equal(t, tracker.Counts{Viewers: 4, Connections: 4}, truth())
	require.Equal(t, forged, v.Tracker().Count(room), "the forgery stands")

	// Corrupt bytes are counted and dropped; they change nothing.
	decode := v.Stats().DecodeErrors
	evil.send(sealPacket(t, nil, label, append([]byte{mlUserMsg}, testFrame(self, false, []byte{0xc1, 0xff})...)))
	waitFor(t, "corrupt message counted", func() bool { return v.Stats().DecodeErrors == decode+1 },
		func() any { return v.Stats() })
	require.Equal(t, forged, v.Tracker().Count(room))
}

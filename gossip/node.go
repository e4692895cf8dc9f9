package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// Member is one cluster member as this node sees it.
type Member struct {
	Name     string `json:"name"`
	Addr     string `json:"addr"` // gossip address, host:port
	HTTP     string `json:"http"` // public HTTP address from the node meta; may be empty
	Status   string `json:"status"`
	Epoch    uint64 `json:"epoch"`
	Protocol uint64 `json:"protocol"`
	Self     bool   `json:"self"`
}

// Node links one tracker to the cluster. Create it with New; stop it with Leave (graceful) or
// Close (as if it crashed). All methods are safe for concurrent use.
type Node struct {
	cfg   Config
	tr    *tracker.Tracker
	self  crdt.Replica
	log   *slog.Logger
	meta  []byte
	ml    *memberlist.Memberlist
	kr    *memberlist.Keyring
	addr  string
	coll  *collector
	mlLog *logWriter

	events   *eventQueue
	inbox    chan []byte
	inboxLen atomic.Int64 // bytes in inbox
	leaveCh  chan chan []goodbye
	stats    counters

	// peers is owned by the worker goroutine.
	peers map[string]*peer

	mu      sync.Mutex
	members map[string]Member    // live members, self included; updated by event callbacks
	known   map[string]knownPeer // peers to re-join while memberlist does not see them alive
	byes    map[string]uint64    // name -> epoch of peers that sent a goodbye

	lifeMu    sync.Mutex // serialises memberlist Leave and Shutdown
	leaving   atomic.Bool
	closed    atomic.Bool
	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

type knownPeer struct {
	addr     string
	lastSeen time.Time
	alive    bool
}

type goodbye struct {
	node  memberlist.Node
	frame []byte
}

// New starts memberlist with cfg, joins the seeds in cfg.Join (one attempt per seed, each bounded
// by TCPTimeout, then retries in the background if none answered) and starts the worker that
// drives t. t must not be driven by anyone else. The node is stopped by Leave or Close; t stays
// usable for reads afterwards.
//
// Errors wrap ErrInvalidConfig for a bad cfg, or come from memberlist (for example a port in use)
// or from cfg.Registerer.
func New(cfg Config, t *tracker.Tracker) (*Node, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: tracker is nil", ErrInvalidConfig)
	}
	self := t.Self()
	if cfg.Name == "" {
		cfg.Name = self.Name
	}
	if cfg.Name != self.Name {
		return nil, fmt.Errorf("%w: Name %q differs from the tracker's %q", ErrInvalidConfig, cfg.Name, self.Name)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.BroadcastInterval == 0 {
		cfg.BroadcastInterval = t.Config().BroadcastInterval
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	lg = lg.With("node", cfg.Name)
	n := &Node{
		cfg:     cfg,
		tr:      t,
		self:    self,
		log:     lg,
		meta:    nodeMeta{Epoch: self.Epoch, Protocol: ProtocolVersion, HTTP: cfg.HTTPAddr}.encode(),
		events:  newEventQueue(),
		inbox:   make(chan []byte, cfg.InboxSize),
		leaveCh: make(chan chan []goodbye),
		peers:   make(map[string]*peer),
		members: make(map[string]Member),
		known:   make(map[string]knownPeer),
		byes:    make(map[string]uint64),
		stop:    make(chan struct{}),
	}
	mc, err := cfg.memberlistConfig()
	if err != nil {
		return nil, err
	}
	mc.LogOutput = nil
	n.mlLog = &logWriter{l: lg}
	mc.Logger = log.New(n.mlLog, "", 0)
	d := &delegate{n: n}
	mc.Delegate = d
	mc.Events = d
	n.kr = mc.Keyring
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start memberlist: %w", err)
	}
	n.ml = ml
	n.addr = ml.LocalNode().Address()
	if cfg.Registerer != nil {
		n.coll = newCollector(n)
		if err := cfg.Registerer.Register(n.coll); err != nil {
			_ = ml.Shutdown()
			n.mlLog.close()
			return nil, fmt.Errorf("gossip: register metrics: %w", err)
		}
	}
	n.wg.Add(1)
	go n.run()
	if len(cfg.Join) > 0 {
		if k, err := ml.Join(cfg.Join); k == 0 {
			n.log.Info("gossip: no seed answered, retrying in the background", "seeds", cfg.Join, "err", err)
			n.wg.Add(1)
			go n.joinLoop()
		}
	}
	if cfg.RejoinInterval > 0 {
		n.wg.Add(1)
		go n.rejoinLoop()
	}
	return n, nil
}

// Addr returns the gossip address ("host:port") this node advertises.
func (n *Node) Addr() string { return n.addr }

// Tracker returns the tracker this node drives.
func (n *Node) Tracker() *tracker.Tracker { return n.tr }

// Keyring returns memberlist's keyring for key rotation (AddKey, UseKey, RemoveKey), or nil when
// encryption is off.
func (n *Node) Keyring() *memberlist.Keyring { return n.kr }

// Stats returns the node's traffic counters.
func (n *Node) Stats() Stats { return n.stats.snapshot() }

// Members returns the live members this node sees, itself included, sorted by name.
func (n *Node) Members() []Member {
	n.mu.Lock()
	out := make([]Member, 0, len(n.members))
	for _, m := range n.members {
		out = append(out, m)
	}
	n.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// NumMembers returns the number of live members, itself included.
func (n *Node) NumMembers() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.members)
}

// observe records a membership event in the member table. It runs inside memberlist's callbacks,
// so it only takes n.mu.
func (n *Node) observe(ev memberEvent) {
	node := ev.node
	meta, err := decodeMeta(node.Meta)
	n.mu.Lock()
	defer n.mu.Unlock()
	if ev.kind == evLeave {
		delete(n.members, node.Name)
		if e, ok := n.byes[node.Name]; ok && err == nil && e == meta.Epoch {
			delete(n.known, node.Name)
		} else if k, ok := n.known[node.Name]; ok {
			k.alive, k.lastSeen = false, time.Now()
			n.known[node.Name] = k
		}
		return
	}
	m := Member{Name: node.Name, Addr: node.Address(), Status: "alive", Self: node.Name == n.cfg.Name}
	if err == nil {
		m.Epoch, m.Protocol, m.HTTP = meta.Epoch, meta.Protocol, meta.HTTP
	}
	n.members[node.Name] = m
	if !m.Self {
		n.known[node.Name] = knownPeer{addr: m.Addr, lastSeen: time.Now(), alive: true}
	}
}

// receive hands a copy of a received frame to the worker without blocking.
func (n *Node) receive(b []byte) {
	if n.closed.Load() {
		return
	}
	if len(b) > n.cfg.MaxMessageSize+frameOverhead {
		n.stats.oversize.Add(1)
		return
	}
	if n.inboxLen.Add(int64(len(b))) > int64(n.cfg.InboxBytes) {
		n.inboxLen.Add(-int64(len(b)))
		n.stats.inboxDropped.Add(1)
		return
	}
	select {
	case n.inbox <- bytes.Clone(b):
	default:
		n.inboxLen.Add(-int64(len(b)))
		n.stats.inboxDropped.Add(1)
	}
}

// run is the worker: the only goroutine that calls the tracker's replication methods.
func (n *Node) run() {
	defer n.wg.Done()
	ticker := time.NewTicker(n.cfg.TickInterval)
	defer ticker.Stop()
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	defer flush.Stop()
	armed := false
	var last time.Time
	tick := func() {
		now := time.Now()
		out := n.tr.Tick(now)
		for _, o := range out {
			if _, ok := o.Msg.(*crdt.Delta); ok {
				last = now // only a flush of local changes opens a batching window
				break
			}
		}
		n.send(out)
	}
	for {
		select {
		case <-n.stop:
			return
		case <-n.events.sig:
			n.handleEvents()
		case f := <-n.inbox:
			// Membership first: a reply to a peer that just joined needs its join applied.
			select {
			case <-n.events.sig:
				n.handleEvents()
			default:
			}
			n.inboxLen.Add(-int64(len(f)))
			n.handleFrame(f)
		case <-n.tr.Pending():
			// Leading-edge batching: flush at once after a quiet spell, else at the end of the
			// current BroadcastInterval.
			if armed {
				continue
			}
			if wait := n.cfg.BroadcastInterval - time.Since(last); wait > 0 {
				flush.Reset(wait)
				armed = true
				continue
			}
			tick()
		case <-flush.C:
			armed = false
			tick()
		case <-ticker.C:
			tick()
		case reply := <-n.leaveCh:
			reply <- n.goodbyes()
		}
	}
}

func (n *Node) handleFrame(f []byte) {
	n.stats.framesReceived.Add(1)
	n.stats.bytesReceived.Add(uint64(len(f)))
	var out []tracker.Outbound
	err := splitFrame(f, n.cfg.MaxMessageSize, func(msg []byte) {
		from, m, err := crdt.Unmarshal(msg)
		if err != nil {
			n.stats.decodeErrors.Add(1)
			n.log.Debug("gossip: corrupt message", "err", err)
			return
		}
		if gb, ok := m.(*crdt.Goodbye); ok && gb.Replica == from {
			n.saidGoodbye(from)
		}
		n.stats.messagesHandled.Add(1)
		out = append(out, n.tr.Handle(from, m)...)
	})
	if err != nil {
		n.stats.decodeErrors.Add(1)
		n.log.Debug("gossip: corrupt frame", "err", err)
	}
	n.send(out)
}

// saidGoodbye records that r sent a goodbye. memberlist cannot tell a graceful leave from a
// failure (its Node.State is never set in callbacks), so the goodbye is the leave intent.
func (n *Node) saidGoodbye(r crdt.Replica) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.byes) > 4096 {
		clear(n.byes) // bounded; a lost entry only turns a later leave into a failure
	}
	n.byes[r.Name] = r.Epoch
}

// forget stops re-joining a peer that left for good.
func (n *Node) forget(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if k, ok := n.known[name]; ok && !k.alive {
		delete(n.known, name)
	}
}

func (n *Node) hasSaidGoodbye(r crdt.Replica) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	e, ok := n.byes[r.Name]
	return ok && e == r.Epoch
}

// handleEvents turns membership events into tracker calls.
func (n *Node) handleEvents() {
	for _, ev := range n.events.drain() {
		node := ev.node
		if node.Name == n.cfg.Name {
			continue
		}
		meta, err := decodeMeta(node.Meta)
		if err == nil && meta.Protocol != ProtocolVersion {
			err = fmt.Errorf("%w: protocol %d, want %d", ErrBadMeta, meta.Protocol, ProtocolVersion)
		}
		p := n.peers[node.Name]
		switch ev.kind {
		case evJoin, evUpdate:
			if err != nil {
				n.stats.badMeta.Add(1)
				n.log.Warn("gossip: ignoring peer", "peer", node.Name, "err", err)
				continue
			}
			if p == nil {
				p = &peer{name: node.Name, q: newStreamQueue(n.cfg.PeerQueueBytes)}
				p.node.Store(&node)
				n.peers[node.Name] = p
				n.wg.Add(1)
				go n.runSender(p)
			} else if p.epoch == meta.Epoch {
				p.node.Store(&node) // an address or meta change of the same incarnation
				continue
			}
			p.epoch = meta.Epoch
			p.node.Store(&node)
			r := crdt.Replica{Name: node.Name, Epoch: meta.Epoch}
			n.log.Debug("gossip: replica up", "replica", r)
			n.stats.joined.Add(1)
			n.send(n.tr.ReplicaUp(r))
		case evLeave:
			epoch := meta.Epoch
			if p != nil {
				epoch = p.epoch
				p.q.stop()
				delete(n.peers, node.Name)
			} else if err != nil {
				continue // never up as far as the tracker knows
			}
			r := crdt.Replica{Name: node.Name, Epoch: epoch}
			if n.hasSaidGoodbye(r) {
				n.forget(node.Name)
				n.log.Debug("gossip: replica left", "replica", r)
				n.stats.left.Add(1)
				n.tr.ReplicaLeft(r)
			} else {
				n.log.Warn("gossip: replica failed", "replica", r)
				n.stats.failed.Add(1)
				n.tr.ReplicaDown(r)
			}
		}
	}
}

// send encodes each outbound message once and sends it to its targets: frames that fit a
// datagram go best-effort at once, larger ones through the peer's stream queue.
func (n *Node) send(out []tracker.Outbound) {
	if len(out) == 0 || len(n.peers) == 0 {
		return
	}
	packets := make(map[*peer]*packer)
	for _, o := range out {
		b, err := crdt.Marshal(n.self, o.Msg)
		if err != nil {
			n.log.Warn("gossip: cannot encode message", "err", err)
			continue
		}
		if len(b) > n.cfg.MaxMessageSize {
			n.stats.oversize.Add(1)
			n.log.Warn("gossip: message too large, dropped", "bytes", len(b), "max", n.cfg.MaxMessageSize)
			continue
		}
		for _, p := range n.targets(o) {
			if frameHeader+msgCost(b) <= n.cfg.MaxPacketSize {
				pk := packets[p]
				if pk == nil {
					pk = &packer{limit: n.cfg.MaxPacketSize}
					packets[p] = pk
				}
				pk.add(b)
			} else if !p.q.push(b) {
				n.stats.queueDropped.Add(1)
			}
		}
	}
	for p, pk := range packets {
		for _, f := range pk.done() {
			n.sendPacket(p.node.Load(), f)
		}
	}
}

func (n *Node) sendPacket(to *memberlist.Node, f []byte) {
	if err := n.ml.SendBestEffort(to, f); err != nil {
		n.stats.sendErrors.Add(1)
		n.log.Debug("gossip: packet send failed", "peer", to.Name, "err", err)
		return
	}
	n.stats.packetsSent.Add(1)
	n.stats.packetBytesSent.Add(uint64(len(f)))
}

// targets resolves an Outbound's target to live peers.
func (n *Node) targets(o tracker.Outbound) []*peer {
	switch o.Target {
	case tracker.ToOne:
		if p := n.peers[o.To.Name]; p != nil && p.epoch == o.To.Epoch {
			return []*peer{p}
		}
		return nil
	case tracker.ToSome:
		all := make([]*peer, 0, len(n.peers))
		for _, p := range n.peers {
			all = append(all, p)
		}
		rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		if len(all) > n.cfg.Fanout {
			all = all[:n.cfg.Fanout]
		}
		return all
	default:
		all := make([]*peer, 0, len(n.peers))
		for _, p := range n.peers {
			all = append(all, p)
		}
		return all
	}
}

// goodbyes runs on the worker: it tells the tracker we leave, sends the goodbye to every live peer
// by datagram at once and returns the frames for the reliable copies.
func (n *Node) goodbyes() []goodbye {
	var out []goodbye
	for _, o := range n.tr.Leave() {
		b, err := crdt.Marshal(n.self, o.Msg)
		if err != nil {
			n.log.Warn("gossip: cannot encode goodbye", "err", err)
			continue
		}
		f := appendFrameMsg(nil, b)
		for _, p := range n.targets(o) {
			if len(f) <= n.cfg.MaxPacketSize {
				n.sendPacket(p.node.Load(), f)
			}
			out = append(out, goodbye{node: *p.node.Load(), frame: f})
		}
	}
	return out
}

// Leave leaves the cluster gracefully: it sends the tracker's goodbye to every live member (by
// datagram at once, then by reliable stream), so they drop this node's presences without waiting
// for failure detection, then leaves memberlist and closes the node. The tracker refuses new
// local presences afterwards. Without a deadline in ctx, Config.LeaveTimeout bounds it.
// It returns ErrClosed if the node was already closed or leaving; the node is closed when it
// returns, even on error.
func (n *Node) Leave(ctx context.Context) error {
	if n.closed.Load() || !n.leaving.CompareAndSwap(false, true) {
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
	if !n.closed.Load() {
		timeout := time.Millisecond
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) > timeout {
			timeout = time.Until(dl)
		}
		if err := n.ml.Leave(timeout); err != nil {
			errs = append(errs, fmt.Errorf("gossip: memberlist leave: %w", err))
		}
	}
	n.lifeMu.Unlock()
	errs = append(errs, n.Close())
	return errors.Join(errs...)
}

// sendGoodbyes sends the reliable goodbye copies in parallel and waits for them or ctx.
func (n *Node) sendGoodbyes(ctx context.Context, gs []goodbye) {
	done := make(chan struct{}, len(gs))
	for _, g := range gs {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := n.ml.SendReliable(&g.node, g.frame); err != nil {
				n.stats.sendErrors.Add(1)
				n.log.Debug("gossip: goodbye failed", "peer", g.node.Name, "err", err)
			}
			done <- struct{}{}
		}()
	}
	for range gs {
		select {
		case <-done:
		case <-ctx.Done():
			return
		}
	}
}

// Close stops the node without a goodbye: peers see a crash and hide its presences after failure
// detection. It waits for every goroutine of the node and is idempotent. Use Leave for a graceful
// stop.
func (n *Node) Close() error {
	var err error
	n.closeOnce.Do(func() {
		n.lifeMu.Lock()
		n.closed.Store(true)
		close(n.stop)
		err = n.ml.Shutdown()
		n.lifeMu.Unlock()
		n.wg.Wait()
		n.mlLog.close()
		if n.coll != nil {
			n.cfg.Registerer.Unregister(n.coll)
		}
	})
	return err
}

// logWriter routes memberlist's log lines to slog: [DEBUG] and [INFO] at debug level, the rest
// (warnings and errors, frequent during faults) at warn level.
// memberlist's goroutines can outlive its Shutdown; after Close the writer drops their lines.
type logWriter struct {
	l      *slog.Logger
	mu     sync.RWMutex
	closed bool
}

func (w *logWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return len(p), nil
	}
	line := string(bytes.TrimSpace(p))
	switch {
	case bytes.Contains(p, []byte("[DEBUG]")), bytes.Contains(p, []byte("[INFO]")):
		w.l.Debug(line)
	default:
		w.l.Warn(line)
	}
	return len(p), nil
}

package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/headcount-io/headcount/crdt"
	"github.com/headcount-io/headcount/tracker"
)

// Node links one tracker to the cluster. Create it with New; stop it with Leave (graceful) or
// Close (as if it crashed). All methods are safe for concurrent use.
//
// The files of this package split the node by concern, as memberlist does: node.go (assembly and
// accessors), state.go (lifecycle: Leave, Close), member.go (the member records and the published
// view), worker.go (the goroutine that drives the tracker), send.go (dissemination), peer.go (the
// per-peer stream queues), join.go (seeds and re-joins), delegate.go (memberlist's callbacks),
// transport.go (the UDP and TCP sockets of a node of our own),
// frame.go and meta.go (wire formats), logging.go (memberlist's log lines), host.go and
// section.go (carrying the node on a service's memberlist).
type Node struct {
	cfg   Config
	tr    *tracker.Tracker
	self  crdt.Replica
	log   *slog.Logger
	meta  []byte
	ml    *memberlist.Memberlist
	kr    *memberlist.Keyring
	addr  string
	coll  prometheus.Collector // nil without a Registerer
	mlLog *logWriter           // nil on a Host: memberlist's logs are the service's
	// host is the service's memberlist carrying this node (nil = a memberlist of our own), and
	// prefix its kind byte at the start of every frame we send.
	host   *Host
	prefix []byte
	// senders names this node in its frames and resolves the senders of received ones.
	senders senderTable

	events   *eventQueue
	inbox    chan []byte
	inboxLen atomic.Int64 // bytes in inbox
	leaveCh  chan chan []goodbye
	stats    counters

	// members is owned by the worker goroutine: one record per member name, the only place a
	// membership fact is kept. Readers get the published view.
	members map[string]*member
	// live caches the sender of every member with a peer (livePeers); nil = stale. Worker only:
	// every change of a member's peer goes through setPeer, which clears it.
	live   []*peer
	view   atomic.Pointer[[]Member]
	failed atomic.Pointer[[]failedPeer] // published with view, for the rejoin loop
	peers  atomic.Pointer[[]*peer]      // published with view, for the datagram checker
	// rejoinKick wakes the rejoin loop when a member fails (its fast rounds start at once) or a
	// failed member's newcomer is refused (its reclaim is timed); kick is the worker's note to
	// send it after the next publish.
	rejoinKick chan struct{}
	kick       bool
	// pendingLeaves counts the members with a leftAt. Worker only.
	pendingLeaves int

	// lifeMu serialises lifecycle transitions (state) with memberlist Leave and Shutdown and
	// with wg.Add outside the constructor, so Close's wg.Wait never races an Add.
	lifeMu sync.Mutex
	state  atomic.Uint32 // a State; written under lifeMu
	stop   chan struct{}
	wg     sync.WaitGroup
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
		members: make(map[string]*member),
		stop:    make(chan struct{}),
	}
	n.senders.init(self)
	n.view.Store(&[]Member{})
	n.failed.Store(&[]failedPeer{})
	n.peers.Store(&[]*peer{})
	n.rejoinKick = make(chan struct{}, 1)
	if cfg.Host != nil {
		if err := n.useHost(cfg.Host); err != nil {
			return nil, err
		}
	} else if err := n.createMemberlist(); err != nil {
		return nil, err
	}
	if cfg.Registerer != nil {
		n.coll = newCollector(n)
		if err := cfg.Registerer.Register(n.coll); err != nil {
			n.releaseMemberlist()
			return nil, fmt.Errorf("gossip: register metrics: %w", err)
		}
	}
	if n.host != nil {
		// Every live member is queued for the worker before it starts; the new meta spreads
		// whether or not memberlist has broadcast it within the bound.
		if err := n.host.attach(n, time.Millisecond); errors.Is(err, ErrHostInUse) {
			if n.coll != nil {
				cfg.Registerer.Unregister(n.coll)
			}
			return nil, err
		}
	}
	n.wg.Add(1)
	go n.run()
	if n.host == nil && len(cfg.Join) > 0 {
		if k, err := n.ml.Join(cfg.Join); k == 0 {
			n.log.Info("gossip: no seed answered, retrying in the background", "seeds", cfg.Join, "err", err)
			n.wg.Add(1)
			go n.joinLoop()
		} else {
			n.log.Info("gossip: joined", "seeds_answered", k, "members", n.ml.NumMembers())
		}
	}
	if n.host == nil && cfg.RejoinInterval > 0 {
		n.wg.Add(1)
		go n.rejoinLoop()
	}
	if cfg.DatagramCheckInterval > 0 {
		n.wg.Add(1)
		go n.checkDatagrams()
	}
	return n, nil
}

// createMemberlist starts the memberlist of our own, with this package's delegate.
func (n *Node) createMemberlist() error {
	mc, err := n.cfg.memberlistConfig()
	if err != nil {
		return err
	}
	mc.LogOutput = nil
	n.mlLog = newLogWriter(n.log)
	n.mlLog.refused = &n.stats.packetsRefused
	mc.Logger = log.New(n.mlLog, "", 0)
	d := &delegate{n: n}
	mc.Delegate = d
	mc.Events = d
	mc.Conflict = d
	n.kr = mc.Keyring
	var own *netTransport
	if n.cfg.Transport == nil {
		if own, err = newNetTransport(mc.BindAddr, mc.BindPort); err != nil {
			n.mlLog.close()
			return err
		}
		mc.Transport = own
		if n.cfg.AdvertisePort == 0 {
			mc.AdvertisePort = own.port
		}
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		if own != nil {
			_ = own.Shutdown()
		}
		n.mlLog.close()
		return fmt.Errorf("gossip: start memberlist: %w", err)
	}
	n.ml = ml
	n.addr = ml.LocalNode().Address()
	return nil
}

// useHost takes the service's memberlist; attach happens once the node is otherwise ready.
func (n *Node) useHost(h *Host) error {
	if name := h.ml.LocalNode().Name; name != n.cfg.Name {
		return fmt.Errorf("%w: Name %q differs from the Host memberlist's node name %q", ErrInvalidConfig, n.cfg.Name, name)
	}
	n.host, n.prefix = h, []byte{kindHeadcount}
	n.ml, n.kr = h.ml, h.kr
	n.addr = h.ml.LocalNode().Address()
	return nil
}

// releaseMemberlist undoes createMemberlist (nothing to undo on a Host).
func (n *Node) releaseMemberlist() {
	if n.host != nil {
		return
	}
	_ = n.ml.Shutdown()
	n.mlLog.close()
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

// receive hands a copy of a received frame to the worker without blocking.
func (n *Node) receive(b []byte) {
	if n.State() == StateShutdown {
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

package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/internal/solo"
	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/tracker/trackerprom"
	"github.com/headcount-io/headcount/webhook"
	"github.com/headcount-io/headcount/wsgateway"
)

// Node is one running Headcount node. Create it with New; stop it with Leave (graceful: peers
// drop its presences at once, clients reconnect elsewhere) or Close (as if it crashed). Its
// methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	tr      *tracker.Tracker
	gossip  *gossip.Node       // nil for a single node
	gw      *wsgateway.Gateway // nil without a Gateway section
	hook    *webhook.Hook      // nil without a Webhook section
	reg     *registry
	handler http.Handler
	admin   http.Handler // /v1/members and /metrics

	srv    *http.Server // nil without a Listener
	served chan error   // the owned server's Serve result, if it ends before a stop
	srvWG  sync.WaitGroup

	stopSolo func() // the single node's tick loop; nil with gossip

	started  time.Time // when New ran: the single node's Member.Since
	ready    atomic.Bool
	stopOnce sync.Once
	stopped  chan struct{} // closed when the first Leave or Close has finished
	stopErr  error
}

// New assembles and starts a node: the tracker, then gossip (which joins Gossip.Join) or the
// single node's tick loop, then the gateway, then the HTTP server on Listener. The node is
// ready (Ready, /readyz) when New returns. On error everything started is stopped again, and
// Config.Listener is left open (it is the caller's until New succeeds).
//
// Errors wrap ErrInvalidConfig for a bad node field, or name the section whose package refused
// it ("node: Gossip: ..."), or come from metrics registration.
func New(cfg Config) (_ *Node, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	n := &Node{cfg: cfg, log: lg, served: make(chan error, 1), stopped: make(chan struct{}), started: time.Now()}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	root := cfg.Registerer
	if root == nil {
		r := prometheus.NewRegistry()
		root = r
	}
	gather := cfg.Gatherer
	if gather == nil {
		gather, _ = root.(prometheus.Gatherer)
	}
	n.reg = newRegistry(cfg.Name, root)
	undo = append(undo, n.reg.unregisterAll)

	tc := cfg.Tracker
	tc.Name = cfg.Name
	tc.Logger = lg.With("component", "tracker")
	if n.tr, err = tracker.New(tc); err != nil {
		return nil, fmt.Errorf("node: Tracker: %w", err)
	}
	if err = n.reg.Register(trackerprom.New(n.tr)); err != nil {
		return nil, fmt.Errorf("node: metrics: %w", err)
	}

	if cfg.Gossip != nil {
		gc := *cfg.Gossip
		gc.Name = cfg.Name
		gc.Logger = lg.With("component", "gossip")
		gc.Registerer = n.reg
		if gc.HTTPAddr == "" && cfg.Listener != nil {
			gc.HTTPAddr = cfg.Listener.Addr().String()
		}
		if n.gossip, err = gossip.New(gc, n.tr); err != nil {
			return nil, fmt.Errorf("node: Gossip: %w", err)
		}
		undo = append(undo, func() { _ = n.gossip.Close() })
	} else {
		n.stopSolo = solo.Start(n.tr)
		undo = append(undo, n.stopSolo)
	}

	if cfg.Webhook != nil {
		hc := *cfg.Webhook
		hc.Tracker = n.tr
		hc.Members = n.aliveNames
		hc.Logger = lg
		hc.Registerer = n.reg
		if n.hook, err = webhook.New(hc); err != nil {
			return nil, fmt.Errorf("node: Webhook: %w", err)
		}
		undo = append(undo, func() { _ = n.hook.Close() })
	}

	if cfg.Gateway != nil {
		wc := *cfg.Gateway
		wc.Tracker = n.tr
		wc.Registerer = n.reg
		if wc.Partial == nil && n.gossip != nil {
			wc.Partial = n.partial
		}
		if wc.Logger == nil {
			wc.Logger = lg.With("component", "wsgateway")
		}
		if n.gw, err = wsgateway.New(wc); err != nil {
			return nil, fmt.Errorf("node: Gateway: %w", err)
		}
		undo = append(undo, func() { _ = n.gw.Shutdown(context.Background()) })
	}

	n.handler = n.routes(gather)
	if cfg.Listener != nil {
		n.serve(cfg.Listener)
	}
	n.ready.Store(true)
	return n, nil
}

// routes joins the gateway's routes with the node's own: the operator endpoints (/v1/members
// and /metrics, unless SeparateAdmin), and /healthz and /readyz when there is no gateway to
// serve them.
func (n *Node) routes(gather prometheus.Gatherer) http.Handler {
	admin := http.NewServeMux()
	admin.HandleFunc("GET /v1/members", n.serveMembers)
	if gather != nil {
		admin.Handle("GET /metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{}))
	}
	n.admin = admin
	mux := http.NewServeMux()
	if !n.cfg.SeparateAdmin {
		mux.Handle("GET /v1/members", admin)
		mux.Handle("GET /metrics", admin)
	}
	if n.gw != nil {
		mux.Handle("/", n.gw.Handler())
		return mux
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if n.Ready() {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
	})
	return mux
}

// serve runs the owned HTTP server on ln until the stop.
func (n *Node) serve(ln net.Listener) {
	if n.cfg.NewServer != nil {
		n.srv = n.cfg.NewServer(n.handler)
	} else {
		n.srv = &http.Server{Handler: n.handler, ReadHeaderTimeout: n.cfg.ReadHeaderTimeout}
	}
	if n.srv.ErrorLog == nil {
		n.srv.ErrorLog = slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)
	}
	n.srvWG.Add(1)
	go func() {
		defer n.srvWG.Done()
		if err := n.srv.Serve(ln); err != http.ErrServerClosed {
			n.served <- err
		}
	}()
}

// Handler returns the node's HTTP routes: the gateway's (/socket/websocket, /v1/topics/...,
// the demo page, /healthz, /readyz) plus /v1/members and /metrics. Mount it at the root of a
// mux, or let the node serve it on Config.Listener.
func (n *Node) Handler() http.Handler { return n.handler }

// AdminHandler returns the operator endpoints, GET /metrics and GET /v1/members. Handler serves
// them too unless Config.SeparateAdmin is set.
func (n *Node) AdminHandler() http.Handler { return n.admin }

// Tracker returns the node's tracker: counts, lists and, for an embedder, Track with owners
// from its NewOwner.
func (n *Node) Tracker() *tracker.Tracker { return n.tr }

// Gossip returns the node's gossip link (keyring, stats), or nil for a single node.
func (n *Node) Gossip() *gossip.Node { return n.gossip }

// Gateway returns the node's gateway, or nil without a Gateway section.
func (n *Node) Gateway() *wsgateway.Gateway { return n.gw }

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Name }

// HTTPAddr returns the address of Config.Listener, or "" without one.
func (n *Node) HTTPAddr() string {
	if n.cfg.Listener == nil {
		return ""
	}
	return n.cfg.Listener.Addr().String()
}

// Ready reports whether the node serves: true from New until Leave or Close begins. /readyz
// answers 200 exactly when it is true.
func (n *Node) Ready() bool { return n.ready.Load() }

// Err returns a channel that receives the owned HTTP server's error if it stops serving on
// its own (not by Leave or Close). It never receives without a Listener.
func (n *Node) Err() <-chan error { return n.served }

// Members returns this node's view of the cluster, itself included, sorted by name: gossip's
// live members, or this node alone for a single node.
func (n *Node) Members() []gossip.Member {
	if n.gossip != nil {
		return n.gossip.Members()
	}
	return []gossip.Member{{
		Name: n.cfg.Name, Status: gossip.StatusAlive, Since: n.started, Epoch: n.tr.Self().Epoch,
		Protocol: gossip.ProtocolVersion, HTTP: n.HTTPAddr(), Self: true,
	}}
}

// aliveNames returns the names of the live members (the webhook's view of who owns topics).
func (n *Node) aliveNames() []string {
	ms := n.Members()
	names := make([]string, 0, len(ms))
	for _, m := range ms {
		if m.Status == gossip.StatusAlive {
			names = append(names, m.Name)
		}
	}
	return names
}

// partial reports whether some member is not alive (failed, incompatible): counts then miss its
// presences (the gateway's "partial").
func (n *Node) partial() bool {
	for _, m := range n.gossip.Members() {
		if m.Status != gossip.StatusAlive {
			return true
		}
	}
	return false
}

// membersPayload is GET /v1/members.
type membersPayload struct {
	Node    string          `json:"node"`
	Members []gossip.Member `json:"members"`
}

func (n *Node) serveMembers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, membersPayload{Node: n.cfg.Name, Members: n.Members()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

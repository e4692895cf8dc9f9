package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/testcluster"
	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/wsgateway"
)

// demoFlags are the flags of 'headcount demo'.
type demoFlags struct {
	nodes    int
	httpBase string
	log      logFlags
}

// runDemo runs an in-process cluster on loopback with a gateway per node on
// consecutive ports, demo tokens on, until SIGINT/SIGTERM or ctx's end.
func runDemo(ctx context.Context, e *env, args []string) error {
	var d demoFlags
	fs := newFlagSet(e, "demo [--nodes N] [--http-base host:port]")
	fs.IntVar(&d.nodes, "nodes", 3, "number of nodes (1 to 64)")
	fs.StringVar(&d.httpBase, "http-base", "127.0.0.1:4000", "HTTP address of node 0; node i listens on the port plus i")
	d.log.register(fs)
	d.log.level = "warn" // the demo's output is its URLs
	fs.Lookup("log-level").DefValue = "warn"
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if d.nodes < 1 || d.nodes > 64 {
		return usagef("--nodes must be from 1 to 64, got %d", d.nodes)
	}
	base, err := parseHostPort("http-base", d.httpBase)
	if err != nil {
		return usageError{err}
	}
	if base.port == 0 || base.port+d.nodes-1 > 65535 {
		return usagef("--http-base %s: ports %d to %d are not all valid", d.httpBase, base.port, base.port+d.nodes-1)
	}
	log, err := d.log.newLogger(e.stderr)
	if err != nil {
		return usageError{err}
	}
	demo, err := startDemo(d.nodes, base, log)
	if err != nil {
		return err
	}
	for i, addr := range demo.addrs {
		fmt.Fprintf(e.stdout, "node-%d  http://%s/\n", i, addr)
	}
	fmt.Fprintln(e.stdout, "Open two of these pages side by side; press Ctrl-C to stop.")
	select {
	case <-ctx.Done():
	case <-e.signals:
	}
	return demo.close()
}

// demoCluster is a loopback testcluster with one gateway per node.
type demoCluster struct {
	cluster *testcluster.Cluster
	addrs   []string // node i's HTTP host:port

	mu      sync.Mutex
	servers map[int]*http.Server
	gws     map[int]*wsgateway.Gateway
}

// startDemo opens every HTTP listener first (so a busy port fails fast),
// then starts the cluster, attaching a gateway to each node as it starts.
func startDemo(nodes int, base hostPort, log *slog.Logger) (_ *demoCluster, err error) {
	listeners := make([]net.Listener, nodes)
	defer func() {
		if err != nil {
			for _, ln := range listeners {
				if ln != nil {
					_ = ln.Close()
				}
			}
		}
	}()
	d := &demoCluster{servers: map[int]*http.Server{}, gws: map[int]*wsgateway.Gateway{}}
	for i := range listeners {
		addr := net.JoinHostPort(base.host, strconv.Itoa(base.port+i))
		if listeners[i], err = net.Listen("tcp", addr); err != nil {
			return nil, listenError("http-base", addr+fmt.Sprintf(" (node %d)", i), err)
		}
		d.addrs = append(d.addrs, listeners[i].Addr().String())
	}
	secret := randomKey() // one key, so a token works on every node
	var startErr error
	d.cluster, err = testcluster.New(testcluster.Options{
		Nodes:    nodes,
		Loopback: true,
		Gossip: func(i int) gossip.Config {
			g := gossip.LocalConfig()
			if i < len(d.addrs) {
				g.HTTPAddr = d.addrs[i]
			}
			return g
		},
		Tracker: func(int) tracker.Config { return tracker.LocalConfig() },
		Logger:  log,
		OnNodeStart: func(n *testcluster.Node) {
			if n.Index() >= len(listeners) || listeners[n.Index()] == nil {
				return
			}
			if err := d.attach(n, listeners[n.Index()], secret, log); err != nil && startErr == nil {
				startErr = err
			}
			listeners[n.Index()] = nil // the server owns it now
		},
		OnNodeStop: d.detach,
	})
	if err == nil && startErr != nil {
		_ = d.cluster.Close()
		err = startErr
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// attach starts a gateway for node n serving on ln.
func (d *demoCluster) attach(n *testcluster.Node, ln net.Listener, secret []byte, log *slog.Logger) error {
	cfg := wsgateway.DefaultConfig()
	cfg.Tracker = n.Tracker()
	cfg.NodeName = n.Name()
	cfg.Members = membersOf(n.Gossip())
	cfg.JWTSecret = secret
	cfg.DemoTokens = true
	cfg.Registry = prometheus.NewRegistry()
	cfg.Logger = log.With("node", n.Name(), "component", "wsgateway")
	gw, err := wsgateway.New(cfg)
	if err != nil {
		_ = ln.Close()
		return err
	}
	srv, _ := serveHTTP(ln, gw.Handler(), log)
	gw.SetReady(true)
	d.mu.Lock()
	d.servers[n.Index()], d.gws[n.Index()] = srv, gw
	d.mu.Unlock()
	return nil
}

// detach stops node n's gateway (sockets closed with 1001) and its server.
func (d *demoCluster) detach(n *testcluster.Node) {
	d.mu.Lock()
	srv, gw := d.servers[n.Index()], d.gws[n.Index()]
	delete(d.servers, n.Index())
	delete(d.gws, n.Index())
	d.mu.Unlock()
	if gw == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gw.SetReady(false)
	_ = srv.Shutdown(ctx)
	_ = gw.Shutdown(ctx)
	_ = srv.Close()
}

func (d *demoCluster) close() error { return d.cluster.Close() }

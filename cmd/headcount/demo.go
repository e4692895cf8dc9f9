package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"

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
	fs.StringVar(&d.httpBase, "http-base", net.JoinHostPort(defaultHost, strconv.Itoa(defaultHTTPPort)), "HTTP address of node 0; node i listens on the port plus i")
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
	base, err := parseHostPort("http-base", d.httpBase, defaultHost)
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
}

// startDemo starts a loopback cluster whose node i serves its gateway on
// base's port plus i. A busy port fails the start with a line naming it.
func startDemo(nodes int, base hostPort, log *slog.Logger) (*demoCluster, error) {
	d := &demoCluster{}
	for i := 0; i < nodes; i++ {
		d.addrs = append(d.addrs, net.JoinHostPort(base.host, strconv.Itoa(base.port+i)))
	}
	// Fail fast, naming the port, if one is taken.
	for i, addr := range d.addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, listenError("http-base", addr+fmt.Sprintf(" (node %d)", i), err)
		}
		_ = ln.Close()
	}
	secret := randomKey() // one key, so a token works on every node
	c, err := testcluster.New(testcluster.Options{
		Nodes:    nodes,
		Loopback: true,
		Gossip:   func(int) gossip.Config { return gossip.LocalConfig() },
		Tracker:  func(int) tracker.Config { return tracker.LocalConfig() },
		Logger:   log,
		Gateways: &testcluster.GatewayOptions{
			Addr: func(i int) string { return d.addrs[i] },
			Config: func(int) wsgateway.Config {
				cfg := wsgateway.DefaultConfig()
				cfg.DemoTokenKey = secret
				cfg.DemoTokens = true
				return cfg
			},
		},
	})
	if err != nil {
		return nil, err
	}
	d.cluster = c
	return d, nil
}

func (d *demoCluster) close() error { return d.cluster.Close() }

package testcluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/wsgateway"
)

// GatewayOptions serves a WebSocket gateway (package wsgateway) on every node, so that tests
// can connect real Phoenix clients to any node of the cluster.
type GatewayOptions struct {
	// Config returns node i's gateway configuration (nil = wsgateway.DefaultConfig() with no
	// connection limits). The cluster sets Tracker, NodeName and, if nil, Members and Logger.
	Config func(i int) wsgateway.Config
	// Addr returns the address node i's gateway listens on (nil or "" = "127.0.0.1:0", an
	// ephemeral port). A restarted node listens on the address it had before, so clients can
	// reconnect to the same URL.
	Addr func(i int) string
}

// membersOf adapts a gossip node's member list to the gateway's. The agent
// (cmd/headcount) has the same ten lines: gossip and wsgateway do not import
// each other, so the adapter lives with each program that joins them.
func membersOf(g *gossip.Node) func() []wsgateway.Member {
	return func() []wsgateway.Member {
		ms := g.Members()
		out := make([]wsgateway.Member, 0, len(ms))
		for _, m := range ms {
			out = append(out, wsgateway.Member{Name: m.Name, Addr: m.Addr, HTTP: m.HTTP, Status: m.Status, Epoch: m.Epoch, Self: m.Self})
		}
		return out
	}
}

// listenGateway opens node n's HTTP listener, before its gossip node starts so that the address
// can travel in the node's meta.
func (c *Cluster) listenGateway(n *Node) (net.Listener, error) {
	addr := n.HTTPAddr()
	if addr == "" && c.opts.Gateways.Addr != nil {
		addr = c.opts.Gateways.Addr(n.index)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("testcluster: node %d: gateway: %w", n.index, err)
	}
	return ln, nil
}

// serveGateway starts node n's gateway on ln.
func (c *Cluster) serveGateway(n *Node, ln net.Listener) error {
	cfg := wsgateway.DefaultConfig()
	cfg.MaxConns, cfg.MaxConnsPerIP = 0, 0
	if c.opts.Gateways.Config != nil {
		cfg = c.opts.Gateways.Config(n.index)
	}
	cfg.Tracker = n.Tracker()
	cfg.NodeName = n.name
	if cfg.Members == nil {
		cfg.Members = membersOf(n.Gossip())
	}
	if cfg.Logger == nil {
		cfg.Logger = c.log.With("node", n.name, "component", "wsgateway")
	}
	gw, err := wsgateway.New(cfg)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("testcluster: node %d: gateway: %w", n.index, err)
	}
	srv := &http.Server{Handler: gw.Handler(), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	gw.SetReady(true)
	n.mu.Lock()
	n.gw, n.srv, n.srvDone, n.httpAddr = gw, srv, done, ln.Addr().String()
	n.mu.Unlock()
	return nil
}

// stopGateway closes node n's gateway (its sockets get close code 1001, as from a stopping
// node: an in-process gateway cannot vanish like a crashed process) and waits for its server.
func (c *Cluster) stopGateway(n *Node) {
	n.mu.Lock()
	gw, srv, done := n.gw, n.srv, n.srvDone
	n.gw, n.srv, n.srvDone = nil, nil, nil
	n.mu.Unlock()
	if gw == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gw.SetReady(false)
	_ = srv.Close() // stop accepting; hijacked sockets are the gateway's
	_ = gw.Shutdown(ctx)
	<-done
}

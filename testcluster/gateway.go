package testcluster

import (
	"fmt"
	"net"

	"github.com/headcount-io/headcount/wsgateway"
)

// GatewayOptions serves a WebSocket gateway (package wsgateway) on every node, so that tests
// can connect real Phoenix clients to any node of the cluster.
type GatewayOptions struct {
	// Config returns node i's gateway configuration (nil = wsgateway.DefaultConfig() with no
	// connection limits). Package node sets Tracker and Registerer; the cluster sets Logger if
	// nil.
	Config func(i int) wsgateway.Config
	// Addr returns the address node i's gateway listens on (nil or "" = "127.0.0.1:0", an
	// ephemeral port). A restarted node listens on the address it had before, so clients can
	// reconnect to the same URL.
	Addr func(i int) string
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

// gatewayConfig returns node n's gateway section.
func (c *Cluster) gatewayConfig(n *Node) *wsgateway.Config {
	cfg := wsgateway.DefaultConfig()
	cfg.MaxConns, cfg.MaxConnsPerIP = 0, 0
	if c.opts.Gateways.Config != nil {
		cfg = c.opts.Gateways.Config(n.index)
	}
	if cfg.Logger == nil {
		cfg.Logger = c.log.With("node", n.name, "component", "wsgateway")
	}
	return &cfg
}

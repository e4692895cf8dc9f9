package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/webhook"
	"github.com/headcount-io/headcount/wsgateway"
)

// ErrInvalidConfig is wrapped by every error New returns for a bad Config; the message names
// the field (Gossip.BindPort, Stop.Goodbye, ...).
var ErrInvalidConfig = errors.New("node: invalid config")

// ErrClosed is returned by Leave after Leave or Close.
var ErrClosed = errors.New("node: closed")

// Config configures a Node: one section per package beneath it, and the node's own fields.
// Start from DefaultConfig or LocalConfig and set Name. Packages that add features to the node
// add a section (a field of their own Config type) here, with a line in validate.
type Config struct {
	// Name is this node's name, unique in the cluster (1 to 255 bytes). Required. It is the only
	// place the name is set: New copies it into the tracker and gossip sections (their Name
	// fields must be empty or equal) and into the node label of every metric.
	Name string

	// Tracker configures the presence engine. Name and Logger are set by New; Epoch 0 means the
	// wall clock at New (testcluster sets increasing epochs itself).
	Tracker tracker.Config

	// Gossip, when not nil, links the node to a cluster through memberlist. Nil runs a single
	// node whose tracker is ticked by a built-in loop. New sets Name, Logger and Registerer;
	// HTTPAddr, when empty, is set to Listener's address. To carry the node on a memberlist
	// the embedding service runs for itself, set Gossip.Host (gossip.NewHost) and make Name
	// that memberlist's node name (examples/hosted).
	Gossip *gossip.Config

	// Gateway, when not nil, serves the WebSocket front door and the HTTP count API on Handler.
	// New sets Tracker, Registerer, Logger (if nil) and Partial (if nil, from gossip's
	// members). Nil: Handler serves only /v1/members, /healthz,
	// /readyz and /metrics, and presences come from Tracker().Track with owners from
	// Tracker().NewOwner.
	Gateway *wsgateway.Config

	// Webhook, when not nil, sends occupancy webhooks (package webhook) from this node's
	// counts, for the topics this node owns among the live members. New sets Tracker, Members,
	// Logger and Registerer.
	Webhook *webhook.Config

	// Listener, when not nil, is served with Handler by an HTTP server the node owns and stops
	// in Leave and Close. Nil: mount Handler on a server of your own (and stop it yourself,
	// before Leave).
	Listener net.Listener
	// NewServer builds the owned server for a handler (the agent's sets timeouts and connection
	// caps, package httpguard). Nil: a server with ReadHeaderTimeout.
	NewServer func(http.Handler) *http.Server
	// ReadHeaderTimeout bounds reading a request's headers on the owned server when NewServer
	// is nil (> 0 then).
	ReadHeaderTimeout time.Duration

	// SeparateAdmin moves the operator endpoints (/metrics and /v1/members, which show node
	// names, internal gossip addresses and epochs) from Handler to AdminHandler, to be served
	// on an address browsers cannot reach (the agent's --admin-http).
	SeparateAdmin bool

	// Registerer receives every metric of the node (tracker, gossip, gateway), each with the
	// label node=<Name>, so several nodes may share one registry; Close unregisters them. Nil
	// gives the node a registry of its own. /metrics serves Gatherer.
	Registerer prometheus.Registerer
	// Gatherer is what GET /metrics on Handler serves. Nil: Registerer if it is also a
	// Gatherer (a *prometheus.Registry is), else no /metrics route.
	Gatherer prometheus.Gatherer

	// Logger receives the node's logs and its parts' (each with a "component" attribute). Nil
	// discards them.
	Logger *slog.Logger

	// Stop bounds each step of Leave and Close.
	Stop StopConfig
}

// StopConfig bounds the steps of a node's stop (see stop.go). Each step has its own bound, so
// a step that hangs (a plain-HTTP client that never reads its response) cannot use up a later
// step's time: the goodbye always gets Goodbye, the sockets always get Sockets.
type StopConfig struct {
	// Drain is how long the owned HTTP server may wait for plain HTTP requests in flight once it
	// stops accepting; then their connections are cut. (> 0)
	Drain time.Duration
	// Goodbye bounds the goodbye to the cluster and the memberlist leave. (> 0)
	Goodbye time.Duration
	// Sockets bounds closing every WebSocket with 1001 and waiting for their goroutines. (> 0)
	Sockets time.Duration
}

// Split returns a StopConfig whose steps share total: a fifth to drain plain HTTP, half to
// say goodbye, the rest to close sockets (the agent's --shutdown-timeout).
func Split(total time.Duration) StopConfig {
	return StopConfig{Drain: total / 5, Goodbye: total / 2, Sockets: total - total/5 - total/2}
}

// DefaultConfig returns a production node: tracker and gossip in their production profiles
// (gossip binds 0.0.0.0:7946), the gateway with its defaults, and a 10 s stop.
func DefaultConfig() Config {
	g := gossip.DefaultConfig()
	w := wsgateway.DefaultConfig()
	return Config{
		Tracker:           tracker.DefaultConfig(),
		Gossip:            &g,
		Gateway:           &w,
		ReadHeaderTimeout: 10 * time.Second,
		Stop:              Split(10 * time.Second),
	}
}

// LocalConfig returns a node for a cluster on one machine: the tracker's and gossip's local
// profiles (gossip on 127.0.0.1, any free port).
func LocalConfig() Config {
	c := DefaultConfig()
	g := gossip.LocalConfig()
	g.BindAddr, g.BindPort = "127.0.0.1", 0
	c.Tracker, c.Gossip = tracker.LocalConfig(), &g
	return c
}

// validate checks the node's own fields; each section is validated by its package's New, whose
// errors are wrapped with the section's name.
func (c *Config) validate() error {
	bad := func(field, why string, args ...any) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, fmt.Sprintf(why, args...))
	}
	switch {
	case c.Name == "":
		return bad("Name", "is empty")
	case len(c.Name) > 255:
		return bad("Name", "is longer than 255 bytes")
	case c.Tracker.Name != "" && c.Tracker.Name != c.Name:
		return bad("Tracker.Name", "is %q, not Name %q (leave it empty)", c.Tracker.Name, c.Name)
	case c.Gossip != nil && c.Gossip.Name != "" && c.Gossip.Name != c.Name:
		return bad("Gossip.Name", "is %q, not Name %q (leave it empty)", c.Gossip.Name, c.Name)
	case c.Gateway != nil && c.Gateway.Tracker != nil:
		return bad("Gateway.Tracker", "is set; the node sets it")
	case c.Webhook != nil && (c.Webhook.Tracker != nil || c.Webhook.Members != nil):
		return bad("Webhook", "sets Tracker or Members; the node sets them")
	case c.Listener != nil && c.NewServer == nil && c.ReadHeaderTimeout <= 0:
		return bad("ReadHeaderTimeout", "must be > 0 with a Listener and no NewServer")
	case c.Stop.Drain <= 0:
		return bad("Stop.Drain", "must be > 0")
	case c.Stop.Goodbye <= 0:
		return bad("Stop.Goodbye", "must be > 0")
	case c.Stop.Sockets <= 0:
		return bad("Stop.Sockets", "must be > 0")
	}
	return nil
}

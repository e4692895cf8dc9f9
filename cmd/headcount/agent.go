package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/headcount-io/headcount/internal/httpguard"
	"github.com/headcount-io/headcount/internal/promtable"
	"github.com/headcount-io/headcount/node"
	"github.com/headcount-io/headcount/wsgateway"
)

// runAgent runs one node until SIGINT/SIGTERM (or ctx ends), then stops it
// gracefully.
func runAgent(ctx context.Context, e *env, args []string) error {
	var a agentFlags
	fs := newFlagSet(e, "agent [flags]")
	a.register(fs)
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	log, err := a.log.newLogger(e.stderr)
	if err != nil {
		return usageError{err}
	}
	cfg, err := a.resolve()
	if err != nil {
		return err
	}
	ag, err := startAgent(cfg, log)
	if err != nil {
		return err
	}
	if len(cfg.join) > 0 && !ag.joined() {
		diagnoseSeeds(ctx, cfg.join, cfg.bind.port, log)
	}
	return ag.serveUntilSignal(ctx, e.signals, e.reload)
}

// agent is one running node (package node) behind the --http listener, plus pprof.
type agent struct {
	cfg     *agentConfig
	log     *slog.Logger
	node    *node.Node
	pprof   *http.Server
	admin   *http.Server // --admin-http, nil when off
	httpURL string       // http://host:port of the listener, for logs
}

// startAgent opens the listeners and starts the node. On error everything
// already started is stopped again.
func startAgent(cfg *agentConfig, log *slog.Logger) (_ *agent, err error) {
	ln, err := net.Listen("tcp", cfg.http.String())
	if err != nil {
		return nil, listenError("http", cfg.http.String(), err)
	}
	defer func() {
		if err != nil {
			_ = ln.Close()
		}
	}()
	ag := &agent{cfg: cfg, log: log, httpURL: "http://" + ln.Addr().String()}
	nc, err := nodeConfig(cfg, ln, log)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	nc.Registerer = reg
	guard, err := httpguard.New(cfg.httpGuard) // issue 10: timeouts and plain-HTTP caps
	if err != nil {
		return nil, err
	}
	registerGuardMetrics(reg, guard)
	nc.Listener = guard.Listener(nc.Listener)
	nc.NewServer = guard.Server
	if ag.node, err = node.New(nc); err != nil {
		if errors.Is(err, node.ErrInvalidConfig) || errors.Is(err, wsgateway.ErrInvalidConfig) {
			return nil, err
		}
		return nil, listenError("bind", cfg.bind.String(), err)
	}
	if cfg.pprof != "" {
		if ag.pprof, err = startPprof(cfg.pprof, log); err != nil {
			_ = ag.node.Close()
			return nil, err
		}
	}
	if cfg.adminHTTP != "" {
		if ag.admin, err = startAdmin(cfg.adminHTTP, ag.node.AdminHandler(), log); err != nil {
			_ = ag.node.Close()
			if ag.pprof != nil {
				_ = ag.pprof.Close()
			}
			return nil, err
		}
	}
	switch {
	case cfg.insecureGossip:
		log.Warn("--insecure-gossip: gossip is neither authenticated nor encrypted; anyone who can reach " +
			cfg.bind.String() + " can rewrite or delete every count; use --gossip-key-file ('headcount keygen')")
	case len(cfg.gossipKeys) == 0:
		log.Warn("gossip is not authenticated (no --gossip-key-file): anyone who can reach the gossip port can rewrite counts; " +
			"fine on loopback, use 'headcount keygen' and --gossip-key-file for every real cluster")
	}
	log.Info("headcount agent started",
		"name", cfg.name, "gossip", cfg.bind.String(), "advertise", cfg.advertise.String(),
		"http", ag.httpURL, "join", cfg.join, "profile", cfg.profile, "version", versionString())
	return ag, nil
}

// nodeConfig maps the agent's flags onto a node.Config serving ln. This is
// the one place where flags become configuration.
func nodeConfig(cfg *agentConfig, ln net.Listener, log *slog.Logger) (node.Config, error) {
	nc := node.DefaultConfig()
	if cfg.profile == "local" {
		nc = node.LocalConfig()
	}
	nc.Name = cfg.name
	nc.Logger = log
	// A gossip --join aimed at --http by mistake fails at once (seedprobe.go).
	nc.Listener = &notGossipListener{Listener: ln, log: log, logEvery: 10 * time.Second}
	nc.Stop = node.Split(cfg.shutdown)
	nc.SeparateAdmin = cfg.adminHTTP != "" // issue 10
	nc.Tracker.MaxLocalPresences, nc.Tracker.MaxLocalTopics = cfg.maxPresences, cfg.maxTopics
	if cfg.clockOffset != 0 {
		nc.Tracker.Epoch = uint64(time.Now().Add(cfg.clockOffset).UnixNano())
	}

	g := nc.Gossip
	g.BindAddr = cfg.bind.host
	g.BindPort = cfg.bind.port
	g.AdvertiseAddr = cfg.advertise.host
	g.AdvertisePort = cfg.advertise.port
	g.HTTPAddr = cfg.httpAdvertise(ln.Addr())
	g.Join = cfg.join
	g.SecretKeys = cfg.gossipKeys
	g.Label = cfg.label

	w := nc.Gateway
	cfg.auth.apply(w) // issue 11: keys, JWKS, claims, public topics
	w.AllowedOrigins = cfg.allowedOrigins
	w.MaxConns = cfg.maxConns
	w.MaxConnsPerIP = cfg.maxConnsPerIP
	w.CoalesceWindow = cfg.coalesceWindow
	w.NoIOUring = cfg.noIOUring
	cfg.readers.apply(w) // issue 12
	w.DemoTokens = cfg.demoTokens
	if cfg.demoTokens {
		w.DemoTokenKey = demoTokenKey(cfg.jwtSecret)
		log.Warn("--demo-tokens is on: anyone can mint a token for any user; never use it in production")
	}

	nc.Webhook = cfg.webhook // issue 13; nil without --webhook-url
	return nc, nil
}

// serveUntilSignal waits for a stop signal, ctx's end or a server failure,
// then stops gracefully within the shutdown timeout. A second signal forces
// an immediate return. A reload signal (SIGHUP) re-reads --gossip-key-file
// and the JWT key files.
func (ag *agent) serveUntilSignal(ctx context.Context, signals, reload <-chan os.Signal) error {
	var cause error
wait:
	for {
		select {
		case <-reload:
			n, err := reloadGossipKeys(ag.node.Gossip().Keyring(), ag.cfg.gossipKeyFile)
			if err != nil {
				ag.log.Error("gossip keys not reloaded", "err", err)
			} else {
				ag.log.Info("gossip keys reloaded", "keys", n)
			}
			ag.reloadJWTKeys() // issue 11
		case s := <-signals:
			ag.log.Info("stopping", "signal", s.String(), "timeout", ag.cfg.shutdown)
			break wait
		case <-ctx.Done():
			ag.log.Info("stopping", "reason", context.Cause(ctx))
			break wait
		case err := <-ag.node.Err():
			cause = fmt.Errorf("http server: %w", err)
			ag.log.Error("http server failed, stopping", "err", err)
			break wait
		}
	}
	done := make(chan struct{})
	go func() {
		ag.stop()
		close(done)
	}()
	select {
	case <-done:
		return cause
	case s := <-signals:
		return fmt.Errorf("stop forced by a second %s", s)
	}
}

// stop is the graceful stop: the node's stop order (node/stop.go), whose
// steps share --shutdown-timeout (node.Split), then pprof.
func (ag *agent) stop() {
	_ = ag.node.Leave(context.Background()) // failed steps are logged by the node
	if ag.pprof != nil {
		_ = ag.pprof.Close()
	}
	if ag.admin != nil {
		_ = ag.admin.Close()
	}
}

// listenError turns a failure to listen into one line naming the flag.
func listenError(flagName, addr string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("--%s %s: address already in use", flagName, addr)
	}
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("--%s %s: address not available on this machine", flagName, addr)
	}
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("--%s %s: permission denied", flagName, addr)
	}
	return fmt.Errorf("--%s %s: %w", flagName, addr, err)
}

// demoTokenKey is the key of --demo-tokens tokens: derived from the JWT key
// (one-way, so it reveals nothing of it) when there is one, so that demo
// tokens survive a restart and work on every node with --demo-tokens and the
// same key file; else a key of this process. Nodes without --demo-tokens
// never accept it.
func demoTokenKey(jwtSecret []byte) []byte {
	if len(jwtSecret) == 0 {
		return randomKey()
	}
	m := hmac.New(sha256.New, jwtSecret)
	m.Write([]byte("headcount demo-token key v1"))
	return m.Sum(nil)
}

// randomKey returns 32 random bytes.
func randomKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails on supported platforms
	return k
}

// joined reports whether this node sees another member alive, waiting up
// to 200 ms for the membership view to catch up with a join that worked.
func (ag *agent) joined() bool {
	deadline := time.Now().Add(200 * time.Millisecond)
	for {
		for _, m := range ag.node.Members() {
			if !m.Self && m.Status == "alive" {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond) // the view is published by gossip's worker
	}
}

// registerGuardMetrics exports the plain-HTTP connection counts of --http (one table over the
// guard's Stats, internal/promtable). They are the process's, like go_* and process_*: no node
// label.
func registerGuardMetrics(reg prometheus.Registerer, g *httpguard.Guard) {
	const refused = "HTTP connections closed at accept for --max-http-conns."
	reg.MustRegister(promtable.New(g.Stats,
		promtable.Gauge("headcount_http_connections", "Plain HTTP connections open on --http (WebSockets not included).",
			func(s httpguard.Stats) float64 { return float64(s.Open) }),
		promtable.CounterWith("headcount_http_refused_total", refused, prometheus.Labels{"cap": "total"},
			func(s httpguard.Stats) uint64 { return s.RefusedTotal }),
		promtable.CounterWith("headcount_http_refused_total", refused, prometheus.Labels{"cap": "per_ip"},
			func(s httpguard.Stats) uint64 { return s.RefusedPerIP }),
	))
}

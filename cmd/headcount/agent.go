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

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/internal/httpguard"
	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/tracker/trackerprom"
	"github.com/headcount-io/headcount/webhook"
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

// agent is one running node: tracker, gossip and gateway behind an HTTP server.
type agent struct {
	cfg     *agentConfig
	log     *slog.Logger
	node    *gossip.Node
	hook    *webhook.Hook // nil without --webhook-url
	gw      *wsgateway.Gateway
	srv     *http.Server
	pprof   *http.Server
	admin   *http.Server // --admin-http, nil when off
	served  <-chan error // the HTTP server's Serve result
	httpURL string       // http://host:port of the listener, for logs
}

// startAgent opens the listeners and starts the node. On error everything
// already started is stopped again.
func startAgent(cfg *agentConfig, log *slog.Logger) (_ *agent, err error) {
	ag := &agent{cfg: cfg, log: log}
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	ln, err := net.Listen("tcp", cfg.http.String())
	if err != nil {
		return nil, listenError("http", cfg.http.String(), err)
	}
	cleanup = append(cleanup, func() { _ = ln.Close() })
	ag.httpURL = "http://" + ln.Addr().String()

	tcfg := tracker.DefaultConfig()
	if cfg.profile == "local" {
		tcfg = tracker.LocalConfig()
	}
	tcfg.Name = cfg.name
	tcfg.MaxLocalPresences, tcfg.MaxLocalTopics = cfg.maxPresences, cfg.maxTopics
	tcfg.Logger = log.With("component", "tracker")
	trk, err := tracker.New(tcfg)
	if err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	prometheus.WrapRegistererWith(prometheus.Labels{"node": cfg.name}, reg).MustRegister(trackerprom.New(trk))
	gcfg := gossipConfig(cfg)
	gcfg.HTTPAddr = cfg.httpAdvertise(ln.Addr())
	gcfg.Registerer = reg
	gcfg.Logger = log.With("component", "gossip")
	ag.node, err = gossip.New(gcfg, trk)
	if err != nil {
		return nil, listenError("bind", cfg.bind.String(), err)
	}
	cleanup = append(cleanup, func() { _ = ag.node.Close() })

	if cfg.webhook != nil { // issue 13
		if ag.hook, err = startWebhook(*cfg.webhook, cfg.name, trk, ag.node, reg, log); err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { _ = ag.hook.Close() })
	}

	wcfg := wsgateway.DefaultConfig()
	wcfg.Tracker = trk
	wcfg.NodeName = cfg.name
	wcfg.Members = membersOf(ag.node)
	cfg.auth.apply(&wcfg) // issue 11: keys, JWKS, claims, public topics
	wcfg.AllowedOrigins = cfg.allowedOrigins
	wcfg.MaxConns = cfg.maxConns
	wcfg.MaxConnsPerIP = cfg.maxConnsPerIP
	wcfg.CoalesceWindow = cfg.coalesceWindow
	cfg.readers.apply(&wcfg) // issue 12
	wcfg.DemoTokens = cfg.demoTokens
	if cfg.demoTokens {
		wcfg.DemoTokenKey = demoTokenKey(cfg.jwtSecret)
		log.Warn("--demo-tokens is on: anyone can mint a token for any user; never use it in production")
	}
	wcfg.SeparateAdmin = cfg.adminHTTP != ""
	wcfg.Registry = reg
	wcfg.Logger = log.With("component", "wsgateway")
	ag.gw, err = wsgateway.New(wcfg)
	if err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { _ = ag.gw.Shutdown(context.Background()) })

	if cfg.pprof != "" {
		if ag.pprof, err = startPprof(cfg.pprof, log); err != nil {
			return nil, err
		}
	}

	if cfg.adminHTTP != "" {
		if ag.admin, err = startAdmin(cfg.adminHTTP, ag.gw.AdminHandler(), log); err != nil {
			return nil, err
		}
		cleanup = append(cleanup, func() { _ = ag.admin.Close() })
	}
	guard, err := httpguard.New(cfg.httpGuard)
	if err != nil {
		return nil, err
	}
	registerGuardMetrics(reg, guard)
	ag.srv, ag.served = serveGuarded(ln, ag.gw.Handler(), guard, log)
	ag.gw.SetReady(true)
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
			n, err := reloadGossipKeys(ag.node.Keyring(), ag.cfg.gossipKeyFile)
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
		case err := <-ag.served:
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

// stop is the graceful stop: not ready, no new connections, goodbye to the
// cluster, sockets closed with 1001 so clients reconnect elsewhere. It takes
// at most the shutdown timeout: the goodbye gets half of it (its peers may be
// stopping too), the sockets the rest. A step that fails or runs out of time
// is logged and the stop goes on: peers then notice through failure
// detection instead of the goodbye.
func (ag *agent) stop() {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), ag.cfg.shutdown)
	defer cancel()
	warn := func(step string, err error) {
		if err != nil {
			ag.log.Warn("graceful stop: "+step+" failed", "err", err)
		}
	}
	ag.gw.SetReady(false)
	// Shutdown closes the listener and waits for plain HTTP requests;
	// upgraded WebSockets are the gateway's to close.
	warn("http shutdown", ag.srv.Shutdown(ctx))
	if ag.hook != nil {
		_ = ag.hook.Close() // before the goodbye: the members taking its topics over send their state
	}
	leaveCtx, cancelLeave := context.WithTimeout(ctx, ag.cfg.shutdown/2)
	warn("gossip leave", ag.node.Leave(leaveCtx))
	cancelLeave()
	warn("closing sockets", ag.gw.Shutdown(ctx))
	warn("gossip close", ag.node.Close())
	_ = ag.srv.Close()
	if ag.pprof != nil {
		_ = ag.pprof.Close()
	}
	if ag.admin != nil {
		_ = ag.admin.Close()
	}
	ag.log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
}

// gossipConfig maps the agent's flags onto the chosen gossip profile.
func gossipConfig(cfg *agentConfig) gossip.Config {
	g := gossip.DefaultConfig()
	if cfg.profile == "local" {
		g = gossip.LocalConfig()
	}
	g.Name = cfg.name
	g.BindAddr = cfg.bind.host
	g.BindPort = cfg.bind.port
	g.AdvertiseAddr = cfg.advertise.host
	g.AdvertisePort = cfg.advertise.port
	g.Join = cfg.join
	g.SecretKeys = cfg.gossipKeys
	g.Label = cfg.label
	return g
}

// membersOf adapts the gossip view of the cluster to the gateway's /v1/members.
func membersOf(n *gossip.Node) func() []wsgateway.Member {
	return func() []wsgateway.Member {
		ms := n.Members()
		out := make([]wsgateway.Member, 0, len(ms))
		for _, m := range ms {
			out = append(out, wsgateway.Member{
				Name: m.Name, Addr: m.Addr, HTTP: m.HTTP, Status: m.Status, Epoch: m.Epoch, Self: m.Self,
				Since: m.Since,
			})
		}
		return out
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

// registerGuardMetrics exports the plain-HTTP connection counts of --http.
func registerGuardMetrics(reg prometheus.Registerer, g *httpguard.Guard) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "headcount", Subsystem: "http", Name: "connections",
			Help: "Plain HTTP connections open on --http (WebSockets not included)."},
			func() float64 { return float64(g.Stats().Open) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "headcount", Subsystem: "http", Name: "refused_total",
			Help: "HTTP connections closed at accept for --max-http-conns.", ConstLabels: prometheus.Labels{"cap": "total"}},
			func() float64 { return float64(g.Stats().RefusedTotal) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "headcount", Subsystem: "http", Name: "refused_total",
			Help: "HTTP connections closed at accept for --max-http-conns.", ConstLabels: prometheus.Labels{"cap": "per_ip"}},
			func() float64 { return float64(g.Stats().RefusedPerIP) }),
	)
}

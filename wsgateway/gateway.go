package wsgateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"

	"github.com/headcount-io/headcount/tracker"
)

// Gateway serves the WebSocket endpoint and the HTTP API of one node. Create it with New; it is
// safe for concurrent use.
type Gateway struct {
	cfg        Config
	log        *slog.Logger
	clock      Clock
	auth       Authenticator
	jwt        *JWTAuthenticator // the built-in Authenticator, nil when Config replaced it
	authz      Authorizer
	demo       *demoAuth // with Config.DemoTokens: mints demo tokens, and is auth
	metrics    *metrics
	hub        *hub
	writers    *writerPool
	poll       *poller   // idle sockets (socket.go, poller_linux.go); nil where there is none
	readBufs   sync.Pool // *bufio.Reader holding a ReadBufferSize buffer, taken from a parked socket
	readShells sync.Pool // empty *bufio.Reader, to take the next one
	upgrader   websocket.Upgrader
	handler    http.Handler

	ready    atomic.Bool
	stopping atomic.Bool
	partial  atomic.Bool // a member is suspect or down (partial.go)

	mu     sync.Mutex
	conns  map[*conn]struct{}
	perIP  map[string]int
	nconns int

	originLog originLog // rate-limits the log of refused origins

	lp longPolls

	sub      *tracker.Subscription
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup // the hub goroutine, socket readers and writers
}

// New validates cfg and starts the gateway's fan-out goroutine. It returns an error wrapping
// ErrInvalidConfig for a bad Config, or the metrics registration error.
func New(cfg Config) (*Gateway, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:   cfg,
		log:   cfg.Logger,
		conns: make(map[*conn]struct{}),
		perIP: make(map[string]int),
		stop:  make(chan struct{}),
		lp:    longPolls{sessions: make(map[string]*lpSession)},
	}
	if g.log == nil {
		g.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	g.metrics = m
	if err := g.setupAccess(); err != nil {
		return nil, err
	}
	g.hub = newHub(g)
	g.checkPartial()
	g.upgrader = websocket.Upgrader{
		HandshakeTimeout: cfg.HandshakeTimeout,
		ReadBufferSize:   upgradeReadBuffer(cfg.ReadBufferSize), // the hijacker supplies it
		WriteBufferSize:  cfg.WriteBufferSize,
		WriteBufferPool:  &sync.Pool{},
		Subprotocols:     []string{"phoenix"},
		CheckOrigin:      func(*http.Request) bool { return true }, // checked before Upgrade
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			http.Error(w, http.StatusText(status), status)
		},
	}
	g.handler = g.routes()
	g.ready.Store(true)
	g.poll = newPoller(cfg.IdleTimeout, g.log, func(w *wsTransport, wait bool) { go g.runSocket(w, wait) })
	g.sub = cfg.Tracker.Subscribe()
	g.startWriters()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer g.writers.hub.close()
		g.hub.run(g.sub, g.stop)
	}()
	return g, nil
}

// Handler returns the gateway's routes: /socket/websocket, /socket/longpoll, /v1/topics/{topic},
// /v1/demo/token, /healthz, /readyz and the demo page at /. (/v1/members and /metrics are
// package node's.)
func (g *Gateway) Handler() http.Handler { return g.handler }

// SetReady sets what /readyz answers (the gateway starts ready; it is never ready again after
// Shutdown).
func (g *Gateway) SetReady(ready bool) { g.ready.Store(ready) }

// Connections returns the number of open connections: sockets and long-poll sessions.
func (g *Gateway) Connections() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nconns
}

// Refuse makes the gateway refuse new connections (HTTP 503) and answer /readyz with 503,
// while the open ones keep working until Shutdown. It is the "stop accepting" step of a node's
// stop (package node) and is idempotent.
func (g *Gateway) Refuse() {
	g.mu.Lock()
	g.stopping.Store(true)
	g.mu.Unlock()
	g.ready.Store(false)
}

// Shutdown refuses new sockets, closes every socket with 1001 (going away, so phoenix clients
// reconnect, to another node), untracks their presences and stops the gateway's goroutines.
// It waits for them until ctx is done and returns ctx.Err() then. It is idempotent; call it
// before shutting down the http.Server, which does not track hijacked connections.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.stopOnce.Do(func() {
		g.stopping.Store(true)
		g.ready.Store(false)
		close(g.stop)
		g.sub.Close()
		if g.jwt != nil {
			g.jwt.Close()
		}
	})
	g.mu.Lock()
	for c := range g.conns {
		c.close(closeGoingAway, "server shutting down")
	}
	g.mu.Unlock()
	if g.poll != nil {
		g.poll.close() // every socket is closing: none is parked from now on
	}
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// admit reserves a socket slot for ip; it returns the HTTP status refusing it, or 0.
func (g *Gateway) admit(ip string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopping.Load() {
		return http.StatusServiceUnavailable
	}
	if g.cfg.MaxConns > 0 && g.nconns >= g.cfg.MaxConns {
		g.metrics.fail("conn_limit")
		return http.StatusServiceUnavailable
	}
	if g.cfg.MaxConnsPerIP > 0 && g.perIP[ip] >= g.cfg.MaxConnsPerIP {
		g.metrics.fail("ip_limit")
		return http.StatusTooManyRequests
	}
	g.nconns++
	g.perIP[ip]++
	g.wg.Add(1) // the socket's reader, which waits for its writers
	return 0
}

func (g *Gateway) release(ip string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.nconns--
	if g.perIP[ip]--; g.perIP[ip] <= 0 {
		delete(g.perIP, ip)
	}
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// newConn makes the connection of an admitted client with identity id over t (a long-poll
// session sets t itself before registering it); the socket, long-poll and SSE endpoints all
// make theirs here.
func (g *Gateway) newConn(t transport, id Identity, vsn protoVersion, ip string) *conn {
	return &conn{
		g: g, t: t, id: g.cfg.Tracker.NewOwner(), user: id.User, ident: id, vsn: vsn, ip: ip,
		done: make(chan struct{}), writerDone: make(chan struct{}),
		chans: make(map[string]*sub),
	}
}

// register adds c to the connections Shutdown closes; it reports whether Shutdown has begun
// since admit, and the caller then closes c itself.
func (g *Gateway) register(c *conn) (stopping bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.conns[c] = struct{}{}
	return g.stopping.Load()
}

func (g *Gateway) unregister(c *conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.conns, c)
}

// serveSocket upgrades /socket/websocket and runs the socket until it closes.
func (g *Gateway) serveSocket(w http.ResponseWriter, r *http.Request) {
	refuse := func(kind string, status int) {
		if kind != "" {
			g.metrics.fail(kind)
		}
		http.Error(w, http.StatusText(status), status)
	}
	if g.stopping.Load() {
		refuse("", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodGet {
		refuse("method", http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	vsn, ok := parseVsn(q.Get("vsn"))
	if !ok {
		refuse("vsn", http.StatusForbidden)
		return
	}
	if !g.originAllowed(r) {
		g.logRefusedOrigin(r)
		refuse("origin", http.StatusForbidden)
		return
	}
	token, err := tokenOf(r, q)
	if err != nil {
		refuse("auth", http.StatusForbidden)
		return
	}
	id, err := g.authenticateSocket(r, token)
	if err != nil {
		g.log.Debug("socket refused", "remote", r.RemoteAddr, "err", err)
		refuse("auth", http.StatusForbidden)
		return
	}
	ip := remoteIP(r)
	if status := g.admit(ip); status != 0 {
		refuse("", status)
		return
	}
	hj := &socketHijacker{ResponseWriter: w, slack: g.cfg.WriteTimeout / deadlineSlack, readBuf: g.cfg.ReadBufferSize}
	ws, err := g.upgrader.Upgrade(hj, r, nil)
	if err != nil {
		g.metrics.fail("upgrade")
		g.release(ip)
		g.wg.Done()
		return
	}
	wt := &wsTransport{ws: ws, writeTimeout: g.cfg.WriteTimeout, br: hj.br, raw: hj.raw}
	c := g.newConn(wt, id, vsn, ip)
	wt.rd.g, wt.rd.c = g, c
	stopping := g.register(c)
	g.metrics.conns.Add(1)
	if stopping { // Shutdown ran between admit and here
		c.close(closeGoingAway, "server shutting down")
	}
	c.stopExpiry = g.expireAt(c, id.Expires)
	ws.SetReadLimit(g.cfg.MaxFrameBytes)
	// The socket is parked, or gets its own goroutine, so that the HTTP server's per-request
	// state (its buffers and deep stack) is released now rather than held for the socket's
	// lifetime.
	g.startSocket(wt)
}

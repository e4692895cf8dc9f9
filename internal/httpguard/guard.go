// Package httpguard bounds what plain HTTP clients can hold of a server: a timeout for every
// phase of a request (headers, body, response, keep-alive idle) and caps on open connections,
// in total and per remote IP, so that idle, never-reading or slow clients cannot exhaust file
// descriptors. A connection leaves the caps when it is hijacked (a WebSocket upgrade), so
// WebSockets count only against the gateway's own limits.
//
// It must never look into requests: it counts connections and sets server timeouts, nothing
// more.
package httpguard

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ErrInvalidConfig is wrapped by every error New returns for a bad Config.
var ErrInvalidConfig = errors.New("httpguard: invalid config")

// Config configures a Guard. Zero timeouts mean "none" only where the field says so.
type Config struct {
	// ReadHeaderTimeout bounds reading a request's headers, from the first byte of the request
	// (or the connection's opening) on. Must be > 0.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, headers and body. Must be > 0.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response, from the end of the request's headers on. 0 means
	// none (for an operator-only listener that serves long profiles). A streaming handler must
	// lift it for its own response with http.ResponseController.SetWriteDeadline.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sent no new request for this long.
	// Must be > 0.
	IdleTimeout time.Duration
	// MaxConns is the number of plain HTTP connections open at once; 0 = no limit. A
	// connection over it is closed at once, before anything is read.
	MaxConns int
	// MaxConnsPerIP is the number of plain HTTP connections one remote IP may hold at once;
	// 0 = no limit (set 0 behind a proxy or load balancer, which is one IP for everyone).
	MaxConnsPerIP int
}

// DefaultConfig returns the defaults for a public listener: browsers open at most a few
// connections per host, so 256 per IP leaves room for offices behind one NAT address.
func DefaultConfig() Config {
	return Config{
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxConns:          10_000,
		MaxConnsPerIP:     256,
	}
}

func (c *Config) validate() error {
	bad := func(field, why string) error { return fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, why) }
	switch {
	case c.ReadHeaderTimeout <= 0:
		return bad("ReadHeaderTimeout", "must be > 0")
	case c.ReadTimeout <= 0:
		return bad("ReadTimeout", "must be > 0")
	case c.WriteTimeout < 0:
		return bad("WriteTimeout", "must be >= 0")
	case c.IdleTimeout <= 0:
		return bad("IdleTimeout", "must be > 0")
	case c.MaxConns < 0:
		return bad("MaxConns", "must be >= 0")
	case c.MaxConnsPerIP < 0:
		return bad("MaxConnsPerIP", "must be >= 0")
	}
	return nil
}

// Guard counts the plain HTTP connections of one server. Create it with New; it is safe for
// concurrent use.
type Guard struct {
	cfg Config

	mu    sync.Mutex
	open  int
	perIP map[string]int

	refusedTotal atomic.Uint64
	refusedPerIP atomic.Uint64
}

// Stats is a snapshot of a Guard's counters.
type Stats struct {
	// Open is the number of plain HTTP connections held now.
	Open int
	// RefusedTotal and RefusedPerIP count connections closed at accept for MaxConns and for
	// MaxConnsPerIP, since New.
	RefusedTotal, RefusedPerIP uint64
}

// New validates cfg and returns a Guard. Errors wrap ErrInvalidConfig and name the field.
func New(cfg Config) (*Guard, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Guard{cfg: cfg, perIP: make(map[string]int)}, nil
}

// Stats returns the current counters.
func (g *Guard) Stats() Stats {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	return Stats{Open: open, RefusedTotal: g.refusedTotal.Load(), RefusedPerIP: g.refusedPerIP.Load()}
}

// Server returns an http.Server for h with the Guard's timeouts and the connection-state hook
// that takes hijacked and closed connections out of the caps. Serve it on Listener's result;
// the caller may set other fields (ErrorLog) before serving. A server whose ConnState is
// replaced must call the Guard's ConnState from its own.
func (g *Guard) Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		ReadTimeout:       g.cfg.ReadTimeout,
		WriteTimeout:      g.cfg.WriteTimeout,
		IdleTimeout:       g.cfg.IdleTimeout,
		ConnState:         g.ConnState,
	}
}

// ConnState is the http.Server.ConnState hook: a hijacked or closed connection leaves the caps.
func (g *Guard) ConnState(c net.Conn, s http.ConnState) {
	if s != http.StateHijacked && s != http.StateClosed {
		return
	}
	if gc, ok := c.(*guardedConn); ok {
		gc.release()
	}
}

// Listener wraps ln so that every accepted connection is counted, and one over a cap is closed
// at once. Closing the returned listener closes ln.
func (g *Guard) Listener(ln net.Listener) net.Listener { return &listener{Listener: ln, g: g} }

// admit counts a new connection from ip, or reports which cap refuses it.
func (g *Guard) admit(ip string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cfg.MaxConns > 0 && g.open >= g.cfg.MaxConns {
		g.refusedTotal.Add(1)
		return false
	}
	if g.cfg.MaxConnsPerIP > 0 && g.perIP[ip] >= g.cfg.MaxConnsPerIP {
		g.refusedPerIP.Add(1)
		return false
	}
	g.open++
	g.perIP[ip]++
	return true
}

func (g *Guard) release(ip string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open--
	if g.perIP[ip]--; g.perIP[ip] <= 0 {
		delete(g.perIP, ip)
	}
}

type listener struct {
	net.Listener
	g *Guard
}

// Accept returns the next connection within the caps; those over a cap are closed here.
func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c.RemoteAddr())
		if !l.g.admit(ip) {
			_ = c.Close()
			continue
		}
		return &guardedConn{Conn: c, g: l.g, ip: ip}, nil
	}
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// guardedConn is a counted connection; it leaves the count once, when hijacked or closed.
type guardedConn struct {
	net.Conn
	g    *Guard
	ip   string
	once sync.Once
}

func (c *guardedConn) release() { c.once.Do(func() { c.g.release(c.ip) }) }

// Close closes the connection and takes it out of the count (if it was not hijacked before).
func (c *guardedConn) Close() error {
	c.release()
	return c.Conn.Close()
}

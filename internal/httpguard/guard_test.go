package httpguard

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitFor bounds every eventual outcome; generous for a loaded machine.
const waitFor = 20 * time.Second

// serve runs h behind a Guard with cfg on an ephemeral loopback port and returns its address.
func serve(t *testing.T, cfg Config, h http.Handler) (*Guard, string) {
	t.Helper()
	g, err := New(cfg)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := g.Server(h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(g.Listener(ln))
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return g, ln.Addr().String()
}

func quickConfig() Config {
	c := DefaultConfig()
	c.ReadHeaderTimeout, c.ReadTimeout, c.WriteTimeout, c.IdleTimeout = 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond, 300*time.Millisecond
	return c
}

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

// dialFrom connects to addr from the loopback address src (127.0.0.2 is another IP).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: waitFor}
	c, err := d.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// get sends one GET on c and returns the status line, or an error if c was closed.
func get(c net.Conn, path string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(waitFor))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Status, nil
}

// closedByServer reports whether the server closes c within the bound, without c sending more.
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(waitFor))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func TestPerIPCapLeavesOtherIPsServed(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConnsPerIP = 3
	g, addr := serve(t, cfg, http.HandlerFunc(ok))
	for i := 0; i < 3; i++ {
		dialFrom(t, "127.0.0.1", addr) // idle, holding a slot
	}
	require.Eventually(t, func() bool { return g.Stats().Open == 3 }, waitFor, time.Millisecond)
	over := dialFrom(t, "127.0.0.1", addr)
	require.True(t, closedByServer(over), "a connection over the per-IP cap must be closed")
	status, err := get(dialFrom(t, "127.0.0.2", addr), "/healthz")
	require.NoError(t, err)
	require.Equal(t, "200 OK", status)
	require.Equal(t, uint64(1), g.Stats().RefusedPerIP)
}

func TestTotalCap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConns = 2
	g, addr := serve(t, cfg, http.HandlerFunc(ok))
	dialFrom(t, "127.0.0.1", addr)
	dialFrom(t, "127.0.0.2", addr)
	require.Eventually(t, func() bool { return g.Stats().Open == 2 }, waitFor, time.Millisecond)
	require.True(t, closedByServer(dialFrom(t, "127.0.0.3", addr)))
	require.Equal(t, uint64(1), g.Stats().RefusedTotal)
}

// TestHijackedConnectionsLeaveTheCaps: WebSocket upgrades hijack the connection and must not
// count against the plain-HTTP cap for as long as the socket lives.
func TestHijackedConnectionsLeaveTheCaps(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxConnsPerIP = 2
	hijacked := make(chan net.Conn, 10)
	g, addr := serve(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\n\r\n")
		hijacked <- c
	}))
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < 5; i++ {
		c := dialFrom(t, "127.0.0.1", addr)
		_ = c.SetDeadline(time.Now().Add(waitFor))
		_, err := io.WriteString(c, "GET /socket HTTP/1.1\r\nHost: x\r\n\r\n")
		require.NoError(t, err)
		line, err := bufio.NewReader(c).ReadString('\n')
		require.NoError(t, err, "upgrade %d", i)
		require.True(t, strings.HasPrefix(line, "HTTP/1.1 101"), line)
		held = append(held, <-hijacked)
	}
	require.Equal(t, 0, g.Stats().Open)
	for _, c := range held {
		require.NoError(t, c.Close()) // closing a hijacked connection does not release twice
	}
	held = nil
	require.Equal(t, 0, g.Stats().Open)
}

func TestSilentClientIsClosed(t *testing.T) {
	g, addr := serve(t, quickConfig(), http.HandlerFunc(ok))
	c := dialFrom(t, "127.0.0.1", addr)
	require.True(t, closedByServer(c))
	require.Eventually(t, func() bool { return g.Stats().Open == 0 }, waitFor, time.Millisecond)
}

func TestIdleKeepAliveIsClosed(t *testing.T) {
	g, addr := serve(t, quickConfig(), http.HandlerFunc(ok))
	c := dialFrom(t, "127.0.0.1", addr)
	status, err := get(c, "/")
	require.NoError(t, err)
	require.Equal(t, "200 OK", status)
	require.True(t, closedByServer(c))
	require.Eventually(t, func() bool { return g.Stats().Open == 0 }, waitFor, time.Millisecond)
}

func TestSlowBodyIsClosed(t *testing.T) {
	g, addr := serve(t, quickConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	c := dialFrom(t, "127.0.0.1", addr)
	_, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nabc")
	require.NoError(t, err)
	require.True(t, closedByServer(c))
	require.Eventually(t, func() bool { return g.Stats().Open == 0 }, waitFor, time.Millisecond)
}

func TestNeverReadingClientIsClosed(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	g, addr := serve(t, quickConfig(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 256; i++ { // 256 MiB: far more than socket buffers hold
			if _, err := io.WriteString(w, big); err != nil {
				return
			}
		}
	}))
	c := dialFrom(t, "127.0.0.1", addr)
	_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	// The client never reads; the server's write deadline must end the connection.
	require.Eventually(t, func() bool { return g.Stats().Open == 0 }, waitFor, 5*time.Millisecond)
}

func TestConfigValidation(t *testing.T) {
	for field, mutate := range map[string]func(*Config){
		"ReadHeaderTimeout": func(c *Config) { c.ReadHeaderTimeout = 0 },
		"ReadTimeout":       func(c *Config) { c.ReadTimeout = 0 },
		"WriteTimeout":      func(c *Config) { c.WriteTimeout = -1 },
		"IdleTimeout":       func(c *Config) { c.IdleTimeout = 0 },
		"MaxConns":          func(c *Config) { c.MaxConns = -1 },
		"MaxConnsPerIP":     func(c *Config) { c.MaxConnsPerIP = -1 },
	} {
		cfg := DefaultConfig()
		mutate(&cfg)
		_, err := New(cfg)
		require.ErrorIs(t, err, ErrInvalidConfig, field)
		require.Contains(t, err.Error(), field)
	}
}

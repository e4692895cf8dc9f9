package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// seedProbeTimeout bounds the HTTP probe of one seed.
const seedProbeTimeout = time.Second

// diagnoseSeeds runs when the first join reached no seed: it asks each seed
// over HTTP what it is, so that a --join aimed at a node's --http port by
// mistake is reported at once, naming what answered, instead of being
// retried silently forever. A gossip port does not answer HTTP, so only a
// seed that does is reported. It returns within about seedProbeTimeout.
func diagnoseSeeds(ctx context.Context, seeds []string, gossipPort int, log *slog.Logger) {
	var wg sync.WaitGroup
	for _, s := range seeds {
		addr := s
		if _, _, err := net.SplitHostPort(s); err != nil {
			addr = net.JoinHostPort(s, strconv.Itoa(gossipPort))
		}
		wg.Go(func() {
			if what := probeHTTP(ctx, addr); what != "" {
				log.Error("--join "+s+" is an HTTP server, not a gossip port: --join takes the gossip address of a node (its --bind, port 7946 by default), not its --http",
					"seed", s, "answered", what)
			}
		})
	}
	wg.Wait()
}

// probeHTTP returns a description of the HTTP server at addr ("HTTP/1.1 200
// OK from a Headcount node", "HTTP/1.1 404 Not Found, Server: nginx"), or ""
// if nothing there answers HTTP.
func probeHTTP(ctx context.Context, addr string) string {
	ctx, cancel := context.WithTimeout(ctx, seedProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return ""
	}
	client := &http.Client{
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	what := resp.Proto + " " + resp.Status
	if resp.StatusCode == http.StatusOK && strings.Contains(strings.ReplaceAll(string(body), " ", ""), `"status":"ok"`) {
		what += " on /healthz: a Headcount node's --http port"
	}
	if srv := resp.Header.Get("Server"); srv != "" {
		what += fmt.Sprintf(", Server: %s", srv)
	}
	return what
}

// notGossipListener closes, at its first byte, a connection to the HTTP
// port that cannot be HTTP (a control or non-ASCII byte: memberlist's
// message types are all below 0x20 or above 0x7f). A node whose --join
// points at this port by mistake then fails its join at once instead of
// waiting for memberlist's stream timeout (5 s), and diagnoseSeeds tells its
// operator why. Each such connection is logged, at most once per logEvery.
type notGossipListener struct {
	net.Listener
	log      *slog.Logger
	logEvery time.Duration

	mu      sync.Mutex
	lastLog time.Time
}

func (l *notGossipListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &firstByteConn{Conn: c, l: l}, nil
}

// refused logs a refused connection from remote, rate-limited.
func (l *notGossipListener) refused(remote net.Addr, b byte) {
	l.mu.Lock()
	now := time.Now()
	quiet := now.Sub(l.lastLog) < l.logEvery
	if !quiet {
		l.lastLog = now
	}
	l.mu.Unlock()
	if !quiet {
		l.log.Warn("closed a connection to the HTTP port that is not HTTP (a gossip --join aimed at --http?)",
			"remote", remote.String(), "first_byte", fmt.Sprintf("0x%02x", b))
	}
}

// firstByteConn checks the first byte read from the connection.
type firstByteConn struct {
	net.Conn
	l       *notGossipListener
	checked bool
}

func (c *firstByteConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if !c.checked && n > 0 {
		c.checked = true
		if b := p[0]; b < 0x20 || b > 0x7e {
			c.l.refused(c.Conn.RemoteAddr(), b)
			_ = c.Conn.Close()
			return 0, io.EOF
		}
	}
	return n, err
}

package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestIdleHTTPClientsCannotExhaustTheNode pins issue 10: idle keep-alive, silent, slow-body and
// never-reading clients were held forever, and 1,100 of them from one IP exhausted the node's
// file descriptors (WebSocket upgrades and /healthz timed out). Now plain HTTP connections
// are capped per IP and closed by timeouts, while WebSockets are not counted against the cap.
func TestIdleHTTPClientsCannotExhaustTheNode(t *testing.T) {
	const perIP = 20
	a := newAgent(t, "guarded", "--max-http-conns-per-ip", strconv.Itoa(perIP),
		"--http-read-timeout", "2s", "--http-write-timeout", "2s", "--http-idle-timeout", "2s")
	a.start(t)

	// The attacker, on 127.0.0.3: twice the cap of silent, slow-body, idle keep-alive and
	// pipelining-but-never-reading connections.
	var attack []net.Conn
	for i := 0; i < 2*perIP; i++ {
		c := dialFrom(t, "127.0.0.3", a.http)
		attack = append(attack, c)
		var req string
		switch i % 4 {
		case 0: // silent
		case 1:
			req = "POST /v1/demo/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nab"
		case 2:
			req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" // then idle, never reading the answer
		case 3:
			req = strings.Repeat("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 200)
		}
		if req != "" {
			_, _ = io.WriteString(c, req) // a connection refused at accept may fail here
		}
	}
	eventually(t, convergeBound, "the per-IP cap refuses the attacker's extra connections", func() error {
		refused := metric(t, a.http, `headcount_http_refused_total{cap="per_ip"}`)
		if refused < perIP {
			return fmt.Errorf("refused %d, want %d", refused, perIP)
		}
		return nil
	})

	// Others are served meanwhile: /healthz and WebSocket upgrades, and the WebSockets of one
	// IP do not count against its plain-HTTP cap.
	if code, err := getFrom("127.0.0.2", a.http, "/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz from another IP while the attacker holds its cap: %d %v", code, err)
	}
	var sockets []*websocket.Conn
	defer func() {
		for _, s := range sockets {
			s.Close()
		}
	}()
	for i := 0; i < perIP+5; i++ {
		s := wsFrom(t, "127.0.0.4", a.http)
		sockets = append(sockets, s)
		if err := s.WriteJSON([]any{"1", "1", "room:guard", "phx_join", map[string]any{}}); err != nil {
			t.Fatalf("join on socket %d: %v", i, err)
		}
	}
	if code, err := getFrom("127.0.0.4", a.http, "/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz from an IP holding %d WebSockets: %d %v", len(sockets), code, err)
	}

	// Every attacking connection is closed by the server within the timeouts.
	eventually(t, convergeBound, "the attacker's connections closed", func() error {
		if open := metric(t, a.http, "headcount_http_connections"); open > 1 { // 1: this scrape
			return fmt.Errorf("%d plain HTTP connections still open", open)
		}
		return nil
	})
	for i, c := range attack {
		_ = c.SetReadDeadline(time.Now().Add(exitBound))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("attacking connection %d (kind %d) is still open", i, i%4)
		}
	}
	eventually(t, convergeBound, "the WebSockets still counted", func() error {
		if v, _, err := topicViewers(a.http, "room:guard"); err != nil || v != perIP+5 {
			return fmt.Errorf("viewers %d, err %v", v, err)
		}
		return nil
	})
}

// dialFrom opens a TCP connection to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: startBound}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// getFrom sends GET path to addr from the loopback address src.
func getFrom(src, addr, path string) (int, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	client := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// wsFrom opens a WebSocket to addr from the loopback address src.
func wsFrom(t *testing.T, src, addr string) *websocket.Conn {
	t.Helper()
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, NetDialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		return nd.DialContext(ctx, network, a)
	}}
	c, resp, err := d.Dial("ws://"+addr+"/socket/websocket?vsn=2.0.0", nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("WebSocket from %s: %v (HTTP %d)", src, err, status)
	}
	return c
}

// metric scrapes /metrics of addr from 127.0.0.2 and returns the value of the series named
// exactly by series (name and labels), or -1 when absent.
func metric(t *testing.T, addr, series string) int {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	client := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return -1
	}
	return int(v)
}

// topicViewers returns the viewers of topic on addr.
func topicViewers(addr, topic string) (int, int, error) {
	c, err := topicCounts(addr, topic)
	return c[0], c[1], err
}

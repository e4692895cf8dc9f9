package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// monitorFlags are the flags of 'headcount monitor'.
type monitorFlags struct {
	clientFlags
	token     string
	transport string
}

// errMonitorRefused is a stream the node refused for good (bad topic,
// unauthorized): the monitor stops instead of retrying.
var errMonitorRefused = errors.New("refused")

// runMonitor prints the counts of a topic every time they change, from the
// node's event stream (GET /v1/topics/{topic}/events) or, where a node has
// none, from an observer join over WebSocket, until SIGINT/SIGTERM or ctx's
// end. It reconnects with backoff when the node goes away.
func runMonitor(ctx context.Context, e *env, args []string) error {
	var m monitorFlags
	fs := newFlagSet(e, "monitor [--addr host:port] [--token JWT] [--json] TOPIC")
	m.register(fs)
	fs.StringVar(&m.token, "token", "", "JWT for topics that need one (sent as ?token=)")
	fs.StringVar(&m.transport, "transport", "auto", "sse, websocket, or auto (sse, else websocket when the node has no event stream)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want exactly one TOPIC argument, got %d", fs.NArg())
	}
	switch m.transport {
	case "auto", "sse", "websocket":
	default:
		return usagef("--transport %q: want sse, websocket or auto", m.transport)
	}
	base, err := m.baseURL()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-e.signals:
			cancel()
		case <-ctx.Done():
		}
	}()

	topic := fs.Arg(0)
	p := &countPrinter{w: e.stdout, topic: topic, json: m.json}
	backoff := 250 * time.Millisecond
	for {
		err := m.stream(ctx, base, topic, p)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errMonitorRefused) {
			return err
		}
		fmt.Fprintf(e.stderr, "headcount monitor: %v; reconnecting in %s\n", err, backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// stream reads one connection's events into p until it ends.
func (m *monitorFlags) stream(ctx context.Context, base, topic string, p *countPrinter) error {
	if m.transport != "websocket" {
		err := m.streamSSE(ctx, base, topic, p)
		if !errors.Is(err, errNoEventStream) || m.transport == "sse" {
			return err
		}
	}
	return m.streamWebSocket(ctx, base, topic, p)
}

// errNoEventStream is a node without GET /v1/topics/{topic}/events.
var errNoEventStream = errors.New("the node has no event stream")

func (m *monitorFlags) streamSSE(ctx context.Context, base, topic string, p *countPrinter) error {
	u := base + "/v1/topics/" + url.PathEscape(topic) + "/events"
	if m.token != "" {
		u += "?token=" + url.QueryEscape(m.token)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: m.timeout}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		return errNoEventStream
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusBadRequest:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%w: GET %s: %s: %s", errMonitorRefused, redactToken(u), resp.Status, strings.TrimSpace(string(body)))
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s", redactToken(u), resp.Status)
	case !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"):
		return errNoEventStream // an older node's catch-all (the demo page)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if err := p.event(event, []byte(strings.TrimSpace(strings.TrimPrefix(line, "data:")))); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("the node closed the event stream")
}

// phoenixFrame is a Phoenix Channels V2 frame: [join_ref, ref, topic, event, payload].
type phoenixFrame [5]json.RawMessage

func (m *monitorFlags) streamWebSocket(ctx context.Context, base, topic string, p *countPrinter) error {
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/socket/websocket"
	q := url.Values{"vsn": {"2.0.0"}}
	if m.token != "" {
		q.Set("token", m.token)
	}
	u.RawQuery = q.Encode()
	dialer := websocket.Dialer{HandshakeTimeout: m.timeout, Proxy: http.ProxyFromEnvironment}
	conn, resp, err := dialer.DialContext(ctx, u.String(), nil)
	if err != nil {
		if resp != nil && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized) {
			return fmt.Errorf("%w: WebSocket upgrade: %s", errMonitorRefused, resp.Status)
		}
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	topicJSON, _ := json.Marshal(topic)
	join := fmt.Sprintf(`["1","1",%s,"phx_join",{"observe":true}]`, topicJSON)
	if err := conn.WriteMessage(websocket.TextMessage, []byte(join)); err != nil {
		return err
	}
	// Heartbeats keep the node from closing an idle socket (it expects one
	// every 30 s or so). The writer is this goroutine's only sibling.
	hbDone := make(chan struct{})
	defer func() { <-hbDone }()
	hbStop := make(chan struct{})
	defer close(hbStop)
	go func() {
		defer close(hbDone)
		t := time.NewTicker(25 * time.Second)
		defer t.Stop()
		for ref := 2; ; ref++ {
			select {
			case <-hbStop:
				return
			case <-t.C:
				msg := fmt.Sprintf(`[null,"%d","phoenix","heartbeat",{}]`, ref)
				if conn.WriteMessage(websocket.TextMessage, []byte(msg)) != nil {
					return
				}
			}
		}
	}()
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		var f phoenixFrame
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		var ev string
		_ = json.Unmarshal(f[3], &ev)
		switch ev {
		case "phx_reply":
			var r struct {
				Status   string `json:"status"`
				Response struct {
					Reason string `json:"reason"`
				} `json:"response"`
			}
			var ref string
			_ = json.Unmarshal(f[1], &ref)
			if ref == "1" && json.Unmarshal(f[4], &r) == nil && r.Status != "ok" {
				return fmt.Errorf("%w: join %q: %s", errMonitorRefused, topic, r.Response.Reason)
			}
		case "phx_error", "phx_close":
			return fmt.Errorf("the node closed the channel (%s)", ev)
		default:
			if err := p.event(ev, f[4]); err != nil {
				return err
			}
		}
	}
}

// redactToken hides a token in a URL shown in errors.
func redactToken(u string) string {
	if i := strings.Index(u, "token="); i >= 0 {
		return u[:i] + "token=REDACTED"
	}
	return u
}

// countPrinter keeps a topic's counts from presence_state and presence_diff
// events and prints a line each time they change.
type countPrinter struct {
	w              io.Writer
	topic          string
	json           bool
	viewers, users int
	known          bool
}

// countsPayload is presence_state, and each half of presence_diff.
type countsPayload struct {
	Viewers class `json:"viewers"`
	Users   class `json:"users"`
}

func (p *countPrinter) event(name string, data []byte) error {
	switch name {
	case "presence_state":
		var s countsPayload
		if err := json.Unmarshal(data, &s); err != nil {
			return fmt.Errorf("decoding presence_state: %w", err)
		}
		p.viewers, p.users, p.known = s.Viewers.Count, s.Users.Count, true
	case "presence_diff":
		var d struct {
			Joins  countsPayload `json:"joins"`
			Leaves countsPayload `json:"leaves"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			return fmt.Errorf("decoding presence_diff: %w", err)
		}
		if !p.known {
			return nil // a diff before any state cannot be applied
		}
		p.viewers += d.Joins.Viewers.Count - d.Leaves.Viewers.Count
		p.users += d.Joins.Users.Count - d.Leaves.Users.Count
	default:
		return nil
	}
	now := time.Now()
	if p.json {
		b, _ := json.Marshal(map[string]any{
			"time": now.UTC().Format(time.RFC3339Nano), "topic": p.topic,
			"viewers": map[string]int{"count": p.viewers}, "users": map[string]int{"count": p.users},
		})
		_, err := fmt.Fprintf(p.w, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintf(p.w, "%s  %s  viewers %d  users %d\n", now.Format("15:04:05.000"), p.topic, p.viewers, p.users)
	return err
}

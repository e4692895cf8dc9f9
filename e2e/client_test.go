package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// wsClient is one browser-like Phoenix V2 client joined to one topic. A
// goroutine reads its frames until the server closes the socket.
type wsClient struct {
	conn      *websocket.Conn
	done      chan struct{}
	mu        sync.Mutex
	closeCode int
	joined    chan struct{}
	counts    [2]int // viewers, users, from presence_state + diffs
}

// dial connects to node addr with an optional token and joins topic.
func dial(t *testing.T, addr, topic, token string) *wsClient {
	t.Helper()
	return dialJoin(t, addr, topic, token, map[string]any{})
}

// dialJoin is dial with a phx_join payload (e.g. {"observe": true}).
func dialJoin(t *testing.T, addr, topic, token string, payload map[string]any) *wsClient {
	t.Helper()
	q := url.Values{"vsn": {"2.0.0"}}
	if token != "" {
		q.Set("token", token)
	}
	u := "ws://" + addr + "/socket/websocket?" + q.Encode()
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, NetDialContext: nsDial}
	conn, resp, err := d.Dial(u, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", u, err, status)
	}
	c := &wsClient{conn: conn, done: make(chan struct{}), joined: make(chan struct{}), closeCode: -1}
	t.Cleanup(c.close)
	go c.read(topic)
	if err := conn.WriteJSON([]any{"1", "1", topic, "phx_join", payload}); err != nil {
		t.Fatalf("join %s on %s: %v", topic, addr, err)
	}
	select {
	case <-c.joined:
	case <-c.done:
		t.Fatalf("socket to %s closed before the join reply", addr)
	case <-time.After(startBound):
		t.Fatalf("no join reply from %s", addr)
	}
	return c
}

// read consumes frames: the join reply, presence events, and finally the close.
func (c *wsClient) read(topic string) {
	defer close(c.done)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			c.mu.Lock()
			if errors.As(err, &ce) {
				c.closeCode = ce.Code
			}
			c.mu.Unlock()
			return
		}
		var f [5]json.RawMessage
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		var t, ev string
		_ = json.Unmarshal(f[2], &t)
		_ = json.Unmarshal(f[3], &ev)
		if t != topic {
			continue
		}
		switch ev {
		case "phx_reply":
			var r struct{ Status string }
			if json.Unmarshal(f[4], &r) == nil && r.Status == "ok" {
				select {
				case <-c.joined:
				default:
					close(c.joined)
				}
			}
		case "presence_state":
			var s countsPayload
			if json.Unmarshal(f[4], &s) == nil {
				c.mu.Lock()
				c.counts = [2]int{s.Viewers.Count, s.Users.Count}
				c.mu.Unlock()
			}
		case "presence_diff":
			var d struct{ Joins, Leaves countsPayload }
			if json.Unmarshal(f[4], &d) == nil {
				c.mu.Lock()
				c.counts[0] += d.Joins.Viewers.Count - d.Leaves.Viewers.Count
				c.counts[1] += d.Joins.Users.Count - d.Leaves.Users.Count
				c.mu.Unlock()
			}
		}
	}
}

// seen returns the counts this client has been told.
func (c *wsClient) seen() [2]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts
}

// closedWith waits for the server to close the socket and returns the code.
func (c *wsClient) closedWith(t *testing.T, bound time.Duration) int {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(bound):
		t.Fatalf("socket not closed within %s", bound)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode
}

func (c *wsClient) close() {
	_ = c.conn.Close()
	<-c.done
}

// countsPayload is presence_state, and each half of presence_diff.
type countsPayload struct {
	Viewers struct{ Count int } `json:"viewers"`
	Users   struct{ Count int } `json:"users"`
}

// topicCounts asks node addr for the counts of topic over the HTTP API.
func topicCounts(addr, topic string) ([2]int, error) {
	code, body, err := get(addr, "/v1/topics/"+url.PathEscape(topic))
	if err != nil {
		return [2]int{}, err
	}
	if code != http.StatusOK {
		return [2]int{}, fmt.Errorf("GET /v1/topics: %d %s", code, body)
	}
	var p countsPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return [2]int{}, err
	}
	return [2]int{p.Viewers.Count, p.Users.Count}, nil
}

// token signs an HS256 token for user with secret.
func token(t *testing.T, secret []byte, user string) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user,
		"exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Package wsload is a WebSocket load generator for Headcount gateways: it opens many Phoenix
// V2 sockets joined to one topic and measures how long a count change takes to reach every
// socket, how many frames per second the gateway can push, and what a storm of joins costs.
// `headcount bench` and the gateway's Go benchmarks use it.
//
// It must only ever target a gateway the caller runs (loopback in our benchmarks), and every
// phase is bounded in count and in time (Config.Timeout).
package wsload

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// ErrTimeout is returned when a phase does not finish within Config.Timeout.
var ErrTimeout = errors.New("wsload: timed out")

// Percentiles summarises a latency distribution.
type Percentiles struct {
	P50, P90, P99, Max time.Duration
	N                  int
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: d[len(d)-1], N: len(d)}
}

func (p Percentiles) String() string {
	return fmt.Sprintf("p50 %v p90 %v p99 %v max %v (n=%d)", p.P50, p.P90, p.P99, p.Max, p.N)
}

// socket is one Phoenix V2 client joined to the topic, counting viewers + users from
// presence_state and presence_diff.
type socket struct {
	ws     *websocket.Conn
	count  atomic.Int64 // viewers + users as this socket knows them
	frames atomic.Int64 // presence_diff frames received
	// onCount is called by the reader goroutine after each diff with the new count.
	onCount atomic.Pointer[countFunc]
	done    chan struct{} // closed when the reader goroutine exits
	started atomic.Bool   // a reader goroutine (run or drain) was started
	replies chan reply    // churn probe only: the phx_reply frames it gets
	lost    *atomic.Int64 // counts the socket if the connection ends before close
	closing atomic.Bool   // close was called
	wmu     sync.Mutex    // serialises writes (the heartbeater writes too)

}

var dialPool = &sync.Pool{}

func dialer() *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: 30 * time.Second,
		ReadBufferSize:   512,
		WriteBufferSize:  512,
		WriteBufferPool:  dialPool,
	}
}

// socketURL adds vsn=2.0.0 (and the token) to base.
func socketURL(base, token string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("vsn", "2.0.0")
	if token != "" {
		q.Set("token", token)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// dialSocket connects; it does not join.
func dialSocket(ctx context.Context, base, token string) (*socket, error) {
	u, err := socketURL(base, token)
	if err != nil {
		return nil, err
	}
	ws, resp, err := dialer().DialContext(ctx, u, http.Header{})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	return &socket{ws: ws, done: make(chan struct{})}, nil
}

// countFunc observes a watcher's count after a diff arrived at time at.
type countFunc func(count int64, at time.Time)

// reply is a phx_reply a probe got.
type reply struct {
	ref string
	ok  bool
}

type frame struct {
	ref          string
	topic, event string
	payload      json.RawMessage
}

func readFrame(ws *websocket.Conn) (frame, error) {
	_, data, err := ws.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	var parts [5]json.RawMessage
	if err := json.Unmarshal(data, &parts); err != nil {
		return frame{}, fmt.Errorf("wsload: bad frame %q: %w", data, err)
	}
	var f frame
	_ = json.Unmarshal(parts[1], &f.ref)
	_ = json.Unmarshal(parts[2], &f.topic)
	_ = json.Unmarshal(parts[3], &f.event)
	f.payload = parts[4]
	return f, nil
}

type classCounts struct {
	Viewers struct{ Count int64 } `json:"viewers"`
	Users   struct{ Count int64 } `json:"users"`
}

// join sends phx_join and reads up to the presence_state, returning its count.
func (s *socket) join(topic string) (int64, error) {
	msg := fmt.Appendf(nil, `["1","1",%q,"phx_join",{}]`, topic)
	if err := s.send(msg); err != nil {
		return 0, err
	}
	for {
		f, err := readFrame(s.ws)
		if err != nil {
			return 0, err
		}
		switch f.event {
		case "phx_reply":
			if !bytes.Contains(f.payload, []byte(`"ok"`)) {
				return 0, fmt.Errorf("wsload: join refused: %s", f.payload)
			}
		case "presence_state":
			var c classCounts
			if err := json.Unmarshal(f.payload, &c); err != nil {
				return 0, err
			}
			return c.Viewers.Count + c.Users.Count, nil
		}
	}
}

// run reads frames until the socket closes, applying diffs.
func (s *socket) run() {
	defer close(s.done)
	defer func() {
		if s.lost != nil && !s.closing.Load() {
			s.lost.Add(1)
		}
	}()
	readDiffs(s.ws, func(delta int64, at time.Time) bool {
		s.frames.Add(1)
		n := s.count.Add(delta)
		if fn := s.onCount.Load(); fn != nil {
			(*fn)(n, at)
		}
		return true
	})
}

// readDiffs is a watcher's read loop, the fan-out's (socket.run) and the floor's: it reads
// each message whole through ws.NextReader, skips any that is not a presence_diff, and calls
// fn with the diff's count delta and the time it was read, until ws fails or fn returns false.
func readDiffs(ws *websocket.Conn, fn func(delta int64, at time.Time) bool) {
	buf := make([]byte, 0, 256)
	for {
		_, r, err := ws.NextReader()
		if err != nil {
			return
		}
		buf = buf[:0]
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := r.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err != nil {
				break
			}
		}
		delta, ok := diffDelta(buf)
		if !ok {
			continue
		}
		if !fn(delta, time.Now()) {
			return
		}
	}
}

var (
	diffEvent = []byte(`"presence_diff"`)
	countKey  = []byte(`"count":`)
)

// diffDelta returns joins - leaves (viewers + users) of a presence_diff frame. The fast path
// reads the gateway's fixed layout (joins viewers, users, then leaves viewers, users);
// anything else goes through encoding/json.
func diffDelta(frame []byte) (int64, bool) {
	if !bytes.Contains(frame, diffEvent) {
		return 0, false
	}
	var nums [4]int64
	rest, i := frame, 0
	for ; i < 5; i++ {
		at := bytes.Index(rest, countKey)
		if at < 0 {
			break
		}
		if i == 4 {
			i++ // more classes than viewers and users: use the slow path
			break
		}
		rest = rest[at+len(countKey):]
		end := 0
		for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
			end++
		}
		v, err := strconv.ParseInt(string(rest[:end]), 10, 64)
		if err != nil {
			break
		}
		nums[i] = v
	}
	j, l := bytes.Index(frame, []byte(`"joins":{"viewers"`)), bytes.Index(frame, []byte(`"leaves":{"viewers"`))
	if i == 4 && j > 0 && l > j {
		return nums[0] + nums[1] - nums[2] - nums[3], true
	}
	var parts [5]json.RawMessage
	if json.Unmarshal(frame, &parts) != nil {
		return 0, false
	}
	var d struct{ Joins, Leaves classCounts }
	if json.Unmarshal(parts[4], &d) != nil {
		return 0, false
	}
	return d.Joins.Viewers.Count + d.Joins.Users.Count - d.Leaves.Viewers.Count - d.Leaves.Users.Count, true
}

func (s *socket) close() {
	s.closing.Store(true)
	_ = s.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	s.ws.Close()
	if s.started.Load() {
		<-s.done
	}
}

// send writes one text frame.
func (s *socket) send(frame []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return s.ws.WriteMessage(websocket.TextMessage, frame)
}

// start runs fn as the socket's reader goroutine.
func (s *socket) start(fn func()) {
	s.started.Store(true)
	go fn()
}

// waitUntil polls cond every millisecond until it holds or ctx ends.
func waitUntil(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ErrTimeout
		case <-t.C:
		}
	}
	return nil
}

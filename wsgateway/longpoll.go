package wsgateway

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The long-poll transport (/socket/longpoll) is Phoenix's LongPoll, as the official client
// speaks it: a GET without a session token opens a session and is answered {"status":410,
// "token":T}; a GET with the token waits up to Config.LongPollHold for frames and is answered
// {"status":200,"token":T,"messages":[frame, ...]} or, when none came, {"status":204,"token":T};
// a POST with the token carries the client's frames, one per line (application/x-ndjson), and
// is answered {"status":200}. Protocol answers are HTTP 200 with the status in the JSON body,
// as Phoenix sends them (the client reads only the body). A session that is gone (closed,
// timed out, or never existed) is {"status":410}: the client then opens a new one and rejoins.
// Refusals carry a real HTTP status and a body status the client acts on: 403 (vsn, origin,
// token: the client closes and retries later) or 500 (limits, shutdown: it retries).
//
// A session is a conn like a WebSocket: the same channel logic, limits (it counts against
// MaxConns and MaxConnsPerIP), auth and Origin rule. Its POST handlers are its reader, one at a
// time under the session's lock. A session with no request in flight for
// Config.LongPollSessionTimeout is closed and its presences leave the counts.

// Long-poll statuses in the JSON body, as the phoenix client reads them.
const (
	lpOK        = 200
	lpNoContent = 204
	lpForbidden = 403
	lpGone      = 410
	lpError     = 500
)

const (
	// lpTokenPrefix starts every session token, so a session token is told apart from the
	// JWT the client also sends as `token` (the phoenix client appends its session token to
	// the socket's params).
	lpTokenPrefix = "lp_"
	// lpOutboxFrames bounds the frames a session holds for its next poll; while it is full
	// the session's writer waits (up to WriteTimeout), as a WebSocket writer waits for a
	// client that does not read, and the connection's own queue limit applies behind it.
	lpOutboxFrames = 128
	// lpMaxBatch is the most frames one POST may carry (the phoenix client sends at most 100).
	lpMaxBatch = 100
)

// lpSession is one long-poll session: a conn, its transport, and the lock that makes POST
// handlers its single reader.
type lpSession struct {
	token string
	c     *conn
	t     *lpTransport

	readMu sync.Mutex // held while frames are handled and during cleanup
	ended  bool       // guarded by readMu: the connection was cleaned up
}

// lpTransport is a conn's transport for a long-poll session: frames wait in an outbox until a
// poll takes them. It also keeps the session's idle timer.
type lpTransport struct {
	timeout time.Duration // session timeout
	wtime   time.Duration // write timeout
	expire  func()        // closes the connection when the session timed out

	mu       sync.Mutex
	outbox   [][]byte
	ready    chan struct{} // closed when the outbox gets frames or the transport finishes
	space    chan struct{} // closed when a poll empties the outbox
	finished bool
	aborted  chan struct{} // closed by abort
	abortOne sync.Once

	inFlight  int       // requests of the session being served
	idleSince time.Time // when the last request ended
	timer     *time.Timer
}

var _ transport = (*lpTransport)(nil)

func newLPTransport(timeout, wtime time.Duration, expire func()) *lpTransport {
	t := &lpTransport{timeout: timeout, wtime: wtime, expire: expire, aborted: make(chan struct{}), idleSince: time.Now()}
	t.timer = time.AfterFunc(timeout, t.checkIdle)
	return t
}

func (t *lpTransport) write(f *outFrame) error {
	data := f.data
	if f.shared != nil {
		data = f.shared.data
	}
	var deadline <-chan time.Time
	for {
		t.mu.Lock()
		if t.finished {
			t.mu.Unlock()
			return errLPGone
		}
		if len(t.outbox) < lpOutboxFrames {
			t.outbox = append(t.outbox, data) // frames are immutable once taken by the writer
			if t.ready != nil {
				close(t.ready)
				t.ready = nil
			}
			t.mu.Unlock()
			return nil
		}
		if t.space == nil {
			t.space = make(chan struct{})
		}
		space := t.space
		t.mu.Unlock()
		if deadline == nil {
			timer := time.NewTimer(t.wtime)
			defer timer.Stop()
			deadline = timer.C
		}
		select {
		case <-space:
		case <-t.aborted:
			return errLPGone
		case <-deadline:
			return errLPSlow
		}
	}
}

func (t *lpTransport) finish(int, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.finished = true
	if t.ready != nil {
		close(t.ready)
		t.ready = nil
	}
	t.timer.Stop()
}

func (t *lpTransport) abort() { t.abortOne.Do(func() { close(t.aborted) }) }

// take returns the frames waiting for a poll; with none, whether the transport finished, or
// else a channel closed when that changes.
func (t *lpTransport) take() (frames [][]byte, finished bool, wait <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.outbox) > 0 {
		frames, t.outbox = t.outbox, nil
		if t.space != nil {
			close(t.space)
			t.space = nil
		}
		return frames, false, nil
	}
	if t.finished {
		return nil, true, nil
	}
	if t.ready == nil {
		t.ready = make(chan struct{})
	}
	return nil, false, t.ready
}

// begin and end bracket every request of the session: the session times out only after
// LongPollSessionTimeout without one in flight.
func (t *lpTransport) begin() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inFlight++
	t.timer.Stop()
}

func (t *lpTransport) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inFlight--
	if t.inFlight == 0 && !t.finished {
		t.idleSince = time.Now()
		t.timer.Reset(t.timeout)
	}
}

// checkIdle runs when the idle timer fires; a timer that fired while a request began is stale.
func (t *lpTransport) checkIdle() {
	t.mu.Lock()
	idle := t.inFlight == 0 && !t.finished && time.Since(t.idleSince) >= t.timeout
	t.mu.Unlock()
	if idle {
		t.expire()
	}
}

// scanAll is a bufio.SplitFunc taking the whole input as one token.
func scanAll(data []byte, atEOF bool) (int, []byte, error) {
	if !atEOF || len(data) == 0 {
		return 0, nil, nil // ask for more (bounded by the scanner's buffer), or done
	}
	return len(data), data, nil
}

var (
	errLPGone = errors.New("wsgateway: long-poll session gone")
	errLPSlow = errors.New("wsgateway: long-poll client does not poll")
)

// longPolls is the gateway's table of long-poll sessions, by token.
type longPolls struct {
	mu       sync.Mutex
	sessions map[string]*lpSession
}

func (l *longPolls) get(token string) *lpSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sessions[token]
}

// lpToken mints a session token: 128 random bits, so it cannot be guessed.
func lpToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return lpTokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// lpTokens splits the `token` parameters: the phoenix client appends its session token to the
// socket's own params, so the last value is the session's (when it has the prefix) and the
// JWT, if any, comes before it.
func lpTokens(q url.Values) (jwt, session string) {
	vals := q["token"]
	if len(vals) == 0 {
		return "", ""
	}
	last := vals[len(vals)-1]
	if strings.HasPrefix(last, lpTokenPrefix) {
		if len(vals) > 1 {
			jwt = vals[0]
		}
		return jwt, last
	}
	return vals[0], ""
}

type lpReply struct {
	Status   int       `json:"status"`
	Token    string    `json:"token,omitempty"`
	Messages *[]string `json:"messages,omitempty"`
}

func writeLP(w http.ResponseWriter, httpStatus int, reply lpReply) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(httpStatus)
	_ = json.NewEncoder(w).Encode(reply)
}

// refuseLP answers a refused long-poll request, counting the refusal under kind (none: "").
func (g *Gateway) refuseLP(w http.ResponseWriter, kind string, httpStatus, status int) {
	if kind != "" {
		g.metrics.fail(kind)
	}
	writeLP(w, httpStatus, lpReply{Status: status})
}

// serveLongPoll serves /socket/longpoll.
func (g *Gateway) serveLongPoll(w http.ResponseWriter, r *http.Request) {
	if !g.originAllowed(r) {
		g.logRefusedOrigin(r)
		g.refuseLP(w, "origin", http.StatusForbidden, lpForbidden)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		// Allowed by the same rule as sockets: let the page read the answers.
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Add("Vary", "Origin")
	}
	q := r.URL.Query()
	jwt, token := lpTokens(q)
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Accept, Content-Type, X-Phoenix-AuthToken")
		w.Header().Set("Access-Control-Max-Age", "3600")
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		if token == "" {
			g.openLongPoll(w, r, q, jwt)
			return
		}
		s := g.lp.get(token)
		if s == nil {
			g.refuseLP(w, "longpoll_gone", http.StatusOK, lpGone)
			return
		}
		s.poll(w, r)
	case http.MethodPost:
		s := g.lp.get(token)
		if s == nil {
			g.refuseLP(w, "longpoll_gone", http.StatusOK, lpGone)
			return
		}
		s.publish(w, r)
	default:
		g.refuseLP(w, "method", http.StatusBadRequest, lpError)
	}
}

// openLongPoll opens a session after the same checks as a WebSocket upgrade.
func (g *Gateway) openLongPoll(w http.ResponseWriter, r *http.Request, q url.Values, jwt string) {
	if g.stopping.Load() {
		g.refuseLP(w, "", http.StatusServiceUnavailable, lpError)
		return
	}
	vsn, ok := parseVsn(q.Get("vsn"))
	if !ok {
		g.refuseLP(w, "vsn", http.StatusForbidden, lpForbidden)
		return
	}
	if jwt == "" {
		jwt = r.Header.Get("X-Phoenix-AuthToken") // the client's authToken option
	}
	id, err := g.authenticateSocket(r, jwt)
	if err != nil {
		g.log.Debug("long-poll session refused", "remote", r.RemoteAddr, "err", err)
		g.refuseLP(w, "auth", http.StatusForbidden, lpForbidden)
		return
	}
	ip := remoteIP(r)
	if status := g.admit(ip); status != 0 {
		g.refuseLP(w, "", status, lpError)
		return
	}
	c := g.newConn(nil, id, vsn, ip)
	s := &lpSession{token: lpToken(), c: c}
	s.t = newLPTransport(g.cfg.LongPollSessionTimeout, g.cfg.WriteTimeout, func() {
		g.metrics.fail("longpoll_timeout")
		c.close(closeGoingAway, "session timeout")
	})
	c.t = s.t
	g.lp.mu.Lock()
	g.lp.sessions[s.token] = s
	g.lp.mu.Unlock()
	stopping := g.register(c)
	g.metrics.conns.Add(1)
	g.metrics.lpSessions.Add(1)
	if stopping { // Shutdown ran between admit and here
		c.close(closeGoingAway, "server shutting down")
	}
	c.stopExpiry = g.expireAt(c, id.Expires) // 4001 closes the session: its next poll gets 410
	go g.runLongPoll(s)
	writeLP(w, http.StatusOK, lpReply{Status: lpGone, Token: s.token, Messages: &[]string{}})
}

// runLongPoll waits for the session to close, then removes its presences, waits for its
// writer and frees its slot. It is the session's counterpart of runSocket.
func (g *Gateway) runLongPoll(s *lpSession) {
	defer g.wg.Done()
	c := s.c
	<-c.done
	c.stopExpiry()
	s.readMu.Lock()
	s.ended = true
	c.cleanup()
	s.readMu.Unlock()
	<-c.writerDone
	g.lp.mu.Lock()
	delete(g.lp.sessions, s.token)
	g.lp.mu.Unlock()
	g.unregister(c)
	g.release(c.ip)
	g.metrics.conns.Add(-1)
	g.metrics.lpSessions.Add(-1)
}

// poll answers a GET: the waiting frames, or 204 after LongPollHold, or 410 once the session
// is gone.
func (s *lpSession) poll(w http.ResponseWriter, r *http.Request) {
	s.t.begin()
	defer s.t.end()
	cfg := s.c.g.cfg
	// A server write timeout shorter than the hold (the http.Server's, not ours) would cut the
	// answer: this response may take the hold plus one write.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(cfg.LongPollHold + cfg.WriteTimeout))
	hold := time.NewTimer(cfg.LongPollHold)
	defer hold.Stop()
	for {
		frames, finished, wait := s.t.take()
		switch {
		case len(frames) > 0:
			msgs := make([]string, len(frames))
			for i, f := range frames {
				msgs[i] = string(f)
			}
			writeLP(w, http.StatusOK, lpReply{Status: lpOK, Token: s.token, Messages: &msgs})
			return
		case finished:
			writeLP(w, http.StatusOK, lpReply{Status: lpGone})
			return
		}
		select {
		case <-wait:
		case <-hold.C:
			writeLP(w, http.StatusOK, lpReply{Status: lpNoContent, Token: s.token})
			return
		case <-r.Context().Done():
			return // the client went away; the frames stay for its next poll
		}
	}
}

// publish handles a POST: its frames, one per line, in order, as a WebSocket's reader would.
func (s *lpSession) publish(w http.ResponseWriter, r *http.Request) {
	s.t.begin()
	defer s.t.end()
	c, g := s.c, s.c.g
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if s.ended {
		writeLP(w, http.StatusOK, lpReply{Status: lpGone})
		return
	}
	fail := func(kind string, code int, reason string) {
		g.metrics.fail(kind)
		c.close(code, reason)
		writeLP(w, http.StatusBadRequest, lpReply{Status: lpError})
	}
	// Each line is handled as it is read, so a POST holds one frame in memory at a time.
	body := http.MaxBytesReader(w, r.Body, lpMaxBatch*(g.cfg.MaxFrameBytes+1))
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, min(4096, g.cfg.MaxFrameBytes)), int(g.cfg.MaxFrameBytes))
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-ndjson") {
		sc.Split(scanAll) // one frame, as clients before ndjson batches sent
	}
	for n := 0; sc.Scan(); {
		data := bytes.TrimSpace(sc.Bytes())
		if len(data) == 0 {
			continue
		}
		if n++; n > lpMaxBatch {
			fail("frame_too_big", websocket.CloseMessageTooBig, "too many frames")
			return
		}
		g.metrics.framesIn.Add(1)
		m, ok := c.decodeText(data)
		if !ok {
			writeLP(w, http.StatusBadRequest, lpReply{Status: lpError})
			return
		}
		// Answers that outrun the outbox make this POST wait for room (the client keeps
		// polling meanwhile), as a WebSocket's reader waits: a burst of joins is not a slow
		// consumer.
		if !c.serve(m) {
			writeLP(w, http.StatusOK, lpReply{Status: lpGone})
			return
		}
	}
	if sc.Err() != nil {
		fail("frame_too_big", websocket.CloseMessageTooBig, "frame too big")
		return
	}
	writeLP(w, http.StatusOK, lpReply{Status: lpOK})
}

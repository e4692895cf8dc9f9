package wsload

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/headcount-io/headcount/internal/uring"
)

// FloorConfig configures Floor.
type FloorConfig struct {
	// Conns is the number of loopback WebSocket connections (> 0).
	Conns int
	// Rounds is the number of timed rounds, each one frame to every connection (> 0).
	Rounds int
	// Writers is the number of goroutines writing, each to its share of the connections in
	// turn; 0 means runtime.GOMAXPROCS(0), as many as the gateway's writers can run at once.
	Writers int
	// IOUring makes each writer hand the kernel its connections' sends 32 at a time through
	// one io_uring submission (internal/uring), as the gateway's fan-out writers do, instead
	// of one write(2) each; Floor fails where the kernel refuses io_uring.
	IOUring bool
	// Gap is the pause between rounds.
	Gap time.Duration
	// Timeout bounds the whole run.
	Timeout time.Duration
}

// DefaultFloorConfig returns a floor run matching DefaultConfig's fan-out.
func DefaultFloorConfig() FloorConfig {
	return FloorConfig{Conns: 1000, Rounds: 20, Gap: 100 * time.Millisecond, Timeout: 5 * time.Minute}
}

// FloorResult is what Floor measured: the same distributions as Result's Delivery and
// Everyone, for bare writes.
type FloorResult struct {
	Conns, Writers, FrameBytes int
	// Method is how the frames were written: "write(2)" or "io_uring".
	Method string
	// Delivery is the time from a round's start to its frame at one connection, over every
	// connection and round; Everyone is, per round, the time until the last connection had it.
	Delivery Percentiles
	Everyone Percentiles
	// First is, per round, the time until the first connection had its frame.
	First Percentiles
	// CPU is this process's CPU time (every goroutine's, readers' too) over the timed rounds,
	// 0 when the system does not say; Frames is the number of frames they wrote.
	CPU    time.Duration
	Frames int
}

func (r FloorResult) String() string {
	return fmt.Sprintf("%d connections, %d writers (%s), %d-byte frames: delivery %v; everyone %v",
		r.Conns, r.Writers, r.Method, r.FrameBytes, r.Delivery, r.Everyone)
}

// diffPayload is the presence_diff a Phoenix V2 socket of the fan-out topic gets when one
// anonymous viewer joins.
const diffPayload = `[null,null,"bench:fanout","presence_diff",{"joins":{"viewers":{"count":1},"users":{"count":0}},"leaves":{"viewers":{"count":0},"users":{"count":0}}}]`

// diffFrame returns diffPayload as the gateway writes it: an unmasked WebSocket text frame,
// its length (126 to 65535 bytes) in the two bytes after the 126 marker.
func diffFrame() []byte {
	n := len(diffPayload)
	return append([]byte{0x81, 126, byte(n >> 8), byte(n)}, diffPayload...)
}

// Floor measures what the hardware allows a fan-out: Conns loopback WebSocket connections in
// this process, and per round one presence_diff frame written to each of them by Writers
// goroutines with nothing else (the frame's bytes straight to the server end's net.Conn: no
// WebSocket library, no deadlines, no queues), while each connection's client end is read
// by a watcher of Run's kind (dialled as Run dials, read by socket.run with its counters and
// its callback), so the clients cost the same in both and the ratio is the server's.
// A fan-out of one count change to Conns sockets cannot beat it on the same machine;
// `headcount bench` prints the ratio.
func Floor(ctx context.Context, cfg FloorConfig) (FloorResult, error) {
	if cfg.Writers == 0 {
		cfg.Writers = runtime.GOMAXPROCS(0)
	}
	frame := diffFrame()
	res := FloorResult{Conns: cfg.Conns, Writers: cfg.Writers, FrameBytes: len(frame), Method: "write(2)"}
	if cfg.IOUring {
		res.Method = "io_uring"
	}
	if cfg.Conns <= 0 || cfg.Rounds <= 0 || cfg.Writers < 0 || cfg.Timeout <= 0 {
		return res, errors.New("wsload: Floor needs Conns, Rounds and Timeout > 0 and Writers >= 0")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	p, err := openPairs(ctx, cfg.Conns)
	var readers sync.WaitGroup
	defer func() {
		p.close()
		readers.Wait()
	}()
	if err != nil {
		return res, err
	}
	stop := context.AfterFunc(ctx, p.closeConns) // unblocks readers and writers at the timeout
	defer stop()
	write := func() error { return writeAll(p.servers, cfg.Writers, frame) }
	if cfg.IOUring {
		rw, err := newRingWriters(p.servers, cfg.Writers)
		if err != nil {
			return res, err
		}
		defer rw.close()
		write = func() error { return rw.writeAll(frame) }
	}

	// Each connection is read by a watcher as Run's are (socket.run, its counters and its
	// onCount call), so that a frame costs the floor's clients what it costs Run's. The
	// watcher's callback stamps each round's arrival in at[round][i]; the last of a round
	// closes done[round].
	at := make([][]int64, cfg.Rounds)
	left := make([]atomic.Int64, cfg.Rounds)
	done := make([]chan struct{}, cfg.Rounds)
	for k := range at {
		at[k] = make([]int64, cfg.Conns)
		left[k].Store(int64(cfg.Conns))
		done[k] = make(chan struct{})
	}
	for i, ws := range p.clients {
		w := &socket{ws: ws, done: make(chan struct{})}
		k := 0 // the watcher's round: read and written by its reader goroutine only
		fn := countFunc(func(_ int64, t time.Time) {
			if k == cfg.Rounds {
				return
			}
			at[k][i] = t.UnixNano()
			if left[k].Add(-1) == 0 {
				close(done[k])
			}
			k++
		})
		w.onCount.Store(&fn)
		readers.Add(1)
		go func() {
			defer readers.Done()
			w.run() // until p.close closes ws
		}()
	}

	var delivery, everyone, firsts []time.Duration
	cpu0 := processCPU()
	for k := range cfg.Rounds {
		if k > 0 && cfg.Gap > 0 {
			select {
			case <-time.After(cfg.Gap):
			case <-ctx.Done():
				return res, ErrTimeout
			}
		}
		t0 := time.Now()
		if err := write(); err != nil {
			return res, fmt.Errorf("wsload: floor round %d: %w", k, err)
		}
		select {
		case <-done[k]:
		case <-ctx.Done():
			return res, ErrTimeout
		}
		var last time.Duration
		first := time.Duration(math.MaxInt64)
		for _, ns := range at[k] {
			d := time.Duration(ns - t0.UnixNano())
			delivery = append(delivery, d)
			last = max(last, d)
			first = min(first, d)
		}
		everyone = append(everyone, last)
		firsts = append(firsts, first)
	}
	if cpu0 > 0 {
		res.CPU = processCPU() - cpu0
	}
	res.Frames = cfg.Conns * cfg.Rounds
	res.Delivery, res.Everyone, res.First = percentiles(delivery), percentiles(everyone), percentiles(firsts)
	return res, nil
}

// writeAll writes frame once to every connection, with writers goroutines each taking a
// contiguous share.
func writeAll(conns []net.Conn, writers int, frame []byte) error {
	return shareOut(len(conns), writers, func(_, lo, hi int) error {
		for _, c := range conns[lo:hi] {
			if _, err := c.Write(frame); err != nil {
				return err
			}
		}
		return nil
	})
}

// shareOut runs write(w, lo, hi) for each of writers goroutines, w's share of n connections
// being [lo, hi), and waits for them all.
func shareOut(n, writers int, write func(w, lo, hi int) error) error {
	var wg sync.WaitGroup
	errs := make([]error, writers)
	per := (n + writers - 1) / writers
	for w := range writers {
		lo, hi := min(w*per, n), min((w+1)*per, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = write(w, lo, hi)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ErrNoIOUring is Floor's error when FloorConfig.IOUring is set and the kernel refuses io_uring.
var ErrNoIOUring = errors.New("wsload: no io_uring for the floor")

// ringWriters are a floor's writers with an io_uring each, and the server ends' descriptors
// (read once: the floor owns its connections and closes them only when it is done, or at its
// timeout, when a send to a closed descriptor fails and ends the run).
type ringWriters struct {
	fds   []int
	rings []*uring.Ring
}

// ringChunk is how many sends one submission makes: the gateway's writers' chunk.
const ringChunk = 32

func newRingWriters(conns []net.Conn, writers int) (*ringWriters, error) {
	rw := &ringWriters{fds: make([]int, len(conns))}
	for i, c := range conns {
		tc, ok := c.(*net.TCPConn)
		if !ok {
			return nil, fmt.Errorf("wsload: floor connection %d is a %T, not TCP", i, c)
		}
		raw, err := tc.SyscallConn()
		if err != nil {
			return nil, err
		}
		if err := raw.Control(func(fd uintptr) { rw.fds[i] = int(fd) }); err != nil {
			return nil, err
		}
	}
	for range writers {
		r, err := uring.New(ringChunk)
		if err != nil {
			rw.close()
			return nil, fmt.Errorf("%w: %w", ErrNoIOUring, err)
		}
		rw.rings = append(rw.rings, r)
	}
	return rw, nil
}

// writeAll writes frame once to every connection: each writer takes a contiguous share and
// sends it ringChunk connections per submission. A partial send is an error: the floor's
// sockets have room for a frame.
func (rw *ringWriters) writeAll(frame []byte) error {
	return shareOut(len(rw.fds), len(rw.rings), func(w, lo, hi int) error {
		bufs := make([][]byte, ringChunk)
		for i := range bufs {
			bufs[i] = frame
		}
		res := make([]int32, ringChunk)
		for i := lo; i < hi; i += ringChunk {
			j := min(i+ringChunk, hi)
			if _, err := rw.rings[w].Send(rw.fds[i:j], bufs, res); err != nil {
				return err
			}
			for k, n := range res[:j-i] {
				if int(n) != len(frame) {
					return fmt.Errorf("wsload: send to connection %d: %d (bytes, or -errno)", i+k, n)
				}
			}
		}
		return nil
	})
}

func (rw *ringWriters) close() {
	for _, r := range rw.rings {
		r.Close()
	}
}

// pairs are a floor's WebSocket connections: for each, the server end's net.Conn (the
// floor writes frames to it) and the client end (the floor reads them from it).
type pairs struct {
	srv     *http.Server
	served  chan struct{} // closed when srv.Serve returned
	mu      sync.Mutex
	servers []net.Conn
	clients []*websocket.Conn
	// accepted holds the server ends upgraded but not yet taken by openPairs.
	accepted chan net.Conn
}

// openPairs serves WebSocket upgrades on a 127.0.0.1 listener and dials n connections to it
// as Run dials. The caller closes the pairs, even on error.
func openPairs(ctx context.Context, n int) (*pairs, error) {
	p := &pairs{served: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		close(p.served)
		return p, err
	}
	up := websocket.Upgrader{ReadBufferSize: 512, WriteBufferSize: 512}
	p.accepted = make(chan net.Conn, n) // never blocks a handler
	accepted := p.accepted
	p.srv = &http.Server{
		ReadHeaderTimeout: 30 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			select {
			case accepted <- ws.NetConn():
			default: // more upgrades than dials: not ours
				ws.Close()
			}
		}),
	}
	go func() {
		defer close(p.served)
		_ = p.srv.Serve(ln) // ErrServerClosed once close is called
	}()
	base := "ws://" + ln.Addr().String() + "/"
	for range n {
		s, err := dialSocket(ctx, base, "")
		if err != nil {
			return p, fmt.Errorf("wsload: floor dial: %w", err)
		}
		p.add(nil, s.ws)
		select {
		case c := <-accepted:
			p.add(c, nil)
		case <-ctx.Done():
			return p, ErrTimeout
		}
	}
	return p, nil
}

func (p *pairs) add(server net.Conn, client *websocket.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if server != nil {
		p.servers = append(p.servers, server)
	}
	if client != nil {
		p.clients = append(p.clients, client)
	}
}

// closeConns closes every connection, both ends.
func (p *pairs) closeConns() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.servers {
		c.Close()
	}
	for _, ws := range p.clients {
		ws.Close()
	}
}

// close closes every connection and the server, and waits for the server to stop.
func (p *pairs) close() {
	p.closeConns()
	if p.srv != nil {
		p.srv.Close()
	}
	<-p.served
	for {
		select {
		case c := <-p.accepted: // nil channel when the listener failed: never ready
			c.Close()
		default:
			return
		}
	}
}

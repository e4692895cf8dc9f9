package wsgateway

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller holds the gateway's idle sockets with no goroutine for any of them: each is
// registered, one-shot, with an epoll instance that one goroutine waits on. When a socket
// becomes readable (a frame, the client's close, a reset) the poller starts runSocket for it;
// runSocket parks it again when nothing is left buffered. The same goroutine sweeps the parked
// sockets for idle deadlines, a few times per IdleTimeout: a sweep of a map is cheaper than a
// timer per socket. Events name a socket by its id, never by its file descriptor, which the
// kernel reuses as soon as a socket closes.
//
// A socket is in parked from park until exactly one of: its epoll event, the sweep finding
// it idle, unpark (it is closing), or the poller's close; whichever takes it out of parked
// under mu starts its reader. A closed socket leaves the epoll set by itself (the kernel drops
// a file from every epoll set when it is released) and every epoll_ctl runs inside the
// socket's RawConn.Control, which holds the descriptor open, so a reused descriptor is never
// touched.
//
// The epoll instance and the goroutine start with the first park, so that a gateway that
// never serves a WebSocket (a long-poll test in a synctest bubble, where a goroutine in a
// syscall would keep the bubble's clock from advancing) has neither.
type poller struct {
	every time.Duration
	log   *slog.Logger
	wake  func(s *wsTransport, wait bool) // starts a reader, in a new goroutine

	mu       sync.Mutex
	started  bool            // epfd, evfd and the goroutine exist
	closed   bool            // nothing parks any more: closed before it started, or the goroutine returned
	epfd     int             // the epoll instance
	epf      *os.File        // epfd, in the runtime's poller
	epraw    syscall.RawConn // epf's, to wait for events without holding a P
	deadline time.Time       // epf's read deadline (the goroutine's only)
	evfd     int             // an eventfd in the set: written to stop the goroutine
	parked   map[uint64]*wsTransport
	nextID   uint64

	stopping bool          // evfd was written
	done     chan struct{} // closed when the goroutine has returned
}

// stopID is the event id of evfd; sockets' ids start at 1.
const stopID = 0

// pollerEvents is how many events one epoll_wait returns at most.
const pollerEvents = 256

// newPoller returns the gateway's poller; idle is its IdleTimeout. wake is called, without
// the poller's lock, for every socket the poller takes out of parked.
func newPoller(idle time.Duration, log *slog.Logger, wake func(s *wsTransport, wait bool)) *poller {
	return &poller{every: sweepEvery(idle), log: log, wake: wake, parked: make(map[uint64]*wsTransport)}
}

// startLocked creates the epoll instance and starts the goroutine. Called with mu held.
func (p *poller) startLocked() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("wsgateway: epoll_create1: %w", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return fmt.Errorf("wsgateway: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setEventID(&ev, stopID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return fmt.Errorf("wsgateway: epoll_ctl: %w", err)
	}
	// The goroutine waits for the epoll instance in the Go runtime's own poller, not in
	// epoll_wait: a goroutine blocked in a system call keeps its P until the runtime's monitor
	// takes it back, up to 10 ms later when the process was idle, and the poller wakes for a
	// join just before the fan-out it causes. With one of two Ps held so, no thread polled the
	// network and the clients of a 2,000-socket fan-out read nothing until the writers were
	// done: the first socket had its frame 8-12 ms after the join instead of 3-4 ms
	// (BENCHMARKS.md, "Fan-out through io_uring, and the poller that held a P").
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return fmt.Errorf("wsgateway: epoll fd: %w", err)
	}
	epf := os.NewFile(uintptr(epfd), "epoll")
	raw, err := epf.SyscallConn()
	if err != nil {
		epf.Close()
		unix.Close(evfd)
		return fmt.Errorf("wsgateway: epoll fd: %w", err)
	}
	p.epfd, p.epf, p.epraw, p.evfd, p.started = epfd, epf, raw, evfd, true
	p.done = make(chan struct{})
	go p.run()
	return nil
}

// sweepEvery is the time between two sweeps for idle sockets: an idle socket is closed at
// most this late.
func sweepEvery(idle time.Duration) time.Duration {
	return min(max(idle/16, time.Millisecond), time.Second)
}

// setEventID stores id in an event's data (its 8 bytes are the Fd and Pad fields).
func setEventID(ev *unix.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}

func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// park registers an idle socket (nothing buffered) for its next event. Reader only.
func (p *poller) park(w *wsTransport) parkResult {
	s := &w.rd
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return parkNot
	}
	if !p.started {
		if err := p.startLocked(); err != nil {
			p.log.Warn("no poller: every socket holds a goroutine", "err", err)
			p.closed = true
			return parkNot
		}
	}
	if w.closing() { // unpark has run or will find nothing to wake
		return parkClosed
	}
	if s.id == 0 {
		p.nextID++
		s.id = p.nextID
	}
	// In parked before it is armed: its event may come at once.
	p.parked[s.id] = w
	op := unix.EPOLL_CTL_MOD // re-arms the one-shot registration
	if !s.armed {
		op = unix.EPOLL_CTL_ADD
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
	setEventID(&ev, s.id)
	var ctlErr error
	err := w.raw.Control(func(fd uintptr) { ctlErr = unix.EpollCtl(p.epfd, op, int(fd), &ev) })
	if err == nil {
		err = ctlErr
	}
	if err != nil {
		delete(p.parked, s.id)
		if w.closing() { // closed (by its writer) since the check above
			return parkClosed
		}
		p.log.Warn("socket not parked", "err", err)
		return parkNot
	}
	s.armed = true
	return parked
}

// unpark starts the reader of a parked socket that is closing, so that it cleans up. May be
// called from any goroutine, for any socket, parked or not.
func (p *poller) unpark(w *wsTransport) {
	p.mu.Lock()
	id := w.rd.id
	if id == 0 || p.parked[id] != w {
		p.mu.Unlock()
		return
	}
	delete(p.parked, id)
	p.mu.Unlock()
	p.wake(w, false)
}

// run is the poller's goroutine: it waits for events and sweeps until close.
func (p *poller) run() {
	defer p.shut()
	events := make([]unix.EpollEvent, pollerEvents)
	var woken []*wsTransport
	next := time.Now().Add(p.every)
	for {
		n, err := p.wait(events, next)
		if err != nil {
			p.log.Error("epoll_wait failed: idle sockets wait in goroutines from now", "err", err)
			return
		}
		stop := false
		woken = woken[:0]
		p.mu.Lock()
		for i := range events[:n] {
			id := eventID(&events[i])
			if id == stopID {
				stop = true
				continue
			}
			if s := p.parked[id]; s != nil { // else: already woken otherwise
				delete(p.parked, id)
				woken = append(woken, s)
			}
		}
		if now := time.Now(); !now.Before(next) {
			woken = p.sweepLocked(now, woken)
			next = now.Add(p.every)
		}
		p.mu.Unlock()
		for _, s := range woken {
			p.wake(s, false)
		}
		clear(woken)
		if stop {
			return
		}
	}
}

// wait returns the events ready, or none at the deadline (the next sweep's time), parked
// meanwhile in the runtime's poller, which wakes it when the epoll instance has events.
func (p *poller) wait(events []unix.EpollEvent, deadline time.Time) (int, error) {
	if !deadline.Equal(p.deadline) { // a new sweep time: once per sweep, not per wake
		if err := p.epf.SetReadDeadline(deadline); err != nil {
			return 0, err
		}
		p.deadline = deadline
	}
	var n int
	var werr error
	err := p.epraw.Read(func(fd uintptr) bool {
		n, werr = unix.EpollWait(int(fd), events, 0)
		if errors.Is(werr, unix.EINTR) {
			n, werr = 0, nil
		}
		return n > 0 || werr != nil // nothing yet: wait for the instance to become readable
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return n, werr
}

// sweepLocked takes the parked sockets whose idle deadline has passed out of parked and
// appends them to woken: their reader's read times out at once. Called with mu held.
func (p *poller) sweepLocked(now time.Time, woken []*wsTransport) []*wsTransport {
	for id, w := range p.parked {
		if !now.Before(w.rd.deadline) {
			delete(p.parked, id)
			woken = append(woken, w)
		}
	}
	return woken
}

// close stops the goroutine and waits for it. Idempotent.
func (p *poller) close() {
	p.mu.Lock()
	if !p.started {
		p.closed = true
		p.mu.Unlock()
		return
	}
	if !p.closed && !p.stopping { // evfd is open until the goroutine has returned
		p.stopping = true
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		if _, err := unix.Write(p.evfd, one[:]); err != nil { // cannot fail: the counter is 0 or 1
			p.log.Error("poller not stopped", "err", err)
		}
	}
	p.mu.Unlock()
	<-p.done
}

// shut ends the poller as its goroutine returns: it closes the epoll instance, and sockets
// still parked then (none once Shutdown has closed every socket, but all of them should
// epoll_wait fail) get their reader back, waiting in a goroutine.
func (p *poller) shut() {
	p.mu.Lock()
	p.closed = true
	rest := make([]*wsTransport, 0, len(p.parked))
	for _, s := range p.parked {
		rest = append(rest, s)
	}
	clear(p.parked)
	p.epf.Close() // and with it epfd
	unix.Close(p.evfd)
	p.mu.Unlock()
	for _, s := range rest {
		p.wake(s, true)
	}
	close(p.done)
}

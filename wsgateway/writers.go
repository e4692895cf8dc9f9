package wsgateway

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/headcount-io/headcount/internal/uring"
)

// The fan-out writers. A broadcast to N sockets used to start N writer goroutines, one per
// socket, each of which set a write deadline and wrote one frame through gorilla: the goroutine
// starts, the scheduling and the library around write(2) cost about a third of the server's
// time in a fan-out. Instead, the hub goroutine and GOMAXPROCS-1 helpers (as many writers as
// can run at once) now share the sockets of a broadcast, and each writes a socket's queued
// frames with one non-blocking write(2) (direct_linux.go). A socket whose kernel buffer is
// full (the client is slow) is handed to a writer goroutine of its own, which finishes the
// frame with the write deadline and keeps the socket until its queue is empty, as every
// socket's writer did before: fan-out still never waits for a slow client. Long-poll, SSE
// and sockets that cannot be written without waiting always have writer goroutines.

// writeChunk is how many channels a writer takes from a broadcast at a time.
const writeChunk = 32

// inlineWrites is the broadcast size below which the hub goroutine writes every socket
// itself: waking the helpers costs more than it saves.
const inlineWrites = 2 * writeChunk

// writerPool is the gateway's fan-out writers: the hub goroutine and the helpers it wakes.
type writerPool struct {
	g       *Gateway
	helpers []chan *writeJob // one per helper goroutine
	hub     *sendBatch       // the hub goroutine's
	refused atomic.Bool      // io_uring is off (Config.NoIOUring) or the kernel refused it
}

// writeJob is one broadcast's channels, shared out by chunks.
type writeJob struct {
	subs   []*sub
	shared *sharedDiffs
	next   atomic.Int64 // the next chunk's first index
	left   atomic.Int64 // channels not yet done
	queued atomic.Int64 // diffs queued
	done   chan struct{}
}

// startWriters starts the helpers; they stop when g.stop is closed.
func (g *Gateway) startWriters() {
	g.writers = &writerPool{g: g}
	g.writers.refused.Store(g.cfg.NoIOUring)
	g.writers.hub = g.writers.newBatch()
	for range runtime.GOMAXPROCS(0) - 1 {
		work := make(chan *writeJob, 1)
		g.writers.helpers = append(g.writers.helpers, work)
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			b := g.writers.newBatch()
			defer b.close()
			for {
				select {
				case <-g.stop:
					return
				case j := <-work:
					j.run(g, b)
				}
			}
		}()
	}
}

// push brings each of subs to shared's counts: it queues the channel's diff (pushCounts)
// and, when no writer is at its socket, writes the socket's queued frames at once, a chunk
// of sockets at a time (sendBatch), so that the socket's state is still in the cache of the
// core that queued them. It returns the number of diffs queued, once each is written or
// handed to a goroutine. Hub goroutine only.
func (p *writerPool) push(subs []*sub, shared *sharedDiffs) int64 {
	if len(subs) == 0 {
		return 0
	}
	if len(subs) < inlineWrites || len(p.helpers) == 0 {
		var st writeStats
		var queued int64
		for lo := 0; lo < len(subs); lo += writeChunk {
			queued += p.hub.push(subs[lo:min(lo+writeChunk, len(subs))], shared, &st)
		}
		st.add(p.g)
		return queued
	}
	j := &writeJob{subs: subs, shared: shared, done: make(chan struct{})}
	j.left.Store(int64(len(subs)))
	for _, h := range p.helpers {
		select {
		case h <- j:
		default: // a helper has not taken an earlier job yet (it will find that one done)
		}
	}
	j.run(p.g, p.hub)
	<-j.done // chunks taken by helpers are written without waiting: this is short
	return j.queued.Load()
}

// run does chunks of j until none is left, with the calling writer's batch. A helper that
// stopped never takes a chunk, and the hub goroutine then does them all.
func (j *writeJob) run(g *Gateway, b *sendBatch) {
	var st writeStats
	defer st.add(g)
	n := int64(len(j.subs))
	for {
		hi := j.next.Add(writeChunk)
		lo := hi - writeChunk
		if lo >= n {
			return
		}
		hi = min(hi, n)
		if queued := b.push(j.subs[lo:hi], j.shared, &st); queued > 0 {
			j.queued.Add(queued)
		}
		if j.left.Add(lo-hi) == 0 {
			close(j.done)
		}
	}
}

// writeStats counts a writer's frames, added to the shared counters once per batch rather
// than once per frame (each Add bounces the counter's cache line between the cores).
type writeStats struct{ frames, diffs uint64 }

func (st *writeStats) count(batch []*outFrame) {
	for _, f := range batch {
		if !f.skip {
			st.frames++
			if f.sub != nil {
				st.diffs++
			}
		}
	}
}

func (st *writeStats) add(g *Gateway) {
	if st.frames > 0 {
		g.metrics.framesOut.Add(st.frames)
	}
	if st.diffs > 0 {
		g.metrics.diffsSent.Add(st.diffs)
	}
	*st = writeStats{}
}

// sendBatch is one fan-out writer's sockets of a chunk, written together: with one io_uring
// submission for all of them where the kernel allows it (internal/uring), or else one
// non-blocking write(2) each. One writer goroutine owns it.
type sendBatch struct {
	pool    *writerPool
	ring    *uring.Ring // nil: write(2) per socket
	tried   bool        // the ring was asked for
	slots   []directSlot
	scratch [writeChunk][]byte // frame buffers, one per slot, kept between chunks
	// For the io_uring submission: chain[i] records slot i's descriptor from inside a
	// RawConn.Control callback, which holds it open until the submission returns; and the
	// arguments and results of Send.
	chain []func(fd uintptr)
	fds   []int
	bufs  [][]byte
	res   []int32
	index []int // fds[k] is slot index[k]'s
}

// directSlot is one socket of a sendBatch: its queued frames taken from it, their bytes on
// the wire, and how the write went.
type directSlot struct {
	c     *conn
	batch []*outFrame
	frame []byte
	fd    int // while the batch is submitted through io_uring; -1: Control refused (closed)
	n     int
	err   error
}

func (p *writerPool) newBatch() *sendBatch {
	b := &sendBatch{pool: p, res: make([]int32, writeChunk)}
	b.chain = make([]func(uintptr), writeChunk)
	for i := range b.chain {
		b.chain[i] = func(fd uintptr) {
			b.slots[i].fd = int(fd)
			b.enter(i + 1)
		}
	}
	return b
}

// push is the writer's turn at a chunk of subs (at most writeChunk): it queues each
// channel's diff and writes the sockets that have no writer. It returns the number of diffs
// queued.
func (b *sendBatch) push(subs []*sub, shared *sharedDiffs, st *writeStats) int64 {
	var queued int64
	for _, s := range subs {
		q, write := s.c.pushCounts(s, shared)
		if write {
			b.add(s.c)
		}
		if q {
			queued++
		}
	}
	b.flush(st)
	return queued
}

// add takes c's queue for the batch, c's writer being this fan-out writer (pushCounts
// reported write), and takes c's write mutex until the batch is written.
func (b *sendBatch) add(c *conn) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		go c.writeLoop() // it finishes the transport
		return
	}
	batch := c.take()
	c.mu.Unlock()
	frame := directFrame(batch, &b.scratch[len(b.slots)])
	if len(frame) == 0 {
		c.doneDirect(batch)
		return
	}
	c.ds.dc.wmu.Lock() // c.ds was set when c was put on the writers' list (direct)
	b.slots = append(b.slots, directSlot{c: c, batch: batch, frame: frame})
}

// flush writes every socket added since the last flush, each with one non-blocking send,
// and ends each one's turn: written whole, handed to a goroutine of the socket's own for the
// rest when the kernel took only part of it (holding the write mutex from here, so that
// nothing comes between), or closed on an error.
func (b *sendBatch) flush(st *writeStats) {
	if len(b.slots) == 0 {
		return
	}
	if !b.tried {
		b.tried = true
		b.ring = b.pool.newRing()
	}
	if b.ring != nil && len(b.slots) > 1 {
		b.enter(0)
	} else {
		for i := range b.slots {
			sl := &b.slots[i]
			sl.n, sl.err = sl.c.ds.tryWrite(sl.frame)
		}
	}
	for i := range b.slots {
		b.slots[i].done(st)
		b.slots[i] = directSlot{}
	}
	b.slots = b.slots[:0]
}

// done ends a fan-out writer's turn at the slot's socket, once its write was made.
func (sl *directSlot) done(st *writeStats) {
	c, dc := sl.c, sl.c.ds.dc
	if sl.err != nil {
		dc.wmu.Unlock()
		c.g.metrics.fail("write")
		c.close(0, "")
		c.mu.Lock()
		c.release(sl.batch)
		c.mu.Unlock()
		go c.writeLoop() // it finishes the transport
		return
	}
	if sl.n < len(sl.frame) {
		rest := append([]byte(nil), sl.frame[sl.n:]...) // frame may be the writer's scratch buffer
		go c.finishDirect(dc, c.g.cfg.WriteTimeout, rest, sl.batch)
		return
	}
	dc.wmu.Unlock()
	st.count(sl.batch)
	c.doneDirect(sl.batch)
}

// enter holds slot i's descriptor open (RawConn.Control, which keeps the socket from being
// closed and its descriptor reused while the callback runs) and goes on with the next slot
// from inside the callback, so that every slot's descriptor is held when the last one
// submits the sends. A socket already closed is not sent to.
func (b *sendBatch) enter(i int) {
	if i == len(b.slots) {
		b.submit()
		return
	}
	if err := b.slots[i].c.ds.raw.Control(b.chain[i]); err != nil {
		b.slots[i].err = err
		b.slots[i].fd = -1
		b.enter(i + 1)
	}
}

// submit sends every slot's frame through the ring, with every descriptor held. Should the
// ring fail, the sends it did not make are made with write(2) and the writer stops using it.
func (b *sendBatch) submit() {
	b.fds, b.bufs, b.index = b.fds[:0], b.bufs[:0], b.index[:0]
	for i := range b.slots {
		if fd := b.slots[i].fd; fd >= 0 {
			b.fds = append(b.fds, fd)
			b.bufs = append(b.bufs, b.slots[i].frame)
			b.index = append(b.index, i)
		}
	}
	made, err := b.ring.Send(b.fds, b.bufs, b.res)
	for k, i := range b.index {
		sl := &b.slots[i]
		if k >= made {
			sl.n, sl.err = writeNow(b.fds[k], sl.frame)
			continue
		}
		sl.n, sl.err = sendResult(b.res[k])
	}
	if err != nil {
		b.pool.g.log.Warn("wsgateway: the fan-out writer's io_uring failed; it writes with write(2) from now on", "err", err)
		b.close()
	}
	clear(b.bufs) // the frames are not kept
}

// close releases the batch's ring.
func (b *sendBatch) close() {
	if b.ring != nil {
		b.ring.Close()
		b.ring = nil
		b.pool.g.metrics.ringWriters.Add(-1)
	}
}

// newRing returns a ring for one writer's batches, or nil when io_uring is off or refused:
// the first refusal is logged, and no writer asks again.
func (p *writerPool) newRing() *uring.Ring {
	if p.refused.Load() {
		return nil
	}
	r, err := uring.New(writeChunk)
	if err != nil {
		if p.refused.CompareAndSwap(false, true) {
			p.g.log.Info("wsgateway: fan-out writers write each socket with write(2): io_uring is not available", "err", err)
		}
		return nil
	}
	if r.Max() < writeChunk {
		r.Close()
		p.refused.Store(true)
		return nil
	}
	p.g.metrics.ringWriters.Add(1)
	return r
}

// doneDirect ends a fan-out writer's turn at c: a goroutine takes over when more frames were
// queued meanwhile or c is closing.
func (c *conn) doneDirect(batch []*outFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.release(batch)
	if c.closing || len(c.queue) > 0 {
		go c.writeLoop()
		return
	}
	c.writing = false
}

// finishDirect is c's writer goroutine after a partial non-blocking write: it writes rest
// (the remainder of batch's frames) with the write deadline, releases the write mutex the
// fan-out writer took, and then writes c's queue as writeLoop does.
func (c *conn) finishDirect(dc *deadlineConn, timeout time.Duration, rest []byte, batch []*outFrame) {
	if testHookHandOff != nil {
		testHookHandOff(dc)
	}
	err := dc.writeLocked(rest, timeout)
	dc.wmu.Unlock()
	if err != nil {
		c.g.metrics.fail("write")
		c.close(0, "")
	} else {
		var st writeStats
		st.count(batch)
		st.add(c.g)
	}
	c.mu.Lock()
	c.release(batch)
	c.mu.Unlock()
	c.writeLoop()
}

// testHookHandOff, when not nil, is called by the goroutine a fan-out writer handed a socket
// to, before it writes anything (tests only).
var testHookHandOff func(*deadlineConn)

// directFrame returns the bytes on the wire of batch's frames: a shared frame's own bytes when
// it is the only one, or else the frames built in scratch.
func directFrame(batch []*outFrame, scratch *[]byte) []byte {
	var one *outFrame
	n := 0
	for _, f := range batch {
		if !f.skip {
			one = f
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if n == 1 && one.shared != nil {
		return one.shared.wire
	}
	buf := (*scratch)[:0]
	for _, f := range batch {
		if f.skip {
			continue
		}
		if f.shared != nil {
			buf = append(buf, f.shared.wire...)
		} else {
			buf = appendText(buf, f.data)
		}
	}
	if cap(buf) <= maxKeptFrameBuffer {
		*scratch = buf
	}
	return buf
}

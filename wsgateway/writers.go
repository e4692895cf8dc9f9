package wsgateway

import (
	"runtime"
	"sync/atomic"
	"time"
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
	scratch []byte           // the hub goroutine's frame buffer
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
	for range runtime.GOMAXPROCS(0) - 1 {
		work := make(chan *writeJob, 1)
		g.writers.helpers = append(g.writers.helpers, work)
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			var scratch []byte
			for {
				select {
				case <-g.stop:
					return
				case j := <-work:
					j.run(g, &scratch)
				}
			}
		}()
	}
}

// push brings each of subs to shared's counts: it queues the channel's diff (pushCounts)
// and, when no writer is at its socket, writes the socket's queued frames at once
// (flushDirect), so that the socket's state is still in the cache of the core that queued
// them. It returns the number of diffs queued, once each is written or handed to a
// goroutine. Hub goroutine only.
func (p *writerPool) push(subs []*sub, shared *sharedDiffs) int64 {
	if len(subs) == 0 {
		return 0
	}
	if len(subs) < inlineWrites || len(p.helpers) == 0 {
		var st writeStats
		var queued int64
		for _, s := range subs {
			queued += pushOne(s, shared, &p.scratch, &st)
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
	j.run(p.g, &p.scratch)
	<-j.done // chunks taken by helpers are written without waiting: this is short
	return j.queued.Load()
}

// pushOne is one writer's turn at s in a broadcast: it returns 1 when a diff was queued.
func pushOne(s *sub, shared *sharedDiffs, scratch *[]byte, st *writeStats) int64 {
	queued, write := s.c.pushCounts(s, shared)
	if write {
		s.c.flushDirect(scratch, st)
	}
	if queued {
		return 1
	}
	return 0
}

// run does chunks of j until none is left. A helper that stopped never takes a chunk, and
// the hub goroutine then does them all.
func (j *writeJob) run(g *Gateway, scratch *[]byte) {
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
		var queued int64
		for _, s := range j.subs[lo:hi] {
			queued += pushOne(s, j.shared, scratch, &st)
		}
		if queued > 0 {
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

// flushDirect is a fan-out writer's turn at c: it takes c's queue and writes it with one
// non-blocking write. When the kernel takes only part of it, a goroutine of c's own writes the
// rest, holding the write mutex from here so that nothing comes between, and then writes what
// c queued since. scratch is the writer's frame buffer.
func (c *conn) flushDirect(scratch *[]byte, st *writeStats) {
	ds := c.ds // set when c was put on the writers' list (direct)
	dc := ds.dc
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		go c.writeLoop() // it finishes the transport
		return
	}
	batch := c.take()
	c.mu.Unlock()
	frame := directFrame(batch, scratch)
	if len(frame) == 0 {
		c.doneDirect(batch)
		return
	}
	dc.wmu.Lock()
	n, err := ds.tryWrite(frame)
	if err != nil {
		dc.wmu.Unlock()
		c.g.metrics.fail("write")
		c.close(0, "")
		c.mu.Lock()
		c.release(batch)
		c.mu.Unlock()
		go c.writeLoop() // it finishes the transport
		return
	}
	if n < len(frame) {
		rest := append([]byte(nil), frame[n:]...) // frame may be the writer's scratch buffer
		go c.finishDirect(dc, c.g.cfg.WriteTimeout, rest, batch)
		return
	}
	dc.wmu.Unlock()
	st.count(batch)
	c.doneDirect(batch)
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

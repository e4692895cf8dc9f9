//go:build linux

package wsgateway

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// The reader of a socket is parked between frames (socket.go, poller_linux.go). These tests
// pin what must keep working when no goroutine waits for a socket.

// parkedSockets returns how many sockets the gateway's poller holds.
func parkedSockets(tg *testGateway) int {
	p := tg.g.poll
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}

// waitParked waits until the poller holds n sockets.
func waitParked(t *testing.T, tg *testGateway, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return parkedSockets(tg) == n }, waitFor, time.Millisecond,
		"want %d parked sockets", n)
}

// maskedText is a client's text frame as raw bytes (masked with a zero key, so the payload
// is unchanged).
func maskedText(payload string) []byte {
	n := len(payload)
	var b []byte
	if n < 126 {
		b = []byte{0x81, 0x80 | byte(n)}
	} else {
		b = []byte{0x81, 0x80 | 126, byte(n >> 8), byte(n)}
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, payload...)
}

// onlyConn returns the gateway's one connection.
func onlyConn(t *testing.T, tg *testGateway) *conn {
	t.Helper()
	tg.g.mu.Lock()
	defer tg.g.mu.Unlock()
	require.Len(t, tg.g.conns, 1)
	for c := range tg.g.conns {
		return c
	}
	return nil
}

// requireGone waits until the gateway has cleaned up after its sockets: no connection left and
// no presence in topic.
func requireGone(t *testing.T, tg *testGateway, topic string) {
	t.Helper()
	require.Eventually(t, func() bool { return tg.g.Connections() == 0 && tg.tr.Count(topic).Connections == 0 },
		waitFor, 5*time.Millisecond, "the socket's presence and slot")
}

// TestParkedSocketClosedFromElsewhere: a close that does not come from the socket's reader
// (a slow consumer, its token's expiry, Shutdown, a failed write: all go through conn.close)
// wakes the parked socket's reader, which removes its presence and frees its slot; the
// client gets the close code.
func TestParkedSocketClosedFromElsewhere(t *testing.T) {
	tg := startGateway(t, nil)
	c := tg.dial(t, "vsn=2.0.0")
	c.join("room:a", "1")
	c.expect(stateFrame("1", "room:a", 1, 0))
	waitParked(t, tg, 1)
	onlyConn(t, tg).close(closePolicy, "slow consumer")
	ce := c.expectCloseFrame()
	require.Equal(t, closePolicy, ce.Code)
	requireGone(t, tg, "room:a")
}

// TestParkedSocketPeerGone: a client that goes away while its socket is parked, with a FIN
// (no close frame) or a reset, is cleaned up.
func TestParkedSocketPeerGone(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) {
			tg := startGateway(t, nil)
			c := tg.dial(t, "vsn=2.0.0")
			c.join("room:a", "1")
			c.expect(stateFrame("1", "room:a", 1, 0))
			waitParked(t, tg, 1)
			tcp := c.ws.NetConn().(*net.TCPConn)
			if reset {
				require.NoError(t, tcp.SetLinger(0)) // close sends RST
			}
			require.NoError(t, tcp.Close())
			requireGone(t, tg, "room:a")
		})
	}
}

// TestParkedSocketHalfFrame: a frame that arrives in pieces is read by a reader woken by its
// first bytes, which waits for the rest; the socket is parked again afterwards. A client that
// never sends the rest is closed as idle: the read keeps the idle deadline, so a slowloris
// holds a goroutine no longer than IdleTimeout.
func TestParkedSocketHalfFrame(t *testing.T) {
	t.Run("completed", func(t *testing.T) {
		tg := startGateway(t, nil)
		c := tg.dial(t, "vsn=2.0.0")
		c.join("room:a", "1")
		c.expect(stateFrame("1", "room:a", 1, 0))
		waitParked(t, tg, 1)
		frame := maskedText(`[null,"hb","phoenix","heartbeat",{}]`)
		_, err := c.ws.NetConn().Write(frame[:5])
		require.NoError(t, err)
		waitParked(t, tg, 0) // a reader has woken; it waits for the rest of the frame
		_, err = c.ws.NetConn().Write(frame[5:])
		require.NoError(t, err)
		c.expect(`[null,"hb","phoenix","phx_reply",{"status":"ok","response":{}}]`)
		waitParked(t, tg, 1)
	})
	t.Run("never completed", func(t *testing.T) {
		tg := startGateway(t, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
		c := tg.dial(t, "vsn=2.0.0")
		c.join("room:a", "1")
		c.expect(stateFrame("1", "room:a", 1, 0))
		_, err := c.ws.NetConn().Write(maskedText(`[null,"hb","phoenix","heartbeat",{}]`)[:5])
		require.NoError(t, err)
		ce := c.expectCloseFrame()
		require.Equal(t, closeGoingAway, ce.Code)
		require.Equal(t, "idle timeout", ce.Text)
		requireGone(t, tg, "room:a")
		require.EqualValues(t, 1, metricValue(t, tg, `headcount_gateway_errors_total{kind="idle_timeout"}`))
	})
}

// TestParkedSocketFramesBackToBack: frames that arrive together (in one segment, so the read
// buffer holds the next when one is served) are all served, in order, by one wake-up.
func TestParkedSocketFramesBackToBack(t *testing.T) {
	tg := startGateway(t, nil)
	c := tg.dial(t, "vsn=2.0.0")
	c.join("room:a", "1")
	c.expect(stateFrame("1", "room:a", 1, 0))
	const frames = 40 // about 1.8 KB: more than the 512-byte read buffer
	var burst []byte
	for i := range frames {
		burst = append(burst, maskedText(fmt.Sprintf(`[null,"%d","phoenix","heartbeat",{}]`, i))...)
	}
	_, err := c.ws.NetConn().Write(burst)
	require.NoError(t, err)
	for i := range frames {
		c.expect(fmt.Sprintf(`[null,"%d","phoenix","phx_reply",{"status":"ok","response":{}}]`, i))
	}
	c.heartbeat()
}

// TestShutdownClosesManyParkedSockets: Shutdown with a thousand parked sockets closes every
// one with 1001, removes their presences and returns once their readers are done.
func TestShutdownClosesManyParkedSockets(t *testing.T) {
	sockets := min(1000, (int(raiseNoFile())-200)/2) // client and server ends share this process
	tg := startGateway(t, func(c *Config) { c.MaxConnsPerIP = 0 })
	clients := make([]*client, sockets)
	for i := range clients {
		c := tg.dial(t, "vsn=2.0.0")
		topic := fmt.Sprintf("room:%d", i)
		c.join(topic, "1")
		c.expect(stateFrame("1", topic, 1, 0))
		clients[i] = c
	}
	waitParked(t, tg, sockets)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	require.NoError(t, tg.g.Shutdown(ctx))
	require.Equal(t, 0, tg.g.Connections())
	for i := range clients {
		require.Zero(t, tg.tr.Count(fmt.Sprintf("room:%d", i)).Connections)
	}
	for _, c := range clients {
		require.Equal(t, websocket.CloseGoingAway, c.expectClose())
	}
}

// TestSocketWithoutPoller: a socket the poller cannot hold (gorilla's own read buffer, when
// ReadBufferSize is below minOwnReadBuffer) has a reader goroutine waiting in gorilla's read,
// which serves frames larger than the buffer and cleans up when the client goes.
func TestSocketWithoutPoller(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.ReadBufferSize = 128 })
	c := tg.dial(t, "vsn=2.0.0")
	topic := "room:" + strings.Repeat("x", 200)
	c.join(topic, "1")
	c.expect(stateFrame("1", topic, 1, 0))
	c.heartbeat()
	require.NoError(t, c.ws.NetConn().Close())
	requireGone(t, tg, topic)
}

// TestIdleSocketHoldsNoGoroutine pins that an idle socket holds no goroutine, hence no stack
// and no g: between frames it is parked with the gateway's poller (poller_linux.go). Before,
// every socket's reader waited for its next frame in a goroutine of its own (2-3 KB of stack
// and a g of about 660 B per idle socket at 19,600 sockets in [K]); before that, in one that
// had kept the 8 KB stack its join grew. Nor does it hold a read buffer. The parked sockets
// still answer.
func TestIdleSocketHoldsNoGoroutine(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxConnsPerIP = 0 })
	const sockets = 200
	base := stackSample()
	clients := make([]*client, sockets)
	for i := range clients {
		c := tg.dial(t, "vsn=2.0.0") // no client goroutine: reads are synchronous
		topic := fmt.Sprintf("room:%d", i)
		c.join(topic, "1")
		c.expect(stateFrame("1", topic, 1, 0))
		clients[i] = c
	}
	// The writers exit once their queues are empty, the readers once they have parked their
	// socket: wait until only the odd server goroutine (the poller's) is left.
	waitParked(t, tg, sockets)
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= base.goroutines+idleGoroutineSlack },
		waitFor, 10*time.Millisecond, "goroutines for %d idle sockets", sockets)
	buffered := 0 // read buffer bytes of the parked sockets
	tg.g.poll.mu.Lock()
	for _, w := range tg.g.poll.parked {
		buffered += w.br.Size()
	}
	tg.g.poll.mu.Unlock()
	require.Zero(t, buffered, "read buffer bytes held by parked sockets")
	idle := stackSample()
	perSocket := float64(int64(idle.stack)-int64(base.stack)) / sockets
	t.Logf("stack per idle socket: %.0f B (%d goroutines for %d sockets)", perSocket, idle.goroutines-base.goroutines, sockets)
	require.Less(t, perSocket, float64(idleStackLimit), "stack bytes per idle socket")
	for _, c := range clients {
		c.heartbeat()
	}
}

// idleGoroutineSlack is the goroutines a gateway may start besides its sockets' (the poller's,
// a timer's).
const idleGoroutineSlack = 4

// idleStackLimit is less than one goroutine's smallest stack (2 KB) per socket.
const idleStackLimit = 512

// BenchmarkPollerSweep: one sweep of 20,000 parked sockets, none of them idle for long enough
// (the common case: a sweep runs every IdleTimeout/16, at most every second).
//
//	go test -run '^$' -bench PollerSweep ./wsgateway/
func BenchmarkPollerSweep(b *testing.B) {
	const sockets = 20000
	p := newPoller(time.Minute, nil, nil)
	now := time.Now()
	for i := range sockets {
		w := &wsTransport{}
		w.rd.id, w.rd.deadline = uint64(i+1), now.Add(time.Minute)
		p.parked[w.rd.id] = w
	}
	var woken []*wsTransport
	for b.Loop() {
		p.mu.Lock()
		woken = p.sweepLocked(now, woken[:0])
		p.mu.Unlock()
	}
	if len(woken) != 0 || len(p.parked) != sockets {
		b.Fatalf("swept %d, %d left", len(woken), len(p.parked))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/sockets, "ns/socket")
}

// TestPollerWaitsWithoutHoldingAP: the poller's goroutine waits for its epoll instance in
// the runtime's poller ("IO wait"), never blocked in epoll_wait ("syscall"): a goroutine in a
// blocking system call keeps its P until the runtime's monitor takes it back, up to 10 ms
// later, and on two cores the clients of a fan-out that the poller had just woken for then
// read nothing until the writers were done (the first of 2,000 sockets had a change 8-12
// ms after the join, 3-4 ms since).
func TestPollerWaitsWithoutHoldingAP(t *testing.T) {
	tg := startGateway(t, nil)
	c := tg.dial(t, "vsn=2.0.0")
	c.join("room:p", "1")
	c.expect(stateFrame("1", "room:p", 1, 0)) // the socket is parked: the poller runs
	state := func() string {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "wsgateway.(*poller).run(") {
				head, _, _ := strings.Cut(g, "\n")
				return head
			}
		}
		return "no poller goroutine"
	}
	var inSyscall string
	require.Eventually(t, func() bool {
		st := state()
		if strings.Contains(st, "[syscall") {
			inSyscall = st
		}
		return strings.Contains(st, "[IO wait")
	}, waitFor, time.Millisecond, "the poller never waited in the runtime's poller")
	require.Empty(t, inSyscall, "the poller blocked in a system call, holding a P")
}

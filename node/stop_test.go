package node_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/node"
)

// stuckClient opens a plain HTTP connection to addr, pipelines many requests for the demo
// page's script and never reads a byte: the server's handler blocks writing the responses,
// so its connection stays active and http.Server.Shutdown waits for it until its context ends.
func stuckClient(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	req := strings.Repeat("GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n", 4000) // ~45 MB of responses
	go func() {
		// Blocks once the server stops reading; ends when the connection is cut.
		_, _ = c.Write([]byte(req))
	}()
}

// Regression: the agent's stop shared one deadline between draining plain HTTP, the goodbye
// and closing the sockets, and http.Server.Shutdown waits for every active request. A few
// never-reading HTTP clients used up the whole --shutdown-timeout: peers then learned of the
// stop only by failure detection and WebSocket clients got EOF instead of 1001. Each step now
// has its own bound.
func TestRegressionStuckHTTPClientsCannotEatTheGoodbye(t *testing.T) {
	ca, cb := testConfig(t, "a"), testConfig(t, "b")
	ca.Stop = node.StopConfig{Drain: 300 * time.Millisecond, Goodbye: 5 * time.Second, Sockets: 5 * time.Second}
	ln := &countingListener{Listener: ca.Listener}
	ca.Listener = ln
	a := start(t, ca)
	cb.Gossip.Label, cb.Gossip.Join = ca.Gossip.Label, []string{a.Gossip().Addr()}
	b := start(t, cb)

	ws := joinSocket(t, a, "lobby")
	require.Eventually(t, func() bool { return b.Tracker().Count("lobby").Viewers == 1 }, waitFor, 5*time.Millisecond)
	for range 3 {
		stuckClient(t, a.HTTPAddr())
	}
	// Wait until they are stuck: the server wrote to each what the socket buffers hold, then
	// stopped.
	var last int64
	require.Eventually(t, func() bool {
		n, total := ln.heavy(1 << 20)
		stuck := n == 3 && total == last
		last = total
		return stuck
	}, waitFor, 100*time.Millisecond)

	before := b.Gossip().Stats() // the test profile's detector may have flapped under load
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := a.Leave(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the drain step ran out of time: the clients were stuck")
	require.ErrorContains(t, err, "drain http")
	require.NotContains(t, err.Error(), "goodbye")
	require.NotContains(t, err.Error(), "close sockets")

	requireGoingAway(t, ws)
	require.Eventually(t, func() bool { return b.Gossip().Stats().Left == before.Left+1 }, waitFor, 5*time.Millisecond,
		"b learns of a's stop by its goodbye: %+v", b.Gossip().Stats())
	require.Equal(t, before.Failed, b.Gossip().Stats().Failed, "b must not see a's stop as a failure")
	require.Zero(t, b.Tracker().Count("lobby").Viewers, "a's presence is dropped at once")
}

// countingListener counts the bytes written to each connection it accepted.
type countingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []*countingConn
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c}
	l.mu.Lock()
	l.conns = append(l.conns, cc)
	l.mu.Unlock()
	return cc, nil
}

// heavy returns how many connections were written more than min bytes, and the total.
func (l *countingListener) heavy(min int64) (n int, total int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		w := c.written.Load()
		total += w
		if w > min {
			n++
		}
	}
	return n, total
}

type countingConn struct {
	net.Conn
	written atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}

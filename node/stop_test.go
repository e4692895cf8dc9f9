package node_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/node"
)

// stuckClient opens a plain HTTP connection to addr and asks for the demo page's script. Its
// server side is a stalledConn, so the handler blocks writing the response, as it does for a
// client that never reads once the socket buffers are full: the connection stays active and
// http.Server.Shutdown waits for it until its context ends.
func stuckClient(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Write([]byte("GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
}

// Regression: the agent's stop shared one deadline between draining plain HTTP, the goodbye
// and closing the sockets, and http.Server.Shutdown waits for every active request. A few
// never-reading HTTP clients used up the whole --shutdown-timeout: peers then learned of the
// stop only by failure detection and WebSocket clients got EOF instead of 1001. Each step now
// has its own bound.
func TestRegressionStuckHTTPClientsCannotEatTheGoodbye(t *testing.T) {
	ca, cb := testConfig(t, "a"), testConfig(t, "b")
	ca.Stop = node.StopConfig{Drain: 300 * time.Millisecond, Goodbye: 5 * time.Second, Sockets: 5 * time.Second}
	ln := &stallListener{Listener: ca.Listener}
	ca.Listener = ln
	a := start(t, ca)
	cb.Gossip.Label, cb.Gossip.Join = ca.Gossip.Label, []string{a.Gossip().Addr()}
	b := start(t, cb)

	ws := joinSocket(t, a, "lobby")
	require.Eventually(t, func() bool { return b.Tracker().Count("lobby").Viewers == 1 }, waitFor, 5*time.Millisecond)
	ln.stall.Store(true) // the connections accepted from now on are the stuck clients'
	for range 3 {
		stuckClient(t, a.HTTPAddr())
	}
	require.Eventually(t, func() bool { return ln.blocked.Load() == 3 }, waitFor, 5*time.Millisecond,
		"every stuck client's response is being written")

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

// stallListener hands out, once stall is set, connections whose writes block until they are
// closed. A client that never reads gets there only once the socket buffers are full, and
// telling that from a server that is merely slow takes a guess at how long a pause means
// stuck; on a loaded machine that guess was wrong once (a pause of the writers passed for
// stuck, Shutdown then closed the connections between two responses and the drain did not run
// out of time).
type stallListener struct {
	net.Listener
	stall   atomic.Bool
	blocked atomic.Int32 // writes blocked now
}

func (l *stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil || !l.stall.Load() {
		return c, err
	}
	return &stalledConn{Conn: c, l: l, closed: make(chan struct{})}, nil
}

// stalledConn is a connection whose writes wait for Close, then fail.
type stalledConn struct {
	net.Conn
	l      *stallListener
	once   sync.Once
	closed chan struct{}
}

func (c *stalledConn) Write([]byte) (int, error) {
	c.l.blocked.Add(1)
	defer c.l.blocked.Add(-1)
	<-c.closed
	return 0, net.ErrClosed
}

func (c *stalledConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

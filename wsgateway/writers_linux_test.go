// Linux only: elsewhere no socket is written without waiting (direct_other.go).

package wsgateway

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// upgradedSocket upgrades one loopback WebSocket as serveSocket does (through a
// socketHijacker, so that gorilla writes through a deadlineConn) and returns the server's end
// and the client's. Both are closed at the end of the test.
func upgradedSocket(t *testing.T) (*websocket.Conn, *websocket.Conn) {
	t.Helper()
	got := make(chan *websocket.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
		ws, err := up.Upgrade(&socketHijacker{ResponseWriter: w, slack: time.Second}, r, nil)
		if err == nil {
			got <- ws
		}
	}))
	t.Cleanup(srv.Close)
	client, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	require.NoError(t, err)
	resp.Body.Close()
	t.Cleanup(func() { client.Close() })
	var server *websocket.Conn
	select {
	case server = <-got:
	case <-time.After(waitFor):
		t.Fatal("no upgrade")
	}
	t.Cleanup(func() { server.Close() })
	return server, client
}

// TestDirectWriteHandsOffFullSocket: a fan-out writer never waits for a client. With the
// socket's buffers full it writes what the kernel takes and hands the rest to a goroutine of
// the socket's own, which delivers every frame whole and in order (text headers of every
// length class) while the reader answers the client's pings: no pong lands inside a frame.
func TestDirectWriteHandsOffFullSocket(t *testing.T) {
	tg := startGateway(t, nil)
	server, client := upgradedSocket(t)
	readerDone := make(chan struct{})
	go func() { // the server's reader: gorilla answers pings from here, mid-write
		defer close(readerDone)
		for {
			if _, _, err := server.ReadMessage(); err != nil {
				return
			}
		}
	}()
	// Fixed buffers, far smaller than the batch (the kernel doubles them; loopback does not
	// grow them any more).
	require.NoError(t, server.NetConn().(*deadlineConn).Conn.(*net.TCPConn).SetWriteBuffer(64<<10))
	require.NoError(t, client.NetConn().(*net.TCPConn).SetReadBuffer(64<<10))

	c := tg.g.newConn(&wsTransport{ws: server, writeTimeout: waitFor}, Identity{}, vsn2, "127.0.0.1")
	c.mu.Lock()
	require.NotNil(t, c.direct())
	c.mu.Unlock()
	sizes := []int{1, 125, 126, 127, 65535, 65536, 70000}
	var want []string
	for i := range 3 * len(sizes) {
		p := fmt.Sprintf("%04d", i)
		p += strings.Repeat(string(rune('a'+i%26)), sizes[i%len(sizes)]-min(len(p), sizes[i%len(sizes)]))
		want = append(want, p[:sizes[i%len(sizes)]])
	}
	c.mu.Lock()
	c.writing = true // as kickDirect leaves a socket it hands to a fan-out writer
	for _, p := range want {
		c.queue = append(c.queue, &outFrame{data: []byte(p)})
		c.queued += len(p)
	}
	c.mu.Unlock()

	handedOff := make(chan bool, 1)
	testHookHandOff = func(dc *deadlineConn) {
		locked := dc.wmu.TryLock()
		if locked {
			dc.wmu.Unlock()
		}
		handedOff <- !locked
	}
	t.Cleanup(func() { testHookHandOff = nil })
	var scratch []byte
	var st writeStats
	c.flushDirect(&scratch, &st) // the client has read nothing: this must not wait
	require.Zero(t, st.frames, "the kernel cannot have taken 600 KB: the batch was handed off")
	select {
	case held := <-handedOff:
		require.True(t, held, "the write mutex is held across the hand-off: nothing can write between the two parts of a frame")
	case <-time.After(waitFor):
		t.Fatal("no hand-off")
	}

	var pongs atomic.Int32
	client.SetPongHandler(func(string) error { pongs.Add(1); return nil })
	require.NoError(t, client.SetReadDeadline(time.Now().Add(waitFor)))
	const pings = 20
	for i, p := range want {
		if i < pings {
			require.NoError(t, client.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(waitFor)))
		}
		mt, got, err := client.ReadMessage()
		require.NoError(t, err, "frame %d", i)
		require.Equal(t, websocket.TextMessage, mt)
		require.Equal(t, len(p), len(got), "frame %d", i)
		require.Equal(t, p, string(got), "frame %d", i)
	}
	// Frames through a writer goroutine, after the handed-off one finished, until every pong
	// (each one written between whole frames) has been read too.
	sent := 0
	for ; sent < 1000 && pongs.Load() < pings; sent++ {
		end := fmt.Sprintf("end %d", sent)
		c.enqueue([]byte(end))
		_, got, err := client.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, end, string(got))
	}
	require.Equal(t, int32(pings), pongs.Load(), "every ping answered between whole frames")

	c.close(closeGoingAway, "test over")
	select {
	case <-c.writerDone:
	case <-time.After(waitFor):
		t.Fatal("the writer did not finish")
	}
	require.Equal(t, uint64(len(want)+sent), tg.g.metrics.framesOut.Load())
	_, _, err := client.ReadMessage()
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, closeGoingAway, ce.Code)
	<-readerDone
}

// TestStuckClientDoesNotDelayFanout: a client that stops reading while its topic changes
// fills its socket; the fan-out writers hand it to its own goroutine, which gives up after
// WriteTimeout and closes it, while another client in the topic gets every diff meanwhile.
func TestStuckClientDoesNotDelayFanout(t *testing.T) {
	tg := startGateway(t, func(c *Config) {
		c.CoalesceWindow = time.Millisecond
		c.JoinRate, c.JoinBurst = 1e6, 1e6 // the churning socket rejoins as fast as it can
		c.WriteTimeout = time.Second
	})
	topic := "room:" + strings.Repeat("x", 240) // long diffs fill the socket sooner
	good := tg.dial(t, "vsn=2.0.0")
	good.join(topic, "1")
	good.expect(stateFrame("1", topic, 1, 0))

	before := map[*conn]bool{}
	tg.g.mu.Lock()
	for c := range tg.g.conns {
		before[c] = true
	}
	tg.g.mu.Unlock()
	stuck := tg.dial(t, "vsn=2.0.0")
	stuck.join(topic, "1")
	stuck.expect(stateFrame("1", topic, 2, 0)) // and then it never reads again
	good.expect(diffFrame(topic, 1, 0, 0, 0))
	var sc *conn
	tg.g.mu.Lock()
	for c := range tg.g.conns {
		if !before[c] {
			sc = c
		}
	}
	tg.g.mu.Unlock()
	require.NotNil(t, sc)
	sc.mu.Lock()
	require.NotNil(t, sc.direct(), "a loopback socket is written by the fan-out writers")
	sc.mu.Unlock()
	require.NoError(t, sc.t.(*wsTransport).socket().Conn.(*net.TCPConn).SetWriteBuffer(4096))
	require.NoError(t, stuck.ws.NetConn().(*net.TCPConn).SetReadBuffer(4096))

	// A third socket joins and leaves, each time waiting until the good client's diffs add up
	// to the topic's count (a change and the stuck socket's leave may cancel out in one
	// window: then there is no diff), until the stuck one is closed.
	count := 2
	readGood := func() {
		var f []json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(good.read()), &f))
		require.Len(t, f, 5)
		var d struct {
			Joins, Leaves struct{ Viewers struct{ Count int } }
		}
		require.NoError(t, json.Unmarshal(f[4], &d))
		count += d.Joins.Viewers.Count - d.Leaves.Viewers.Count
	}
	settle := func() {
		for count != tg.g.countNow(topic).Viewers {
			readGood()
		}
	}
	churn := tg.dial(t, "vsn=2.0.0")
	deadline := time.Now().Add(waitFor)
	for i := 0; i < 2000 && time.Now().Before(deadline) && !stuckClosed(t, tg); i++ {
		churn.join(topic, "1")
		churn.read() // presence_state
		settle()
		churn.sendRaw(fmt.Sprintf(`["1","l%d",%q,"phx_leave",{}]`, i, topic))
		churn.read() // reply
		churn.read() // phx_close
		settle()
	}
	require.True(t, stuckClosed(t, tg), "the stuck socket was not closed")
	require.Equal(t, 1.0, metricValue(t, tg, `headcount_gateway_errors_total{kind="write"}`), "closed by its write timeout")
	// The stuck socket's presence goes, and the good client's diffs still add up.
	require.Eventually(t, func() bool { return tg.g.countNow(topic).Viewers == 1 }, waitFor, 10*time.Millisecond)
	settle()
}

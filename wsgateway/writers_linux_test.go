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
// sockets' buffers full it writes what the kernel takes and hands the rest to a goroutine of
// each socket's own, which delivers every frame whole and in order (text headers of every
// length class) while the reader answers the client's pings: no pong lands inside a frame.
// Two sockets share the writer's batch, written through io_uring and with write(2).
func TestDirectWriteHandsOffFullSocket(t *testing.T) {
	for _, ring := range []bool{true, false} {
		t.Run(fmt.Sprintf("io_uring=%v", ring), func(t *testing.T) { testHandOff(t, ring) })
	}
}

func testHandOff(t *testing.T, ring bool) {
	tg := startGateway(t, func(c *Config) { c.NoIOUring = !ring })
	type end struct {
		server, client *websocket.Conn
		c              *conn
		readerDone     chan struct{}
		pongs          atomic.Int32
	}
	ends := make([]*end, 2)
	sizes := []int{1, 125, 126, 127, 65535, 65536, 70000}
	var want []string
	for i := range 3 * len(sizes) {
		p := fmt.Sprintf("%04d", i)
		p += strings.Repeat(string(rune('a'+i%26)), sizes[i%len(sizes)]-min(len(p), sizes[i%len(sizes)]))
		want = append(want, p[:sizes[i%len(sizes)]])
	}
	for k := range ends {
		e := &end{readerDone: make(chan struct{})}
		ends[k] = e
		e.server, e.client = upgradedSocket(t)
		go func() { // the server's reader: gorilla answers pings from here, mid-write
			defer close(e.readerDone)
			for {
				if _, _, err := e.server.ReadMessage(); err != nil {
					return
				}
			}
		}()
		// Fixed buffers, far smaller than the batch (the kernel doubles them; loopback does
		// not grow them any more).
		require.NoError(t, e.server.NetConn().(*deadlineConn).Conn.(*net.TCPConn).SetWriteBuffer(64<<10))
		require.NoError(t, e.client.NetConn().(*net.TCPConn).SetReadBuffer(64<<10))
		e.c = tg.g.newConn(&wsTransport{ws: e.server, writeTimeout: waitFor}, Identity{}, vsn2, "127.0.0.1")
		e.c.mu.Lock()
		require.NotNil(t, e.c.direct())
		e.c.writing = true // as kickDirect leaves a socket it hands to a fan-out writer
		for _, p := range want {
			e.c.queue = append(e.c.queue, &outFrame{data: []byte(p)})
			e.c.queued += len(p)
		}
		e.c.mu.Unlock()
	}

	handedOff := make(chan bool, len(ends))
	testHookHandOff = func(dc *deadlineConn) {
		locked := dc.wmu.TryLock()
		if locked {
			dc.wmu.Unlock()
		}
		handedOff <- !locked
	}
	t.Cleanup(func() { testHookHandOff = nil })
	b := tg.g.writers.newBatch()
	defer b.close()
	var st writeStats
	for _, e := range ends {
		b.add(e.c)
	}
	b.flush(&st) // the clients have read nothing: this must not wait
	require.Equal(t, ring, b.ring != nil, "the batch went through io_uring when it was on")
	require.Zero(t, st.frames, "the kernel cannot have taken 600 KB: the batches were handed off")
	for range ends {
		select {
		case held := <-handedOff:
			require.True(t, held, "the write mutex is held across the hand-off: nothing can write between the two parts of a frame")
		case <-time.After(waitFor):
			t.Fatal("no hand-off")
		}
	}

	const pings = 20
	for k, e := range ends {
		e.client.SetPongHandler(func(string) error { e.pongs.Add(1); return nil })
		require.NoError(t, e.client.SetReadDeadline(time.Now().Add(waitFor)))
		for i, p := range want {
			if i < pings {
				require.NoError(t, e.client.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(waitFor)))
			}
			mt, got, err := e.client.ReadMessage()
			require.NoError(t, err, "socket %d frame %d", k, i)
			require.Equal(t, websocket.TextMessage, mt)
			require.Equal(t, len(p), len(got), "socket %d frame %d", k, i)
			require.Equal(t, p, string(got), "socket %d frame %d", k, i)
		}
	}
	// Frames through a writer goroutine, after the handed-off one finished, until every pong
	// (each one written between whole frames) has been read too.
	sent := 0
	for k, e := range ends {
		for i := 0; i < 1000 && e.pongs.Load() < pings; i++ {
			msg := fmt.Sprintf("end %d %d", k, i)
			e.c.enqueue([]byte(msg))
			sent++
			_, got, err := e.client.ReadMessage()
			require.NoError(t, err)
			require.Equal(t, msg, string(got))
		}
		require.Equal(t, int32(pings), e.pongs.Load(), "every ping answered between whole frames")
	}

	for _, e := range ends {
		e.c.close(closeGoingAway, "test over")
		select {
		case <-e.c.writerDone:
		case <-time.After(waitFor):
			t.Fatal("the writer did not finish")
		}
	}
	require.Equal(t, uint64(len(ends)*len(want)+sent), tg.g.metrics.framesOut.Load())
	for _, e := range ends {
		_, _, err := e.client.ReadMessage()
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, closeGoingAway, ce.Code)
		<-e.readerDone
	}
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

// TestBatchSurvivesClosedSocketAndBrokenRing: in one writer's batch, a socket closed after
// it was added fails alone (the others are written), and a ring that fails mid-batch leaves
// its sends to write(2): every frame still arrives, and the writer stops using the ring.
func TestBatchSurvivesClosedSocketAndBrokenRing(t *testing.T) {
	for _, ring := range []string{"working", "broken", "off"} {
		t.Run("io_uring="+ring, func(t *testing.T) {
			tg := startGateway(t, func(c *Config) { c.NoIOUring = ring == "off" })
			const n = 4
			clients := make([]*websocket.Conn, n)
			conns := make([]*conn, n)
			for i := range n {
				server, client := upgradedSocket(t)
				clients[i] = client
				conns[i] = tg.g.newConn(&wsTransport{ws: server, writeTimeout: waitFor}, Identity{}, vsn2, "127.0.0.1")
				conns[i].mu.Lock()
				require.NotNil(t, conns[i].direct())
				conns[i].writing = true
				conns[i].queue = append(conns[i].queue, &outFrame{data: fmt.Appendf(nil, "frame %d", i)})
				conns[i].mu.Unlock()
			}
			b := tg.g.writers.newBatch()
			defer b.close()
			if ring == "broken" {
				b.tried, b.ring = true, tg.g.writers.newRing()
				require.NotNil(t, b.ring)
				require.NoError(t, b.ring.Close()) // Send fails before it sends anything
			}
			for _, c := range conns {
				b.add(c)
			}
			// Socket 2 is closed under the batch, as a reset client's reader would close it.
			require.NoError(t, conns[2].t.(*wsTransport).socket().Conn.Close())
			var st writeStats
			b.flush(&st)
			require.EqualValues(t, n-1, st.frames)
			require.Equal(t, ring == "working", b.ring != nil)
			for i, client := range clients {
				if i == 2 {
					continue
				}
				require.NoError(t, client.SetReadDeadline(time.Now().Add(waitFor)))
				_, got, err := client.ReadMessage()
				require.NoError(t, err, "socket %d", i)
				require.Equal(t, fmt.Sprintf("frame %d", i), string(got))
			}
			select {
			case <-conns[2].writerDone:
			case <-time.After(waitFor):
				t.Fatal("the closed socket's writer did not finish")
			}
			require.Equal(t, 1.0, metricValue(t, tg, `headcount_gateway_errors_total{kind="write"}`))
			want := 0.0
			if ring == "working" {
				want = 1
			}
			require.Equal(t, want, metricValue(t, tg, `headcount_gateway_io_uring_writers`), "the gauge counts the batches with a ring")
			for _, c := range conns {
				c.close(closeGoingAway, "test over")
			}
		})
	}
}

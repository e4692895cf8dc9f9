//go:build linux

package uring

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// pair is one loopback TCP connection: the server end's descriptor and the client end.
type pair struct {
	srv    *net.TCPConn
	fd     int
	client net.Conn
}

func openPairs(t *testing.T, n int) []pair {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	ps := make([]pair, n)
	for i := range ps {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		s, err := ln.Accept()
		require.NoError(t, err)
		ps[i] = pair{srv: s.(*net.TCPConn), client: c}
		raw, err := ps[i].srv.SyscallConn()
		require.NoError(t, err)
		require.NoError(t, raw.Control(func(fd uintptr) { ps[i].fd = int(fd) }))
	}
	t.Cleanup(func() {
		for _, p := range ps {
			p.srv.Close()
			p.client.Close()
		}
	})
	return ps
}

func newRing(t *testing.T, entries int) *Ring {
	t.Helper()
	r, err := New(entries)
	require.NoError(t, err, "io_uring is part of every supported Linux kernel; CI's machines have it")
	t.Cleanup(func() { r.Close() })
	return r
}

func TestSendReachesEverySocket(t *testing.T) {
	r := newRing(t, 32)
	require.GreaterOrEqual(t, r.Max(), 32)
	ps := openPairs(t, 100)
	res := make([]int32, r.Max())
	// Three rounds of batches of up to 32, each socket its own bytes.
	for round := range 3 {
		for lo := 0; lo < len(ps); lo += 32 {
			hi := min(lo+32, len(ps))
			var fds []int
			var bufs [][]byte
			for i := lo; i < hi; i++ {
				fds = append(fds, ps[i].fd)
				bufs = append(bufs, []byte{byte(round), byte(i), 0xAB})
			}
			n, err := r.Send(fds, bufs, res)
			require.NoError(t, err)
			require.Equal(t, len(fds), n)
			for k := range fds {
				require.EqualValues(t, 3, res[k], "socket %d", lo+k)
			}
		}
	}
	for i, p := range ps {
		got := make([]byte, 9)
		_, err := io.ReadFull(p.client, got)
		require.NoError(t, err)
		require.Equal(t, []byte{0, byte(i), 0xAB, 1, byte(i), 0xAB, 2, byte(i), 0xAB}, got, "socket %d", i)
	}
}

func TestSendReportsEachSocketsOwnResult(t *testing.T) {
	r := newRing(t, 8)
	ps := openPairs(t, 3)
	// Socket 1's send buffer fills up (its client never reads); 0 and 2 are fine, and a
	// descriptor that is no socket fails on its own.
	require.NoError(t, ps[1].srv.SetWriteBuffer(4096))
	big := bytes.Repeat([]byte{'x'}, 1<<16)
	res := make([]int32, 8)
	full := false
	for range 1000 {
		n, err := r.Send([]int{ps[1].fd}, [][]byte{big}, res)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		if res[0] == -int32(unix.EAGAIN) {
			full = true
			break
		}
		require.Positive(t, res[0])
		require.LessOrEqual(t, int(res[0]), len(big))
	}
	require.True(t, full, "a socket nobody reads fills up and then reports EAGAIN")

	devnull, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(devnull)
	fds := []int{ps[0].fd, ps[1].fd, devnull, 1 << 20, ps[2].fd}
	bufs := [][]byte{[]byte("zero"), []byte("one"), []byte("null"), []byte("none"), []byte("two")}
	n, err := r.Send(fds, bufs, res)
	require.NoError(t, err)
	require.Equal(t, len(fds), n)
	require.EqualValues(t, 4, res[0])
	require.EqualValues(t, -int32(unix.EAGAIN), res[1])
	require.EqualValues(t, -int32(unix.ENOTSOCK), res[2])
	require.EqualValues(t, -int32(unix.EBADF), res[3])
	require.EqualValues(t, 3, res[4], "an error on one send does not stop the ones after it")
	for i, want := range map[int]string{0: "zero", 2: "two"} {
		got := make([]byte, len(want))
		_, err := io.ReadFull(ps[i].client, got)
		require.NoError(t, err)
		require.Equal(t, want, string(got))
	}
}

func TestSendToAClosedPeerFails(t *testing.T) {
	r := newRing(t, 4)
	ps := openPairs(t, 1)
	require.NoError(t, ps[0].client.(*net.TCPConn).SetLinger(0))
	require.NoError(t, ps[0].client.Close()) // a reset
	res := make([]int32, 4)
	var last int32
	for range 100 { // the reset may take a send or two to be seen
		_, err := r.Send([]int{ps[0].fd}, [][]byte{[]byte("hello")}, res)
		require.NoError(t, err)
		if last = res[0]; last < 0 {
			break
		}
	}
	require.Contains(t, []int32{-int32(unix.ECONNRESET), -int32(unix.EPIPE)}, last, "no SIGPIPE: MSG_NOSIGNAL")
}

func TestSendLimits(t *testing.T) {
	r := newRing(t, 4)
	ps := openPairs(t, 1)
	res := make([]int32, 64)
	n, err := r.Send(nil, nil, res)
	require.NoError(t, err)
	require.Zero(t, n)
	fds := make([]int, r.Max()+1)
	bufs := make([][]byte, len(fds))
	_, err = r.Send(fds, bufs, res)
	require.Error(t, err, "more sends than the ring holds")
	// An empty buffer is a send of nothing.
	n, err = r.Send([]int{ps[0].fd}, [][]byte{nil}, res)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Zero(t, res[0])
	require.NoError(t, r.Close())
	_, err = r.Send([]int{ps[0].fd}, [][]byte{[]byte("x")}, res)
	require.Error(t, err, "a closed ring sends nothing")
	require.NoError(t, r.Close(), "a second Close does nothing")
}

func TestNewRefusesNoEntries(t *testing.T) {
	_, err := New(0)
	require.Error(t, err)
	r := newRing(t, 100000) // clamped, not refused
	require.Positive(t, r.Max())
}

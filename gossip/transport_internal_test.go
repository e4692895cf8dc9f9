package gossip

import (
	"bytes"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
)

// netTransport: TCP and UDP on one port, memberlist's advertise rule, datagrams handed over as
// copies of their own size (never the reader's buffer), streams both ways, Shutdown idempotent.
func TestNetTransport(t *testing.T) {
	a, err := newNetTransport("127.0.0.1", 0)
	require.NoError(t, err)
	defer a.Shutdown()
	b, err := newNetTransport("127.0.0.1", 0)
	require.NoError(t, err)
	require.Equal(t, b.port, b.udp.LocalAddr().(*net.UDPAddr).Port, "UDP on the TCP port")

	ip, port, err := b.FinalAdvertiseAddr("", 0)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", ip.String())
	require.Equal(t, b.port, port)
	ip, port, err = b.FinalAdvertiseAddr("10.1.2.3", 7000)
	require.NoError(t, err)
	require.Equal(t, net.IPv4(10, 1, 2, 3).To4(), ip)
	require.Equal(t, 7000, port)
	_, _, err = b.FinalAdvertiseAddr("not-an-ip", 1)
	require.Error(t, err)

	to := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.port))
	recv := func() *memberlist.Packet {
		t.Helper()
		select {
		case p := <-b.PacketCh():
			return p
		case <-time.After(10 * time.Second):
			t.Fatal("no datagram")
			return nil
		}
	}
	_, err = a.WriteTo([]byte("hello"), to)
	require.NoError(t, err)
	first := recv()
	_, err = a.WriteToAddress(bytes.Repeat([]byte("x"), 1000), memberlist.Address{Addr: to, Name: "b"})
	require.NoError(t, err)
	second := recv()
	require.Equal(t, []byte("hello"), first.Buf, "the first datagram is its own copy, not overwritten")
	require.LessOrEqual(t, cap(first.Buf), 2*5, "about its own size (an allocation size class)")
	require.Len(t, second.Buf, 1000)
	require.LessOrEqual(t, cap(second.Buf), 2*1000)
	require.Equal(t, a.port, second.From.(*net.UDPAddr).Port)

	c, err := a.DialAddressTimeout(memberlist.Address{Addr: to, Name: "b"}, time.Second)
	require.NoError(t, err)
	defer c.Close()
	var s net.Conn
	select {
	case s = <-b.StreamCh():
	case <-time.After(10 * time.Second):
		t.Fatal("no stream")
	}
	_, err = c.Write([]byte("ping"))
	require.NoError(t, err)
	got := make([]byte, 4)
	_, err = io.ReadFull(s, got)
	require.NoError(t, err)
	require.Equal(t, "ping", string(got))
	require.NoError(t, s.Close())

	require.NoError(t, b.Shutdown())
	require.NoError(t, b.Shutdown(), "idempotent")
	_, err = a.WriteTo([]byte("late"), to) // to a closed port: no reader is left to block
	require.NoError(t, err)
}

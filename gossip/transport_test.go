package gossip_test

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Regression (issue 15, the loopback tail of "one join visible on every node"): memberlist's own
// UDP transport read every datagram into a fresh 64 KiB buffer, 93% of all the bytes a 5-node
// cluster allocated, so the garbage collector ran 15 times a second and the join's p90 on
// loopback was 2 ms. The node's transport hands memberlist a copy of the datagram's own size:
// receiving a small datagram costs bytes, not 64 KiB. The datagrams are refused by memberlist
// (no message type it knows, no label), after the transport has read them.
func TestReceivedDatagramsCostAboutTheirSize(t *testing.T) {
	n := start(t, "a", nil) // real sockets on 127.0.0.1
	to, err := net.ResolveUDPAddr("udp", n.Addr())
	require.NoError(t, err)
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	junk := make([]byte, 64)
	junk[0] = 0xee // no memberlist message type
	const count = 400
	before := n.Stats().PacketsRefused
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range count {
		_, err := c.WriteTo(junk, to)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return n.Stats().PacketsRefused-before >= count*9/10 },
		10*time.Second, time.Millisecond, "the node read the datagrams")
	runtime.ReadMemStats(&m1)
	got := n.Stats().PacketsRefused - before
	perDatagram := (m1.TotalAlloc - m0.TotalAlloc) / got
	t.Logf("%d bytes allocated per 64-byte datagram received", perDatagram)
	require.Less(t, perDatagram, uint64(8<<10), "a datagram costs far less than a 64 KiB buffer")
}

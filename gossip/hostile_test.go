package gossip

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/headcount-io/headcount/testcluster/memnet"
	"github.com/headcount-io/headcount/tracker"
)

// Corrupt, truncated and oversized input is counted and dropped, never a panic, and the node keeps
// working afterwards.
func TestHostileInputIsCountedNotFatal(t *testing.T) {
	net := memnet.New(memnet.Options{})
	defer net.Close()
	tp, err := net.NewTransport("")
	require.NoError(t, err)
	tc := tracker.LocalConfig()
	tc.Name = "victim"
	tr, err := tracker.New(tc)
	require.NoError(t, err)
	cfg := TestConfig()
	cfg.Transport = tp
	cfg.MaxPacketSize = 100
	cfg.MaxMessageSize = 1000
	cfg.InboxBytes, cfg.PeerQueueBytes = 1000, 1000
	n, err := New(cfg, tr)
	require.NoError(t, err)
	defer n.Close()

	n.receive([]byte{})                                                           // empty
	n.receive([]byte("GET / HTTP/1.1"))                                           // not a frame
	n.receive(appendFrameMsg(nil, []byte{0xc1, 0xff, 0x00}))                      // a frame with a corrupt message
	n.receive([]byte{frameMagic, ProtocolVersion, 0xff, 0xff})                    // truncated length
	n.receive(append([]byte{frameMagic, ProtocolVersion}, make([]byte, 2000)...)) // over the limit
	require.Eventually(t, func() bool {
		s := n.Stats()
		return s.DecodeErrors == 4 && s.Oversize == 1
	}, 30*time.Second, 5*time.Millisecond, "%+v", n.Stats())

	_, err = tr.Track(1, "still-alive", "", nil)
	require.NoError(t, err)
	require.Equal(t, 1, tr.Count("still-alive").Viewers)
}

package memnet_test

import (
	"io"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/headcount-io/headcount/testcluster/memnet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func pair(t *testing.T, opts memnet.Options) (*memnet.Network, *memnet.Transport, *memnet.Transport) {
	t.Helper()
	n := memnet.New(opts)
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	a, err := n.NewTransport("")
	require.NoError(t, err)
	b, err := n.NewTransport("")
	require.NoError(t, err)
	return n, a, b
}

func recv(t *testing.T, tr *memnet.Transport) *memberlist.Packet {
	t.Helper()
	select {
	case p := <-tr.PacketCh():
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no packet")
		return nil
	}
}

func TestPacketsAreCopiedAndCarryTheSender(t *testing.T) {
	_, a, b := pair(t, memnet.Options{})
	buf := []byte("hello")
	_, err := a.WriteTo(buf, b.Addr())
	require.NoError(t, err)
	buf[0] = 'j'
	p := recv(t, b)
	require.Equal(t, "hello", string(p.Buf))
	require.Equal(t, a.Addr(), p.From.String())
}

func TestFullBufferDropsInsteadOfBlocking(t *testing.T) {
	n, a, b := pair(t, memnet.Options{PacketBuffer: 2})
	for i := 0; i < 5; i++ {
		_, err := a.WriteTo([]byte{byte(i)}, b.Addr())
		require.NoError(t, err)
	}
	require.Equal(t, uint64(2), n.Stats().Packets)
	require.Equal(t, uint64(3), n.Stats().PacketsDropped)
}

func TestCutIsAsymmetricAndDialsFailFast(t *testing.T) {
	n, a, b := pair(t, memnet.Options{})
	n.SetLinkFault(a.Addr(), b.Addr(), memnet.Fault{Cut: true})
	_, _ = a.WriteTo([]byte("lost"), b.Addr())
	_, _ = b.WriteTo([]byte("through"), a.Addr())
	require.Equal(t, "through", string(recv(t, a).Buf))
	require.Equal(t, uint64(1), n.Stats().PacketsDropped)
	start := time.Now()
	_, err := a.DialTimeout(b.Addr(), time.Hour)
	require.ErrorIs(t, err, memnet.ErrRefused)
	require.Less(t, time.Since(start), time.Minute, "a cut dial fails at once, not at the timeout")
	n.SetLinkFault(a.Addr(), b.Addr(), memnet.Fault{})
	_, _ = a.WriteTo([]byte("healed"), b.Addr())
	require.Equal(t, "healed", string(recv(t, b).Buf))
}

func TestStreamsAndPartitionClosesThem(t *testing.T) {
	n, a, b := pair(t, memnet.Options{})
	c, err := a.DialTimeout(b.Addr(), time.Second)
	require.NoError(t, err)
	s := <-b.StreamCh()
	go func() { _, _ = c.Write([]byte("ping")) }()
	buf := make([]byte, 4)
	_, err = io.ReadFull(s, buf)
	require.NoError(t, err)
	require.Equal(t, "ping", string(buf))
	require.Equal(t, a.Addr(), s.RemoteAddr().String())

	n.Partition([]string{a.Addr()}, []string{b.Addr()})
	_, err = s.Read(buf)
	require.Error(t, err, "the partition closed the open stream")
	_, err = a.DialTimeout(b.Addr(), time.Second)
	require.ErrorIs(t, err, memnet.ErrRefused)
	n.Heal()
	c2, err := a.DialTimeout(b.Addr(), time.Second)
	require.NoError(t, err)
	require.NoError(t, c2.Close())
}

func TestDialTimesOutWhenNobodyAccepts(t *testing.T) {
	_, a, b := pair(t, memnet.Options{StreamBuffer: 1})
	c, err := a.DialTimeout(b.Addr(), time.Second)
	require.NoError(t, err)
	defer c.Close()
	_, err = a.DialTimeout(b.Addr(), 20*time.Millisecond)
	require.ErrorIs(t, err, memnet.ErrTimeout)
}

func TestShutdownMakesTheNodeVanish(t *testing.T) {
	n, a, b := pair(t, memnet.Options{})
	require.NoError(t, b.Shutdown())
	require.NoError(t, b.Shutdown())
	_, err := a.DialTimeout(b.Addr(), time.Second)
	require.ErrorIs(t, err, memnet.ErrRefused)
	_, err = b.WriteTo([]byte("x"), a.Addr())
	require.ErrorIs(t, err, memnet.ErrClosed)
	// The address can be taken again, as by a restarted process.
	b2, err := n.NewTransport(b.Addr())
	require.NoError(t, err)
	_, err = n.NewTransport(b.Addr())
	require.ErrorIs(t, err, memnet.ErrAddrInUse)
	_, _ = a.WriteTo([]byte("again"), b2.Addr())
	require.Equal(t, "again", string(recv(t, b2).Buf))
}

func TestLossAndDelay(t *testing.T) {
	n, a, b := pair(t, memnet.Options{Seed: 1})
	n.SetFault(memnet.Fault{Loss: 0.5})
	for i := 0; i < 1000; i++ {
		_, _ = a.WriteTo([]byte{1}, b.Addr())
	}
	st := n.Stats()
	require.InDelta(t, 500, st.PacketsDropped, 100)
	for len(b.PacketCh()) > 0 {
		<-b.PacketCh()
	}
	n.SetFault(memnet.Fault{Delay: 30 * time.Millisecond})
	start := time.Now()
	_, _ = a.WriteTo([]byte("late"), b.Addr())
	require.Equal(t, "late", string(recv(t, b).Buf))
	require.GreaterOrEqual(t, time.Since(start), 30*time.Millisecond)
}

func TestDialLossLosesSYNs(t *testing.T) {
	n, a, b := pair(t, memnet.Options{Seed: 1})
	n.SetFault(memnet.Fault{DialLoss: 1})
	_, err := a.DialTimeout(b.Addr(), 20*time.Millisecond)
	require.ErrorIs(t, err, memnet.ErrTimeout, "every SYN lost: the dial times out")
	// Half the SYNs and half the SYN-ACKs lost: 3 dials in 4 wait for a retransmission (1 s),
	// longer than their timeout.
	n.SetFault(memnet.Fault{DialLoss: 0.5})
	failed := 0
	for range 200 {
		c, err := a.DialTimeout(b.Addr(), 5*time.Millisecond)
		if err != nil {
			require.ErrorIs(t, err, memnet.ErrTimeout)
			failed++
			continue
		}
		_ = c.Close()
		_ = (<-b.StreamCh()).Close()
	}
	require.InDelta(t, 150, failed, 25)
}

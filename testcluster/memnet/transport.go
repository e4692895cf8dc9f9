package memnet

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Transport is one node's attachment to a Network. It implements memberlist.NodeAwareTransport:
// pass it as memberlist.Config.Transport (or gossip.Config.Transport). All methods are safe for
// concurrent use and none blocks longer than the timeout it is given.
type Transport struct {
	net      *Network
	addr     string
	ip       net.IP
	port     int
	udp      net.Addr // the From of every packet it sends, shared: receivers only read it
	packetCh chan *memberlist.Packet
	streamCh chan net.Conn
	done     chan struct{}
	once     sync.Once
}

var _ memberlist.NodeAwareTransport = (*Transport)(nil)

// Addr returns the transport's address ("ip:port").
func (t *Transport) Addr() string { return t.addr }

func (t *Transport) udpAddr() net.Addr { return t.udp }
func (t *Transport) tcpAddr() net.Addr { return &net.TCPAddr{IP: t.ip, Port: t.port} }

// FinalAdvertiseAddr returns the transport's own address whatever was configured: an in-memory
// node cannot be reached at any other address.
func (t *Transport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return t.ip, t.port, nil
}

// WriteTo sends a packet to addr; see WriteToAddress.
func (t *Transport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

// WriteToAddress sends a copy of b to addr.Addr. Like UDP it reports no delivery errors: a packet
// to a missing node, across a cut link or into a full buffer is dropped silently (and counted).
// It returns ErrClosed once the transport has shut down.
func (t *Transport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	now := time.Now()
	select {
	case <-t.done:
		return now, ErrClosed
	default:
	}
	t.net.sendPacket(t, b, addr.Addr)
	return now, nil
}

// PacketCh returns the channel of packets received by this transport.
func (t *Transport) PacketCh() <-chan *memberlist.Packet { return t.packetCh }

// DialTimeout opens a stream to addr; see DialAddressTimeout.
func (t *Transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

// DialAddressTimeout opens a stream to addr.Addr. It fails at once with ErrRefused when the
// address does not exist or the link is cut in either direction, and with ErrTimeout when the
// receiver does not accept within timeout (its accept buffer is full) or the link delay exceeds it.
func (t *Transport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	select {
	case <-t.done:
		return nil, ErrClosed
	default:
	}
	c, err := t.net.dial(t, addr.Addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr.Addr, err)
	}
	return c, nil
}

// StreamCh returns the channel of streams opened to this transport.
func (t *Transport) StreamCh() <-chan net.Conn { return t.streamCh }

// Shutdown detaches the transport: its address vanishes from the network, its open streams are
// closed and later sends fail with ErrClosed. It is idempotent. Calling it before the owner's
// memberlist shuts down simulates a crash.
func (t *Transport) Shutdown() error {
	t.once.Do(func() {
		close(t.done)
		t.net.detach(t)
	})
	return nil
}

// push hands p to the receiver without blocking; false if the transport is gone or its buffer is full.
func (t *Transport) push(p *memberlist.Packet) bool {
	select {
	case <-t.done:
		return false
	default:
	}
	select {
	case t.packetCh <- p:
		return true
	default:
		return false
	}
}

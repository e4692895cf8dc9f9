package gossip

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	sockaddr "github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
)

// netTransport is memberlist's transport for a node on real sockets (Config.Transport nil, no
// Host): one TCP listener for streams and one UDP socket on the same port for datagrams, as
// memberlist's own NetTransport. It differs in one thing: a datagram is read into one buffer kept
// by the reader and handed to memberlist as a copy of its own length. memberlist's transport
// reads every datagram into a fresh 64 KiB buffer, which was 93% of all the bytes a 5-node
// cluster allocated and made the garbage collector run 15 times a second (BENCHMARKS.md, issue 15,
// "One join visible on every node").
//
// All methods are safe for concurrent use, as memberlist requires.
type netTransport struct {
	bindAddr string
	port     int
	tcp      *net.TCPListener
	udp      *net.UDPConn
	packets  chan *memberlist.Packet
	streams  chan net.Conn
	closing  atomic.Bool
	done     chan struct{}
	wg       sync.WaitGroup
}

var _ memberlist.NodeAwareTransport = (*netTransport)(nil)

// udpReadBuffer is the receive buffer asked of the kernel for the UDP socket (halved until the
// kernel accepts it), as memberlist's transport does.
const udpReadBuffer = 2 << 20

// maxDatagram is the largest datagram read (the largest a UDP socket can deliver).
const maxDatagram = 65536

// newNetTransport listens on addr and port; with port 0 both listeners get the same free port
// (retried up to 10 times if another socket takes the UDP side first). Like memberlist's
// transport, an addr that is not an IP literal listens on every interface.
func newNetTransport(addr string, port int) (*netTransport, error) {
	ip := net.ParseIP(addr)
	var err error
	for try := 0; try < 10; try++ {
		var t *netTransport
		if t, err = listen(ip, port); err == nil {
			t.bindAddr = addr
			t.start()
			return t, nil
		}
		if port != 0 {
			break
		}
	}
	return nil, err
}

func listen(ip net.IP, port int) (*netTransport, error) {
	tl, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
	if err != nil {
		return nil, fmt.Errorf("gossip: listen tcp: %w", err)
	}
	port = tl.Addr().(*net.TCPAddr).Port
	ul, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
	if err != nil {
		_ = tl.Close()
		return nil, fmt.Errorf("gossip: listen udp: %w", err)
	}
	for size := udpReadBuffer; size > 0; size /= 2 {
		if ul.SetReadBuffer(size) == nil {
			break
		}
	}
	return &netTransport{
		port:    port,
		tcp:     tl,
		udp:     ul,
		packets: make(chan *memberlist.Packet),
		streams: make(chan net.Conn),
		done:    make(chan struct{}),
	}, nil
}

func (t *netTransport) start() {
	t.wg.Add(2)
	go t.readPackets()
	go t.acceptStreams()
}

// readPackets hands every datagram to memberlist as a copy of its own length.
func (t *netTransport) readPackets() {
	defer t.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := t.udp.ReadFrom(buf)
		ts := time.Now()
		if err != nil {
			if t.closing.Load() {
				return
			}
			continue // a transient error (memberlist's transport logs and goes on too)
		}
		if n < 1 {
			continue
		}
		select {
		case t.packets <- &memberlist.Packet{Buf: bytes.Clone(buf[:n]), From: from, Timestamp: ts}:
		case <-t.done:
			return
		}
	}
}

// acceptStreams hands every accepted TCP connection to memberlist, backing off from 5 ms to 1 s
// while Accept fails (file descriptors exhausted, say).
func (t *netTransport) acceptStreams() {
	defer t.wg.Done()
	var backoff time.Duration
	for {
		c, err := t.tcp.AcceptTCP()
		if err != nil {
			if t.closing.Load() {
				return
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
			case <-t.done:
				return
			}
			continue
		}
		backoff = 0
		select {
		case t.streams <- c:
		case <-t.done:
			_ = c.Close()
			return
		}
	}
}

// FinalAdvertiseAddr is memberlist's rule: the given address, else a private IP of this host when
// bound to 0.0.0.0, else the bound IP; the bound port unless an address was given.
func (t *netTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		a := net.ParseIP(ip)
		if a == nil {
			return nil, 0, fmt.Errorf("gossip: advertise address %q is not an IP address", ip)
		}
		if a4 := a.To4(); a4 != nil {
			a = a4
		}
		return a, port, nil
	}
	if t.bindAddr == "0.0.0.0" {
		p, err := sockaddr.GetPrivateIP()
		if err != nil {
			return nil, 0, fmt.Errorf("gossip: interface addresses: %w", err)
		}
		a := net.ParseIP(p)
		if a == nil {
			return nil, 0, errors.New("gossip: no private IP address found, and no AdvertiseAddr given")
		}
		return a, t.port, nil
	}
	return t.tcp.Addr().(*net.TCPAddr).IP, t.port, nil
}

// WriteTo sends b as one datagram to addr ("host:port").
func (t *netTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return time.Time{}, err
	}
	_, err = t.udp.WriteTo(b, ua)
	return time.Now(), err
}

// WriteToAddress is WriteTo for memberlist's node-aware callers.
func (t *netTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

// PacketCh returns the received datagrams; each Buf is the receiver's to keep.
func (t *netTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

// DialTimeout opens a TCP stream to addr.
func (t *netTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.Dial("tcp", addr)
}

// DialAddressTimeout is DialTimeout for memberlist's node-aware callers.
func (t *netTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// StreamCh returns the accepted TCP streams.
func (t *netTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown closes both listeners and waits for the reader and the acceptor. Idempotent.
func (t *netTransport) Shutdown() error {
	if t.closing.Swap(true) {
		t.wg.Wait()
		return nil
	}
	close(t.done)
	err := errors.Join(t.tcp.Close(), t.udp.Close())
	t.wg.Wait()
	return err
}

package memnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Errors returned by Network and Transport.
var (
	// ErrClosed is returned when the network or the transport has been shut down.
	ErrClosed = errors.New("memnet: closed")
	// ErrAddrInUse is returned by NewTransport when a live transport already owns the address.
	ErrAddrInUse = errors.New("memnet: address in use")
	// ErrRefused is returned by a dial to an address that does not exist or across a cut link.
	ErrRefused = errors.New("memnet: connection refused")
	// ErrTimeout is returned by a dial that did not complete within its timeout.
	ErrTimeout = timeoutError{}
)

type timeoutError struct{}

func (timeoutError) Error() string   { return "memnet: i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// Port is the port every address of a Network uses.
const Port = 7946

// Fault describes what happens to traffic on one directed link.
type Fault struct {
	// Cut drops every packet and refuses every dial.
	Cut bool
	// DropPackets drops every packet but lets streams through: UDP blocked, TCP open, a common
	// firewall mistake that memberlist's TCP fallback probe hides from the failure detector.
	DropPackets bool
	// Loss is the probability, in [0, 1], that a packet is dropped. Streams are never lossy.
	Loss float64
	// DialLoss is the probability, in [0, 1], that a stream dial loses its SYN, as TCP would
	// under packet loss: the dial is then retried after 1 s, 2 s, 4 s... (Linux's SYN
	// retransmission), each retry lost with the same probability, and fails with ErrTimeout if
	// that outlasts its timeout. Bytes on an open stream are never lost (TCP retransmits them).
	DialLoss float64
	// Delay is added to every packet and to every dial (not to bytes on an open stream).
	Delay time.Duration
}

// Stats counts the traffic a Network carried, all links together.
type Stats struct {
	Packets        uint64 // packets delivered to a receiver's buffer
	PacketBytes    uint64 // bytes of those packets
	PacketsDropped uint64 // packets dropped by a fault, a missing receiver or a full buffer
	Dials          uint64 // streams opened
	StreamBytes    uint64 // bytes written on streams, both directions
}

// Options configures a Network. The zero value is usable.
type Options struct {
	// PacketBuffer is the number of packets a transport buffers before it drops (default 4096).
	PacketBuffer int
	// StreamBuffer is the number of accepted but not yet handled streams per transport (default 256).
	StreamBuffer int
	// Seed seeds the random number generator used for packet loss (0 = a fixed default seed).
	Seed uint64
}

type link struct{ from, to string }

// Network is a set of in-process transports that can reach each other. It is safe for concurrent
// use. The zero value is not usable: call New.
type Network struct {
	opts Options

	mu        sync.Mutex
	endpoints map[string]*Transport
	all       Fault            // applies to every link without an override
	links     map[link]Fault   // per-link overrides
	groups    map[string]int   // partition group of each address; nil = no partition
	conns     map[*conn]string // open stream ends -> the address of their owner
	timers    map[*time.Timer]struct{}
	rng       *rand.Rand
	next      int
	closed    bool

	packets, packetBytes, dropped, dials, streamBytes atomic.Uint64
}

// New returns an empty network.
func New(opts Options) *Network {
	if opts.PacketBuffer <= 0 {
		opts.PacketBuffer = 4096
	}
	if opts.StreamBuffer <= 0 {
		opts.StreamBuffer = 256
	}
	seed := opts.Seed
	if seed == 0 {
		seed = 0x6865616463
	}
	return &Network{
		opts:      opts,
		endpoints: make(map[string]*Transport),
		links:     make(map[link]Fault),
		conns:     make(map[*conn]string),
		timers:    make(map[*time.Timer]struct{}),
		rng:       rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	}
}

// NextAddr returns a fresh address ("10.77.x.y:7946") never handed out before by this network.
func (n *Network) NextAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.next++
	return net.JoinHostPort(fmt.Sprintf("10.77.%d.%d", n.next/250, n.next%250+1), strconv.Itoa(Port))
}

// NewTransport attaches a transport at addr ("ip:port"; "" = NextAddr()). An address can be
// reused once the transport that owned it has shut down, as a restarted process would.
// It returns ErrAddrInUse if a live transport owns addr and ErrClosed after Close.
func (n *Network) NewTransport(addr string) (*Transport, error) {
	if addr == "" {
		addr = n.NextAddr()
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("memnet: bad address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	port, err := strconv.Atoi(portStr)
	if ip == nil || err != nil {
		return nil, fmt.Errorf("memnet: bad address %q", addr)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	if _, ok := n.endpoints[addr]; ok {
		return nil, fmt.Errorf("%w: %s", ErrAddrInUse, addr)
	}
	t := &Transport{
		net:      n,
		addr:     addr,
		ip:       ip,
		port:     port,
		udp:      &net.UDPAddr{IP: ip, Port: port},
		packetCh: make(chan *memberlist.Packet, n.opts.PacketBuffer),
		streamCh: make(chan net.Conn, n.opts.StreamBuffer),
		done:     make(chan struct{}),
	}
	n.endpoints[addr] = t
	return t, nil
}

// SetFault sets the fault of every link that has no per-link override. The zero Fault heals.
func (n *Network) SetFault(f Fault) {
	n.mu.Lock()
	n.all = f
	n.mu.Unlock()
	n.closeCutConns()
}

// SetLinkFault overrides the fault of the directed link from -> to. The zero Fault removes the
// override, so the network-wide fault applies again.
func (n *Network) SetLinkFault(from, to string, f Fault) {
	n.mu.Lock()
	if f == (Fault{}) {
		delete(n.links, link{from, to})
	} else {
		n.links[link{from, to}] = f
	}
	n.mu.Unlock()
	n.closeCutConns()
}

// Partition splits the network: addresses in different groups cannot reach each other. Addresses
// not listed in any group form one more group together. Partition replaces any earlier partition.
func (n *Network) Partition(groups ...[]string) {
	n.mu.Lock()
	n.groups = make(map[string]int)
	for i, g := range groups {
		for _, a := range g {
			n.groups[a] = i + 1
		}
	}
	n.mu.Unlock()
	n.closeCutConns()
}

// Heal removes the partition, every per-link override and the network-wide fault.
func (n *Network) Heal() {
	n.mu.Lock()
	n.groups = nil
	n.links = make(map[link]Fault)
	n.all = Fault{}
	n.mu.Unlock()
}

// Stats returns the traffic counters.
func (n *Network) Stats() Stats {
	return Stats{
		Packets:        n.packets.Load(),
		PacketBytes:    n.packetBytes.Load(),
		PacketsDropped: n.dropped.Load(),
		Dials:          n.dials.Load(),
		StreamBytes:    n.streamBytes.Load(),
	}
}

// Close shuts every transport down and cancels delayed packets. It is idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	ts := make([]*Transport, 0, len(n.endpoints))
	for _, t := range n.endpoints {
		ts = append(ts, t)
	}
	for tm := range n.timers {
		tm.Stop()
	}
	n.timers = map[*time.Timer]struct{}{}
	n.mu.Unlock()
	for _, t := range ts {
		_ = t.Shutdown()
	}
	return nil
}

// faultLocked returns the effective fault of from -> to. n.mu must be held.
func (n *Network) faultLocked(from, to string) Fault {
	if n.groups != nil && n.groups[from] != n.groups[to] {
		return Fault{Cut: true}
	}
	if f, ok := n.links[link{from, to}]; ok {
		return f
	}
	return n.all
}

// closeCutConns closes open streams whose link is now cut in either direction.
func (n *Network) closeCutConns() {
	n.mu.Lock()
	var victims []*conn
	for c := range n.conns {
		if n.faultLocked(c.local, c.remote).Cut || n.faultLocked(c.remote, c.local).Cut {
			victims = append(victims, c)
		}
	}
	n.mu.Unlock()
	for _, c := range victims {
		_ = c.Close()
	}
}

// sendPacket delivers a copy of b from -> to, honouring faults. It never blocks.
func (n *Network) sendPacket(from *Transport, b []byte, to string) {
	n.mu.Lock()
	dst := n.endpoints[to]
	f := n.faultLocked(from.addr, to)
	lost := f.Loss > 0 && n.rng.Float64() < f.Loss
	if dst == nil || f.Cut || f.DropPackets || lost || n.closed {
		n.mu.Unlock()
		n.dropped.Add(1)
		return
	}
	p := &memberlist.Packet{Buf: append([]byte(nil), b...), From: from.udpAddr()}
	if f.Delay <= 0 {
		n.mu.Unlock()
		n.deliver(dst, p)
		return
	}
	var tm *time.Timer
	tm = time.AfterFunc(f.Delay, func() {
		n.mu.Lock()
		_, live := n.timers[tm]
		delete(n.timers, tm)
		n.mu.Unlock()
		if live {
			n.deliver(dst, p)
		}
	})
	n.timers[tm] = struct{}{}
	n.mu.Unlock()
}

func (n *Network) deliver(dst *Transport, p *memberlist.Packet) {
	p.Timestamp = time.Now()
	if dst.push(p) {
		n.packets.Add(1)
		n.packetBytes.Add(uint64(len(p.Buf)))
	} else {
		n.dropped.Add(1)
	}
}

// dial opens a stream from -> to within timeout.
func (n *Network) dial(from *Transport, to string, timeout time.Duration) (net.Conn, error) {
	n.mu.Lock()
	dst := n.endpoints[to]
	f := n.faultLocked(from.addr, to)
	back := n.faultLocked(to, from.addr)
	closed := n.closed
	var synWait time.Duration // lost SYNs and SYN-ACKs: 1 s, then 2 s, 4 s... each
	for rto := time.Second; (f.DialLoss > 0 && n.rng.Float64() < f.DialLoss) ||
		(back.DialLoss > 0 && n.rng.Float64() < back.DialLoss); rto *= 2 {
		synWait += rto
		if synWait > time.Hour {
			break
		}
	}
	n.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if dst == nil || f.Cut || back.Cut {
		return nil, fmt.Errorf("%w: %s", ErrRefused, to)
	}
	if timeout <= 0 {
		timeout = time.Minute
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	if wait := f.Delay + synWait; wait > 0 {
		d := time.NewTimer(wait)
		select {
		case <-d.C:
		case <-timer.C:
			d.Stop()
			return nil, ErrTimeout
		case <-from.done:
			d.Stop()
			return nil, ErrClosed
		}
	}
	a, b := net.Pipe()
	ca := &conn{Conn: a, net: n, local: from.addr, remote: to, la: from.tcpAddr(), ra: dst.tcpAddr()}
	cb := &conn{Conn: b, net: n, local: to, remote: from.addr, la: dst.tcpAddr(), ra: from.tcpAddr()}
	n.mu.Lock()
	n.conns[ca] = from.addr
	n.conns[cb] = to
	n.mu.Unlock()
	select {
	case dst.streamCh <- cb:
		n.dials.Add(1)
		return ca, nil
	case <-dst.done:
		_ = ca.Close()
		_ = cb.Close()
		return nil, fmt.Errorf("%w: %s", ErrRefused, to)
	case <-from.done:
		_ = ca.Close()
		_ = cb.Close()
		return nil, ErrClosed
	case <-timer.C:
		_ = ca.Close()
		_ = cb.Close()
		return nil, ErrTimeout
	}
}

// detach removes t from the network and closes its streams.
func (n *Network) detach(t *Transport) {
	n.mu.Lock()
	if n.endpoints[t.addr] == t {
		delete(n.endpoints, t.addr)
	}
	var victims []*conn
	for c, owner := range n.conns {
		if owner == t.addr && (c.local == t.addr) {
			victims = append(victims, c)
		}
	}
	n.mu.Unlock()
	for _, c := range victims {
		_ = c.Close()
	}
}

// conn is one end of an in-memory stream.
type conn struct {
	net.Conn
	net           *Network
	local, remote string
	la, ra        net.Addr
	once          sync.Once
}

func (c *conn) LocalAddr() net.Addr  { return c.la }
func (c *conn) RemoteAddr() net.Addr { return c.ra }

func (c *conn) Write(b []byte) (int, error) {
	k, err := c.Conn.Write(b)
	c.net.streamBytes.Add(uint64(k))
	return k, err
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.net.mu.Lock()
		delete(c.net.conns, c)
		c.net.mu.Unlock()
	})
	return c.Conn.Close()
}

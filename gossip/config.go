package gossip

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Node. Start from DefaultConfig (LAN), LocalConfig (one machine) or
// TestConfig (fast timers for in-process tests) and set Name, the addresses and Join.
type Config struct {
	// Name is the node's unique name in the cluster. Empty = the tracker's replica name; if both are
	// set they must be equal.
	Name string

	// BindAddr and BindPort are where memberlist listens for UDP and TCP (port 0 = any free port).
	// Ignored when Transport is set.
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort are the address peers use to reach this node
	// ("" / 0 = derived from the bind address).
	AdvertiseAddr string
	AdvertisePort int
	// HTTPAddr is this node's public HTTP address ("host:port"), published to peers in the node
	// meta so /v1/members can show it. At most MaxHTTPAddrLen bytes.
	HTTPAddr string

	// Join lists seed peers ("host:port" or "dns-name:port"). New tries them once; if none answers
	// they are retried in the background with exponential backoff from JoinBackoffMin to
	// JoinBackoffMax until one answers.
	Join           []string
	JoinBackoffMin time.Duration
	JoinBackoffMax time.Duration
	// RejoinInterval is how often the seeds and every known peer that memberlist does not see alive
	// are joined again, so partitions heal once the network does (memberlist forgets dead nodes).
	// 0 disables re-joining.
	RejoinInterval time.Duration
	// ReconnectTimeout is how long a peer that failed (not one that left) keeps being re-joined
	// and listed as failed in Members.
	ReconnectTimeout time.Duration
	// FastRejoinMin and FastRejoinMax bound the fast re-join rounds: while a member failed less
	// than FastRejoinWindow ago, one such member is joined every FastRejoinMin, backing off
	// (doubling, ±25% jitter) to FastRejoinMax while it does not answer, so a healed partition
	// merges within about FastRejoinMax without a join storm. 0 for FastRejoinWindow disables
	// fast rounds.
	FastRejoinMin    time.Duration
	FastRejoinMax    time.Duration
	FastRejoinWindow time.Duration

	// SecretKeys enables encryption (AES-GCM) of all gossip traffic. Each key is 16, 24 or 32
	// bytes; the first is used to encrypt, all are tried to decrypt (for key rotation, see
	// Node.Keyring). ParseKeyFile reads them from a key file. Empty = no encryption.
	SecretKeys [][]byte
	// Label is authenticated with every packet and stream; nodes with another label are ignored.
	// Use one per cluster. At most 255 bytes.
	Label string

	// Memberlist failure-detector and gossip timers; see memberlist.Config for their meaning.
	// PushPullInterval is shorter than memberlist's default because push/pull carries membership
	// only (a few hundred bytes) and is what admits a node that restarted at a new address.
	ProbeInterval       time.Duration
	ProbeTimeout        time.Duration
	SuspicionMult       int
	SuspicionMaxMult    int
	GossipInterval      time.Duration
	GossipNodes         int
	GossipToTheDeadTime time.Duration
	PushPullInterval    time.Duration
	// TCPTimeout bounds every stream: push/pull, reliable messages and the goodbye.
	TCPTimeout time.Duration
	// DeadNodeReclaimTime is how long after a node was declared dead its name may come back
	// from another address (a restarted container with a new IP); until then the newcomer is
	// rejected as a name conflict, and the peers that refused it join it when it passes. What it
	// guards: a live node falsely declared dead (loss) whose name a second process with the same
	// name (a mis-deployed replica) would take over if it announced itself before the live node
	// refutes (refutations take tens of milliseconds); the live node is then refused until the
	// other process dies. The LAN profile's 500 ms is well above a refutation and keeps a node
	// restarted at a new address visible within about 2.2 s, 2.7 s at worst (BENCHMARKS.md [Q]).
	DeadNodeReclaimTime time.Duration

	// BroadcastInterval is the batching window for local changes (0 = the tracker's
	// Config.BroadcastInterval). Flushes are paced by a token bucket that earns one flush per
	// window and holds at most 4: a change is sent at once while a token is held, however soon
	// after the previous flush, and waits for the next token only when 4 flushes went within
	// the last windows, so under load the node flushes once per window and a burst is
	// coalesced, while a lone change never waits.
	BroadcastInterval time.Duration
	// FlushPacketBudget bounds the datagrams a second that flushing local changes may cost in a
	// large cluster (default 4000; 0 = no bound), averaged over a few windows (the token bucket
	// of BroadcastInterval lets 4 flushes go back to back). A flush sends one datagram to every
	// live peer, so at one flush per BroadcastInterval the cost grows with the cluster; beyond
	// FlushPacketBudget x BroadcastInterval peers (20 with the defaults) the batching window grows
	// to peers / FlushPacketBudget (32 ms at 128 nodes), up to TickInterval (so the bound holds up
	// to 201 nodes). Bigger batches cost fewer bytes per op, and a change waits at most one window
	// (docs/scaling.md).
	FlushPacketBudget int
	// DatagramCheckInterval is how often a live peer is UDP-pinged (in turn, plus every peer that
	// is failing) to find peers that datagrams do not reach while memberlist keeps them alive
	// over TCP; messages to such a peer go by stream until a ping succeeds again
	// (0 = never check).
	DatagramCheckInterval time.Duration
	// TickInterval is how often the tracker is ticked for digests and timers (default 50 ms).
	TickInterval time.Duration
	// Fanout is how many random live peers a ToSome message (a digest) goes to (default 3).
	Fanout int
	// MaxPacketSize is the largest frame, in bytes, sent as one best-effort datagram; larger frames
	// go by a reliable stream (default 1200, safe under a 1500-byte MTU with encryption).
	MaxPacketSize int
	// MaxMessageSize is the largest encoded message, in bytes, sent or accepted (default 16 MiB,
	// below memberlist's 20 MiB stream limit). Larger ones are dropped and counted.
	MaxMessageSize int
	// InboxSize bounds received frames waiting for the worker (count; default 4096) and
	// InboxBytes their total size (default 64 MiB). Beyond either, frames are dropped and counted;
	// anti-entropy repairs the loss.
	InboxSize  int
	InboxBytes int
	// PeerQueueBytes bounds the bytes queued for the reliable stream to one peer (default 64 MiB).
	// Beyond it, messages to that peer are dropped and counted, so one slow peer never holds up
	// the others.
	PeerQueueBytes int
	// LeaveTimeout bounds Leave when its context has no deadline (default 2 s).
	LeaveTimeout time.Duration

	// Host, when set, carries the node on a memberlist the embedding service owns (NewHost)
	// instead of one of its own. Name must then be that memberlist's node name, and Join,
	// SecretKeys, Label and Transport must be empty: the service's memberlist config decides
	// them, and its timers; the bind and advertise addresses, the memberlist timers and the
	// re-join fields (RejoinInterval, FastRejoin*) are ignored (the service joins and re-joins).
	Host *Host

	// Transport replaces the UDP/TCP transport (testcluster uses an in-memory one); nil = this
	// package's own, bound to BindAddr:BindPort: memberlist's rules, but each datagram is handed
	// over as a copy of its own size rather than in a fresh 64 KiB buffer (transport.go).
	Transport memberlist.Transport
	// Registerer receives the gossip metrics (nil = no metrics). They carry no node label: wrap
	// the registerer (prometheus.WrapRegistererWith) to tell nodes apart, as package node does.
	Registerer prometheus.Registerer
	// Logger receives the node's logs (nil = silent): "joined" with the member count and every
	// member up, failed or left at info level. memberlist's own log lines go to it at debug level,
	// except its [ERR] lines, at error level and at most 10 per 10 s.
	Logger *slog.Logger
}

// MaxHTTPAddrLen is the longest Config.HTTPAddr accepted (the node meta is limited to 512 bytes).
const MaxHTTPAddrLen = 400

// DefaultConfig returns the production (LAN) profile. A crashed node's presences disappear from
// every count within about 2 s (2.6 s worst measured, 5 nodes, 2.9 s under 20% loss; the
// suspicion timeout grows with log10 of the cluster size). SuspicionMult is 4 rather than 3:
// under 40% loss or a flapping partition it declares live nodes dead about a third less often
// (docs/operations.md, "Failure detection under loss"). A node that is merely busy, such as one
// tracking a burst of 100k presences, is not declared dead: a lone suspicion waits
// SuspicionMaxMult times longer for a refutation unless other nodes confirm it, and memberlist's
// Lifeguard extensions stretch the probe timeout of a node that is itself slow. Numbers:
// BENCHMARKS.md [E], [Q]-[Q5] and docs/bench/gossip.md.
func DefaultConfig() Config {
	return Config{
		BindAddr:              "0.0.0.0",
		BindPort:              7946,
		JoinBackoffMin:        250 * time.Millisecond,
		JoinBackoffMax:        30 * time.Second,
		RejoinInterval:        15 * time.Second,
		ReconnectTimeout:      24 * time.Hour,
		FastRejoinMin:         500 * time.Millisecond,
		FastRejoinMax:         2 * time.Second,
		FastRejoinWindow:      2 * time.Minute,
		ProbeInterval:         300 * time.Millisecond,
		ProbeTimeout:          200 * time.Millisecond,
		SuspicionMult:         4,
		SuspicionMaxMult:      2,
		GossipInterval:        100 * time.Millisecond,
		GossipNodes:           4,
		GossipToTheDeadTime:   15 * time.Second,
		PushPullInterval:      10 * time.Second,
		TCPTimeout:            5 * time.Second,
		DeadNodeReclaimTime:   500 * time.Millisecond,
		TickInterval:          50 * time.Millisecond,
		FlushPacketBudget:     4000,
		DatagramCheckInterval: 250 * time.Millisecond,
		Fanout:                3,
		MaxPacketSize:         1200,
		MaxMessageSize:        16 << 20,
		InboxSize:             4096,
		InboxBytes:            64 << 20,
		PeerQueueBytes:        64 << 20,
		LeaveTimeout:          2 * time.Second,
	}
}

// LocalConfig returns the profile for several nodes on one machine (loopback): faster failure
// detection (about 1 s) and shorter timeouts.
func LocalConfig() Config {
	c := DefaultConfig()
	c.BindAddr = "127.0.0.1"
	c.RejoinInterval = 2 * time.Second
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 150 * time.Millisecond
	c.SuspicionMult = 3 // no loss on one host: the shorter suspicion costs no false downs
	c.GossipInterval = 50 * time.Millisecond
	c.GossipToTheDeadTime = 5 * time.Second
	c.PushPullInterval = 5 * time.Second
	c.TCPTimeout = time.Second
	c.DeadNodeReclaimTime = time.Second
	return c
}

// TestConfig returns a fast profile for in-process tests: failure detection in a few hundred
// milliseconds and re-joins every 300 ms. Do not use it across real machines.
func TestConfig() Config {
	c := LocalConfig()
	c.BindPort = 0
	c.JoinBackoffMin = 20 * time.Millisecond
	c.JoinBackoffMax = 500 * time.Millisecond
	c.RejoinInterval = 300 * time.Millisecond
	// Off: under the race detector on a loaded machine in-memory pings time out often enough to
	// switch healthy peers to streams, which then slow bulk tests down. Tests of the check set it.
	c.DatagramCheckInterval = 0
	c.FastRejoinMin = 250 * time.Millisecond
	c.FastRejoinMax = time.Second
	c.ReconnectTimeout = time.Minute
	c.ProbeInterval = 100 * time.Millisecond
	c.ProbeTimeout = 80 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.GossipToTheDeadTime = 2 * time.Second
	c.PushPullInterval = 2 * time.Second
	c.TCPTimeout = 500 * time.Millisecond
	c.DeadNodeReclaimTime = 200 * time.Millisecond
	c.LeaveTimeout = time.Second
	return c
}

// Errors returned by New, Leave and the helpers.
var (
	// ErrClosed is returned by Leave after Close or a previous Leave.
	ErrClosed = errors.New("gossip: closed")
	// ErrInvalidConfig wraps every configuration error returned by New.
	ErrInvalidConfig = errors.New("gossip: invalid config")
	// ErrBadKey is returned by ParseKeyFile for a key that is not 16, 24 or 32 bytes.
	ErrBadKey = errors.New("gossip: bad secret key")
	// ErrBadMeta is returned when a peer's node meta cannot be decoded.
	ErrBadMeta = errors.New("gossip: bad node meta")
)

func (c *Config) validate() error {
	bad := func(field, why string) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, why)
	}
	if c.Name == "" {
		return bad("Name", "is required")
	}
	if c.Host != nil {
		switch {
		case len(c.Join) > 0:
			return bad("Join", "must be empty with a Host (the service joins)")
		case len(c.SecretKeys) > 0:
			return bad("SecretKeys", "must be empty with a Host (the service's memberlist encrypts)")
		case c.Label != "":
			return bad("Label", "must be empty with a Host (the service's memberlist sets it)")
		case c.Transport != nil:
			return bad("Transport", "must be nil with a Host (the service's memberlist has one)")
		}
	}
	if c.Transport == nil && (c.BindPort < 0 || c.BindPort > 65535) {
		return bad("BindPort", "must be in [0, 65535]")
	}
	if c.AdvertisePort < 0 || c.AdvertisePort > 65535 {
		return bad("AdvertisePort", "must be in [0, 65535]")
	}
	if len(c.HTTPAddr) > MaxHTTPAddrLen {
		return bad("HTTPAddr", fmt.Sprintf("must be at most %d bytes", MaxHTTPAddrLen))
	}
	if len(c.Label) > 255 {
		return bad("Label", "must be at most 255 bytes")
	}
	for i, k := range c.SecretKeys {
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return bad(fmt.Sprintf("SecretKeys[%d]", i), "must be 16, 24 or 32 bytes")
		}
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"ProbeInterval", c.ProbeInterval}, {"ProbeTimeout", c.ProbeTimeout},
		{"GossipInterval", c.GossipInterval}, {"GossipToTheDeadTime", c.GossipToTheDeadTime},
		{"PushPullInterval", c.PushPullInterval}, {"TCPTimeout", c.TCPTimeout},
		{"TickInterval", c.TickInterval},
		{"JoinBackoffMin", c.JoinBackoffMin}, {"JoinBackoffMax", c.JoinBackoffMax},
		{"LeaveTimeout", c.LeaveTimeout}, {"DeadNodeReclaimTime", c.DeadNodeReclaimTime},
		{"FastRejoinMin", c.FastRejoinMin}, {"FastRejoinMax", c.FastRejoinMax},
	}
	for _, d := range durations {
		if d.d <= 0 {
			return bad(d.name, "must be > 0")
		}
	}
	if c.BroadcastInterval < 0 {
		return bad("BroadcastInterval", "must be >= 0")
	}
	if c.FlushPacketBudget < 0 {
		return bad("FlushPacketBudget", "must be >= 0")
	}
	if c.DatagramCheckInterval < 0 {
		return bad("DatagramCheckInterval", "must be >= 0")
	}
	if c.RejoinInterval < 0 {
		return bad("RejoinInterval", "must be >= 0")
	}
	if c.FastRejoinWindow < 0 {
		return bad("FastRejoinWindow", "must be >= 0")
	}
	if c.FastRejoinMax < c.FastRejoinMin {
		return bad("FastRejoinMax", "must be >= FastRejoinMin")
	}
	if c.ReconnectTimeout < 0 {
		return bad("ReconnectTimeout", "must be >= 0")
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		return bad("ProbeTimeout", "must be shorter than ProbeInterval")
	}
	if c.JoinBackoffMax < c.JoinBackoffMin {
		return bad("JoinBackoffMax", "must be >= JoinBackoffMin")
	}
	ints := []struct {
		name string
		v    int
	}{
		{"SuspicionMult", c.SuspicionMult}, {"SuspicionMaxMult", c.SuspicionMaxMult},
		{"GossipNodes", c.GossipNodes}, {"Fanout", c.Fanout}, {"InboxSize", c.InboxSize},
	}
	for _, v := range ints {
		if v.v <= 0 {
			return bad(v.name, "must be > 0")
		}
	}
	if c.MaxPacketSize < 64 || c.MaxPacketSize > 60000 {
		return bad("MaxPacketSize", "must be in [64, 60000]")
	}
	if c.MaxMessageSize < c.MaxPacketSize || c.MaxMessageSize > 20<<20-1024 {
		return bad("MaxMessageSize", "must be in [MaxPacketSize, 20 MiB - 1 KiB]")
	}
	if c.InboxBytes < c.MaxMessageSize {
		return bad("InboxBytes", "must be >= MaxMessageSize")
	}
	if c.PeerQueueBytes < c.MaxMessageSize {
		return bad("PeerQueueBytes", "must be >= MaxMessageSize")
	}
	return nil
}

// memberlistConfig builds memberlist's configuration from c.
func (c *Config) memberlistConfig() (*memberlist.Config, error) {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Name
	mc.BindAddr = c.BindAddr
	mc.BindPort = c.BindPort
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	if c.Transport == nil && c.AdvertisePort == 0 {
		// memberlist advertises BindPort; with port 0 the real port is fixed up after listening.
		mc.AdvertisePort = c.BindPort
	}
	mc.ProbeInterval = c.ProbeInterval
	mc.ProbeTimeout = c.ProbeTimeout
	mc.SuspicionMult = c.SuspicionMult
	mc.SuspicionMaxTimeoutMult = c.SuspicionMaxMult
	mc.GossipInterval = c.GossipInterval
	mc.GossipNodes = c.GossipNodes
	mc.GossipToTheDeadTime = c.GossipToTheDeadTime
	mc.PushPullInterval = c.PushPullInterval
	mc.TCPTimeout = c.TCPTimeout
	mc.DeadNodeReclaimTime = c.DeadNodeReclaimTime
	mc.RetransmitMult = 4
	// Our payloads are compact msgpack; LZW costs CPU on megabyte snapshots for little gain.
	mc.EnableCompression = false
	mc.Label = c.Label
	mc.RequireNodeNames = false
	mc.LogOutput = io.Discard
	if c.Transport != nil {
		mc.Transport = c.Transport
	}
	if len(c.SecretKeys) > 0 {
		kr, err := memberlist.NewKeyring(c.SecretKeys, c.SecretKeys[0])
		if err != nil {
			return nil, fmt.Errorf("%w: SecretKeys: %v", ErrInvalidConfig, err)
		}
		mc.Keyring = kr
	}
	return mc, nil
}

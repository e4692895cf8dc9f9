package gossip

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats are a node's traffic counters since New. Byte counts are frame bytes (this package's
// payload), without memberlist's headers and encryption overhead.
type Stats struct {
	PacketsSent     uint64 // frames sent as best-effort datagrams
	PacketBytesSent uint64
	StreamsSent     uint64 // frames sent by reliable stream
	StreamBytesSent uint64
	FramesReceived  uint64
	BytesReceived   uint64
	MessagesHandled uint64 // crdt messages passed to the tracker
	InboxDropped    uint64 // received frames dropped because the inbox was full
	QueueDropped    uint64 // outgoing messages dropped because a peer's stream queue was full
	Oversize        uint64 // messages dropped for exceeding MaxMessageSize
	DecodeErrors    uint64 // corrupt frames or messages received
	SendErrors      uint64 // sends memberlist reported as failed
	BadMeta         uint64 // peers ignored for a bad or incompatible node meta
	Joined          uint64 // replicas reported up to the tracker (joins and new epochs)
	Failed          uint64 // replicas reported down (memberlist declared them dead)
	Left            uint64 // replicas reported gone (memberlist saw them leave)
	// StreamFallbacks counts peers switched to streams because datagrams to them failed while
	// memberlist saw them alive (UDP blocked, TCP open).
	StreamFallbacks uint64
	// PacketsRefused counts packets (and streams) memberlist dropped before this package saw
	// them: not sealed with a key of the keyring (sent in clear, with a foreign key, or corrupt),
	// under another Label, or of no message type memberlist knows. Outsiders, or a node with a
	// wrong key or label.
	PacketsRefused uint64
}

type counters struct {
	packetsSent, packetBytesSent, streamsSent, streamBytesSent atomic.Uint64
	framesReceived, bytesReceived, messagesHandled             atomic.Uint64
	inboxDropped, queueDropped, oversize, decodeErrors         atomic.Uint64
	sendErrors, badMeta, joined, failed, left                  atomic.Uint64
	streamFallbacks, packetsRefused                            atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		PacketsSent: c.packetsSent.Load(), PacketBytesSent: c.packetBytesSent.Load(),
		StreamsSent: c.streamsSent.Load(), StreamBytesSent: c.streamBytesSent.Load(),
		FramesReceived: c.framesReceived.Load(), BytesReceived: c.bytesReceived.Load(),
		MessagesHandled: c.messagesHandled.Load(), InboxDropped: c.inboxDropped.Load(),
		QueueDropped: c.queueDropped.Load(), Oversize: c.oversize.Load(),
		DecodeErrors: c.decodeErrors.Load(), SendErrors: c.sendErrors.Load(), BadMeta: c.badMeta.Load(),
		Joined: c.joined.Load(), Failed: c.failed.Load(), Left: c.left.Load(),
		StreamFallbacks: c.streamFallbacks.Load(), PacketsRefused: c.packetsRefused.Load(),
	}
}

// collector exposes a node's counters and member count to Prometheus, read at scrape time.
type collector struct {
	n     *Node
	descs map[string]*prometheus.Desc
}

var metricHelp = []struct{ name, help string }{
	{"headcount_gossip_packets_sent_total", "Frames sent as best-effort datagrams."},
	{"headcount_gossip_packet_bytes_sent_total", "Bytes of frames sent as datagrams."},
	{"headcount_gossip_streams_sent_total", "Frames sent by reliable stream."},
	{"headcount_gossip_stream_bytes_sent_total", "Bytes of frames sent by reliable stream."},
	{"headcount_gossip_frames_received_total", "Frames received from peers."},
	{"headcount_gossip_bytes_received_total", "Bytes of frames received from peers."},
	{"headcount_gossip_messages_handled_total", "Replication messages passed to the tracker."},
	{"headcount_gossip_inbox_dropped_total", "Received frames dropped because the inbox was full."},
	{"headcount_gossip_queue_dropped_total", "Outgoing messages dropped because a peer queue was full."},
	{"headcount_gossip_oversize_dropped_total", "Messages dropped for exceeding the size limit."},
	{"headcount_gossip_decode_errors_total", "Corrupt frames or messages received."},
	{"headcount_gossip_send_errors_total", "Sends that failed."},
	{"headcount_gossip_bad_meta_total", "Peers ignored for a bad or incompatible node meta."},
	{"headcount_gossip_replicas_joined_total", "Peers reported up (joins and new incarnations)."},
	{"headcount_gossip_replicas_failed_total", "Peers declared failed by the failure detector."},
	{"headcount_gossip_replicas_left_total", "Peers that left gracefully."},
	{"headcount_gossip_stream_fallbacks_total", "Peers switched to streams because datagrams to them failed."},
	{"headcount_gossip_packets_refused_total", "Packets memberlist dropped undecoded: not sealed with a known key, another label, or garbage."},
	{"headcount_gossip_members", "Live cluster members seen by this node, itself included."},
}

func newCollector(n *Node) *collector {
	c := &collector{n: n, descs: make(map[string]*prometheus.Desc)}
	for _, m := range metricHelp {
		c.descs[m.name] = prometheus.NewDesc(m.name, m.help, nil, nil)
	}
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.n.Stats()
	vals := []uint64{s.PacketsSent, s.PacketBytesSent, s.StreamsSent, s.StreamBytesSent,
		s.FramesReceived, s.BytesReceived, s.MessagesHandled, s.InboxDropped, s.QueueDropped,
		s.Oversize, s.DecodeErrors, s.SendErrors, s.BadMeta, s.Joined, s.Failed, s.Left, s.StreamFallbacks, s.PacketsRefused}
	for i, v := range vals {
		ch <- prometheus.MustNewConstMetric(c.descs[metricHelp[i].name], prometheus.CounterValue, float64(v))
	}
	ch <- prometheus.MustNewConstMetric(c.descs["headcount_gossip_members"], prometheus.GaugeValue,
		float64(c.n.NumMembers()))
}

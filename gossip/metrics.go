package gossip

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/headcount-io/headcount/internal/promtable"
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
	// UnknownSender counts frames dropped because their sender's short id names no member this
	// node knows (membership lag, a restart not yet seen, a left node, an impostor) or two.
	UnknownSender uint64
	SendErrors    uint64 // sends memberlist reported as failed
	BadMeta       uint64 // peers ignored for a bad or incompatible node meta
	Joined        uint64 // replicas reported up to the tracker (joins and new epochs)
	Failed        uint64 // replicas reported down (memberlist declared them dead)
	Left          uint64 // replicas reported gone (memberlist saw them leave)
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
	streamFallbacks, packetsRefused, unknownSender             atomic.Uint64
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
		UnknownSender: c.unknownSender.Load(),
	}
}

// scrape is what one scrape reads: the counters and the member count.
type scrape struct {
	Stats
	members int
}

// newCollector returns the node's metrics table (see internal/promtable), read at scrape time.
func newCollector(n *Node) prometheus.Collector {
	c := func(name, help string, f func(scrape) uint64) promtable.Row[scrape] {
		return promtable.Counter("headcount_gossip_"+name+"_total", help, f)
	}
	return promtable.New(func() scrape { return scrape{Stats: n.Stats(), members: n.NumMembers()} },
		c("packets_sent", "Frames sent as best-effort datagrams.", func(s scrape) uint64 { return s.PacketsSent }),
		c("packet_bytes_sent", "Bytes of frames sent as datagrams.", func(s scrape) uint64 { return s.PacketBytesSent }),
		c("streams_sent", "Frames sent by reliable stream.", func(s scrape) uint64 { return s.StreamsSent }),
		c("stream_bytes_sent", "Bytes of frames sent by reliable stream.", func(s scrape) uint64 { return s.StreamBytesSent }),
		c("frames_received", "Frames received from peers.", func(s scrape) uint64 { return s.FramesReceived }),
		c("bytes_received", "Bytes of frames received from peers.", func(s scrape) uint64 { return s.BytesReceived }),
		c("messages_handled", "Replication messages passed to the tracker.", func(s scrape) uint64 { return s.MessagesHandled }),
		c("inbox_dropped", "Received frames dropped because the inbox was full.", func(s scrape) uint64 { return s.InboxDropped }),
		c("queue_dropped", "Outgoing messages dropped because a peer queue was full.", func(s scrape) uint64 { return s.QueueDropped }),
		c("oversize_dropped", "Messages dropped for exceeding the size limit.", func(s scrape) uint64 { return s.Oversize }),
		c("decode_errors", "Corrupt frames or messages received.", func(s scrape) uint64 { return s.DecodeErrors }),
		c("unknown_sender", "Frames dropped because their sender's short id names no member known here.", func(s scrape) uint64 { return s.UnknownSender }),
		c("send_errors", "Sends that failed.", func(s scrape) uint64 { return s.SendErrors }),
		c("bad_meta", "Peers ignored for a bad or incompatible node meta.", func(s scrape) uint64 { return s.BadMeta }),
		c("replicas_joined", "Peers reported up (joins and new incarnations).", func(s scrape) uint64 { return s.Joined }),
		c("replicas_failed", "Peers declared failed by the failure detector.", func(s scrape) uint64 { return s.Failed }),
		c("replicas_left", "Peers that left gracefully.", func(s scrape) uint64 { return s.Left }),
		c("stream_fallbacks", "Peers switched to streams because datagrams to them failed.", func(s scrape) uint64 { return s.StreamFallbacks }),
		c("packets_refused", "Packets memberlist dropped undecoded: not sealed with a known key, another label, or garbage.", func(s scrape) uint64 { return s.PacketsRefused }),
		promtable.Gauge("headcount_gossip_members", "Live cluster members seen by this node, itself included.",
			func(s scrape) float64 { return float64(s.members) }),
	)
}

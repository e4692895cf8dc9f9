package gossip

import (
	"encoding/binary"
	"fmt"
)

// ProtocolVersion is the version of this package's wire format (frames, the crdt messages they
// carry, and node meta). A node ignores peers that publish another version and logs it at Warn
// ("gossip: member ignored", with the peer's and our version): a cluster is upgraded by
// replacing all of its nodes, and old and new nodes never exchange data. Version 2: crdt
// WireVersion 2 (compact bodies).
const ProtocolVersion = 2

// metaMagic starts every node meta, so a memberlist node that is not a headcount node (or a corrupt
// meta) is recognised.
const metaMagic = 0xC7

// nodeMeta is what a node publishes to its peers through memberlist's node meta (<= 512 bytes).
type nodeMeta struct {
	Epoch    uint64 // the tracker's boot epoch: a new value means a new incarnation
	Protocol uint64 // ProtocolVersion of the sender
	HTTP     string // public HTTP address, may be empty
}

// encode lays the meta out as magic, uvarint epoch, uvarint protocol, uvarint length + HTTP.
func (m nodeMeta) encode() []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(m.HTTP))
	b = append(b, metaMagic)
	b = binary.AppendUvarint(b, m.Epoch)
	b = binary.AppendUvarint(b, m.Protocol)
	b = binary.AppendUvarint(b, uint64(len(m.HTTP)))
	return append(b, m.HTTP...)
}

// decodeMeta parses a peer's meta; any malformed input is ErrBadMeta, never a panic.
func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	if len(b) == 0 || b[0] != metaMagic {
		return m, fmt.Errorf("%w: missing magic", ErrBadMeta)
	}
	b = b[1:]
	var k int
	if m.Epoch, k = binary.Uvarint(b); k <= 0 {
		return m, fmt.Errorf("%w: epoch", ErrBadMeta)
	}
	b = b[k:]
	if m.Protocol, k = binary.Uvarint(b); k <= 0 {
		return m, fmt.Errorf("%w: protocol", ErrBadMeta)
	}
	b = b[k:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return m, fmt.Errorf("%w: http address", ErrBadMeta)
	}
	m.HTTP = string(b[k : k+int(n)])
	return m, nil
}

package gossip

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// A frame is one memberlist user message: frameMagic, ProtocolVersion, then one or more
// (uvarint length, crdt-encoded message) pairs. Packing several messages into one frame lets a
// batch to one peer share a datagram or a stream.
const (
	frameMagic    = 0x48 // 'H'
	frameHeader   = 2
	frameOverhead = frameHeader + binary.MaxVarintLen32 // worst case for a frame of one message
)

var errBadFrame = errors.New("gossip: bad frame")

// appendFrameMsg appends one message to a frame, starting the frame if it is empty.
func appendFrameMsg(frame, msg []byte) []byte {
	if len(frame) == 0 {
		frame = append(frame, frameMagic, ProtocolVersion)
	}
	frame = binary.AppendUvarint(frame, uint64(len(msg)))
	return append(frame, msg...)
}

// msgCost is the number of bytes msg adds to a frame.
func msgCost(msg []byte) int {
	var tmp [binary.MaxVarintLen64]byte
	return binary.PutUvarint(tmp[:], uint64(len(msg))) + len(msg)
}

// splitFrame calls fn for every message of frame, in order. Messages alias frame. Malformed input
// (bad magic, other version, a length past the end, a message over maxMsg) is an error; messages
// before the fault have already been passed to fn.
func splitFrame(frame []byte, maxMsg int, fn func(msg []byte)) error {
	if len(frame) < frameHeader || frame[0] != frameMagic {
		return fmt.Errorf("%w: magic", errBadFrame)
	}
	if frame[1] != ProtocolVersion {
		return fmt.Errorf("%w: protocol version %d", errBadFrame, frame[1])
	}
	b := frame[frameHeader:]
	if len(b) == 0 {
		return fmt.Errorf("%w: empty", errBadFrame)
	}
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) || n > uint64(maxMsg) || n == 0 {
			return fmt.Errorf("%w: message length", errBadFrame)
		}
		fn(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	return nil
}

// packer packs messages for one peer into frames of at most limit bytes (a message larger than
// limit gets a frame of its own). Each frame starts with prefix: a Host's kind byte, or nothing
// on a memberlist of our own.
type packer struct {
	limit  int
	prefix []byte
	cur    []byte
	frames [][]byte
}

func (p *packer) add(msg []byte) {
	if len(p.cur) > 0 && len(p.cur)+msgCost(msg) > p.limit {
		p.frames = append(p.frames, p.cur)
		p.cur = nil
	}
	if len(p.cur) == 0 {
		p.cur = append(p.cur, p.prefix...)
		p.cur = append(p.cur, frameMagic, ProtocolVersion)
	}
	p.cur = appendFrameMsg(p.cur, msg)
}

// done returns the frames and resets the packer.
func (p *packer) done() [][]byte {
	if len(p.cur) > 0 {
		p.frames = append(p.frames, p.cur)
	}
	f := p.frames
	p.cur, p.frames = nil, nil
	return f
}

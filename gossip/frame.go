package gossip

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/headcount-io/headcount/crdt"
)

// A frame is one memberlist user message (after a Host's kind byte):
//
//	tag     1 byte: frameTag | flags
//	sender  flagShort: shortIDLen bytes, the sender's short id (shortID);
//	        else the full replica: uvarint name length, name, uvarint epoch
//	bodies  flagSingle: the rest of the frame is one crdt body (crdt.MarshalBody);
//	        else one or more (uvarint length, body) pairs
//
// The sender is named once per frame, and its own deltas leave their owner out, so a lone add
// costs the tag, the short id and its body (its entry and two bytes). Packing several bodies
// into one frame lets a batch to one peer share a datagram or a stream. The tag is the version:
// a frame of ProtocolVersion 1 (it starts with 0x48) is refused as a bad frame, and its sender
// is ignored by membership already (another protocol in its meta).
const (
	frameTag     = 0xA0 | ProtocolVersion<<2 // 0xA8: the top six bits; the low two are flags
	frameTagMask = 0xFC
	flagShort    = 0x01 // the sender is a short id
	flagSingle   = 0x02 // one body, no length

	// shortIDLen is the size of a short id. Two replicas share one with probability 2^-32; a
	// receiver that knows both refuses the id, and a sender that sees its own id taken sends
	// its full name instead (senderTable).
	shortIDLen = 4
	// frameHeader is the head of a frame with a short sender: the tag and the id.
	frameHeader = 1 + shortIDLen
	// maxHead is the longest head: the tag and a full sender.
	maxHead = 1 + 2 + crdt.MaxNameLen + binary.MaxVarintLen64
	// frameOverhead bounds what a frame of one message adds to it, whatever its sender's form.
	frameOverhead = maxHead + binary.MaxVarintLen32
)

var errBadFrame = errors.New("gossip: bad frame")

// shortID is a replica's short id: the first four bytes of SHA-256 over its name and epoch.
// Every node computes it for itself and for every member membership announced; nothing is
// agreed beyond membership. A restart (new epoch) gets a new id, so a receiver that has not
// seen the new incarnation yet finds no member with it and drops the frame.
func shortID(r crdt.Replica) uint32 {
	b := binary.AppendUvarint(nil, uint64(len(r.Name)))
	b = append(b, r.Name...)
	b = binary.AppendUvarint(b, r.Epoch)
	sum := sha256.Sum256(b)
	return binary.BigEndian.Uint32(sum[:4])
}

// frameHead returns the head of a frame sent by self: short names the sender by shortID,
// else by its full replica. The flagSingle bit is left for the packer.
func frameHead(self crdt.Replica, short bool) []byte {
	if short {
		return binary.BigEndian.AppendUint32([]byte{frameTag | flagShort}, shortID(self))
	}
	b := binary.AppendUvarint([]byte{frameTag}, uint64(len(self.Name)))
	b = append(b, self.Name...)
	return binary.AppendUvarint(b, self.Epoch)
}

// frameSender is the sender a frame names: a short id (short) or a full replica.
type frameSender struct {
	short bool
	id    uint32
	full  crdt.Replica
}

// parsedFrame is a frame's head, decoded, and its bodies, not yet split.
type parsedFrame struct {
	sender frameSender
	single bool
	bodies []byte
}

// parseFrame decodes a frame's head. Malformed input (another tag, a truncated or overlong
// sender, no body) is an error wrapping errBadFrame.
func parseFrame(frame []byte) (parsedFrame, error) {
	var p parsedFrame
	if len(frame) == 0 {
		return p, fmt.Errorf("%w: empty", errBadFrame)
	}
	if frame[0]&frameTagMask != frameTag {
		if frame[0] == 0x48 {
			return p, fmt.Errorf("%w: a protocol 1 frame (this node speaks %d)", errBadFrame, ProtocolVersion)
		}
		return p, fmt.Errorf("%w: tag 0x%02x", errBadFrame, frame[0])
	}
	p.single = frame[0]&flagSingle != 0
	b := frame[1:]
	if frame[0]&flagShort != 0 {
		if len(b) < shortIDLen {
			return p, fmt.Errorf("%w: short sender", errBadFrame)
		}
		p.sender = frameSender{short: true, id: binary.BigEndian.Uint32(b)}
		b = b[shortIDLen:]
	} else {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > crdt.MaxNameLen || n > uint64(len(b)-k) {
			return p, fmt.Errorf("%w: sender name", errBadFrame)
		}
		name := string(b[k : k+int(n)])
		b = b[k+int(n):]
		epoch, k := binary.Uvarint(b)
		if k <= 0 {
			return p, fmt.Errorf("%w: sender epoch", errBadFrame)
		}
		p.sender = frameSender{full: crdt.Replica{Name: name, Epoch: epoch}}
		b = b[k:]
	}
	if len(b) == 0 {
		return p, fmt.Errorf("%w: no body", errBadFrame)
	}
	p.bodies = b
	return p, nil
}

// each calls fn for every body of the frame, in order. Bodies alias the frame. A length past
// the end or a body over maxMsg is an error; bodies before the fault have already been passed
// to fn.
func (p parsedFrame) each(maxMsg int, fn func(body []byte)) error {
	b := p.bodies
	if p.single {
		if len(b) > maxMsg {
			return fmt.Errorf("%w: message length", errBadFrame)
		}
		fn(b)
		return nil
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

// msgCost is the number of bytes msg adds to a frame of several.
func msgCost(msg []byte) int {
	var tmp [binary.MaxVarintLen64]byte
	return binary.PutUvarint(tmp[:], uint64(len(msg))) + len(msg)
}

// packer packs bodies for one peer into frames of at most limit bytes (a body larger than limit
// gets a frame of its own). Each frame starts with prefix (a Host's kind byte, or nothing on a
// memberlist of our own), then head (frameHead); a frame of one body is marked flagSingle and
// carries no length.
type packer struct {
	limit  int
	prefix []byte
	head   []byte
	cur    [][]byte // bodies of the frame being filled
	size   int      // its size as a frame of several
	frames [][]byte
}

func (p *packer) add(msg []byte) {
	if len(p.cur) > 0 && p.size+msgCost(msg) > p.limit {
		p.flush()
	}
	if len(p.cur) == 0 {
		p.size = len(p.prefix) + len(p.head)
	}
	p.cur = append(p.cur, msg)
	p.size += msgCost(msg)
}

func (p *packer) flush() {
	if len(p.cur) == 0 {
		return
	}
	f := make([]byte, 0, p.size)
	f = append(f, p.prefix...)
	f = append(f, p.head...)
	if len(p.cur) == 1 {
		f[len(p.prefix)] |= flagSingle
		f = append(f, p.cur[0]...)
	} else {
		for _, m := range p.cur {
			f = binary.AppendUvarint(f, uint64(len(m)))
			f = append(f, m...)
		}
	}
	p.frames = append(p.frames, f)
	p.cur, p.size = nil, 0
}

// done returns the frames and resets the packer.
func (p *packer) done() [][]byte {
	p.flush()
	f := p.frames
	p.frames = nil
	return f
}

package gossip

import (
	"encoding/binary"
	"fmt"
)

// On a hosted memberlist (see Host) the one node meta and the one push/pull state of a node are
// shared by the service and Headcount. Both are encoded as sections:
//
//	sectionMagic, then (kind byte, uvarint length, payload) for each non-empty part
//
// in any order; a decoder skips kinds it does not know, so a later version may add parts.
// Every user message carries its kind as its first byte instead (see hostDelegate.NotifyMsg).
const sectionMagic = 0xC9

// Kinds of section and message prefixes.
const (
	kindService   = 1 // the embedding service's own meta, state or message
	kindHeadcount = 2 // this package's
)

// sectionOverhead is the worst-case cost of one section's header: a kind and a length below
// memberlist's 512-byte meta limit (2 varint bytes). The magic is counted once more.
const sectionOverhead = 1 + 2

// encodeSections lays out the non-empty parts, service first; nil when both are empty.
func encodeSections(service, headcount []byte) []byte {
	if len(service) == 0 && len(headcount) == 0 {
		return nil
	}
	b := make([]byte, 0, 1+2*(1+binary.MaxVarintLen64)+len(service)+len(headcount))
	b = append(b, sectionMagic)
	for _, s := range []struct {
		kind byte
		p    []byte
	}{{kindService, service}, {kindHeadcount, headcount}} {
		if len(s.p) == 0 {
			continue
		}
		b = append(b, s.kind)
		b = binary.AppendUvarint(b, uint64(len(s.p)))
		b = append(b, s.p...)
	}
	return b
}

// decodeSections returns the service's and Headcount's parts of b (aliasing b; nil when
// absent). An empty b has neither. Malformed input (no magic, a length past the end, a kind
// twice) is an error, never a panic.
func decodeSections(b []byte) (service, headcount []byte, err error) {
	if len(b) == 0 {
		return nil, nil, nil
	}
	if b[0] != sectionMagic {
		return nil, nil, fmt.Errorf("%w: sections: missing magic", ErrBadMeta)
	}
	b = b[1:]
	seen := map[byte]bool{}
	for len(b) > 0 {
		kind := b[0]
		n, k := binary.Uvarint(b[1:])
		if k <= 0 || n > uint64(len(b)-1-k) {
			return nil, nil, fmt.Errorf("%w: sections: length", ErrBadMeta)
		}
		if seen[kind] {
			return nil, nil, fmt.Errorf("%w: sections: kind %d twice", ErrBadMeta, kind)
		}
		seen[kind] = true
		p := b[1+k : 1+k+int(n)]
		switch kind {
		case kindService:
			service = p
		case kindHeadcount:
			headcount = p
		}
		b = b[1+k+int(n):]
	}
	return service, headcount, nil
}

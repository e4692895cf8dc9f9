package crdt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"
)

// WireVersion is the version of the encoding Marshal writes: its first byte. Unmarshal rejects
// messages of any other version with ErrVersion. Version 1 was one msgpack array per message
// (its first byte is a msgpack array header, never 2), so a version-1 message is refused as
// ErrVersion, not misread.
const WireVersion = 2

// Limits on decoded fields; longer fields make Unmarshal fail. Topics and
// users longer than these are refused at the source by the tracker.
const (
	MaxNameLen  = 255
	MaxTopicLen = 1024
	MaxUserLen  = 1024
	MaxMetaLen  = 64 << 10
)

// Protocol limits on the counts in one message. Unmarshal refuses a message that claims more
// before it allocates anything for them, so a hostile message costs at most a few MiB of memory
// whatever its size (a 1 MB delta of removes would otherwise decode into 32 MB of ops).
// Honest senders stay below them: the tracker's MaxDeltaOps and SnapshotChunk are validated
// against MaxDeltaOps and MaxSnapshotEntries.
const (
	// MaxDeltaOps is the most operations in one delta message.
	MaxDeltaOps = 1 << 16
	// MaxSnapshotEntries is the most entries in one snapshot message (one part).
	MaxSnapshotEntries = 1 << 16
	// MaxDigestItems is the most owners in one digest (replicas of a cluster).
	MaxDigestItems = 1 << 14
)

var (
	// ErrVersion is returned by Unmarshal for a message of an unknown
	// wire version.
	ErrVersion = errors.New("crdt: unknown wire version")
	// ErrCorrupt is returned by Unmarshal for a message that cannot be
	// decoded.
	ErrCorrupt = errors.New("crdt: corrupt message")
)

// The first byte of a body: the kind in the low three bits, flags above.
const (
	kindMask = 0x07
	// flagOwnerImplied (delta, snapshot): the owner is the sender and is left out.
	flagOwnerImplied = 0x08
	// flagFromImplied (delta): From is To minus the number of ops, and is left out.
	flagFromImplied = 0x10
	// flagOneOp (delta): exactly one op; the count is left out.
	flagOneOp  = 0x20
	flagsKnown = kindMask | flagOwnerImplied | flagFromImplied | flagOneOp
)

// Marshal encodes m, sent by from, as one self-contained message: the version byte, the sender
// (uvarint name length, name, uvarint epoch), then the body MarshalBody writes.
func Marshal(from Replica, m Message) ([]byte, error) {
	b := make([]byte, 1, 64)
	b[0] = WireVersion
	b = appendReplica(b, from)
	return appendBody(b, from, m)
}

// MarshalBody encodes m, sent by from, without the sender: a transport that names the sender
// once for several messages (package gossip's frames) carries bodies. The sender still shapes
// the body: a delta or snapshot of from's own partition leaves its owner out.
//
// Layout: one byte of kind and flags, then the kind's fields; integers are uvarints, names are
// a uvarint length and the bytes, entries are msgpack arrays [ref, topic, user, conn, meta]
// (the same bytes in a delta as in a snapshot, except that in a contiguous delta an add whose
// ref is its own sequence number, as every fresh add's is, writes nil for the ref), and a
// remove is the removed ref as a msgpack uint.
//
//	delta:    kind|flags [owner] [from] to [count] ops...
//	snapshot: kind|flags [owner] seq part parts count entries...
//	digest:   kind count (name epoch seq)...
//	request:  kind owner since
//	goodbye:  kind replica
func MarshalBody(from Replica, m Message) ([]byte, error) {
	return appendBody(nil, from, m)
}

func appendBody(b []byte, from Replica, m Message) ([]byte, error) {
	buf := bytes.NewBuffer(b)
	w := writer{buf: buf, enc: msgpack.NewEncoder(buf)}
	switch m := m.(type) {
	case *Delta:
		// The common delta is a node's own fresh flush: its owner is the sender and every op
		// consumed one sequence number. Both are then implied.
		contiguous := m.From <= m.To && m.To-m.From == uint64(len(m.Ops))
		k := byte(kindDelta)
		if m.Owner == from {
			k |= flagOwnerImplied
		}
		if contiguous {
			k |= flagFromImplied
		}
		if len(m.Ops) == 1 {
			k |= flagOneOp
		}
		w.byte(k)
		if m.Owner != from {
			w.replica(m.Owner)
		}
		if !contiguous {
			w.uvarint(m.From)
		}
		w.uvarint(m.To)
		if len(m.Ops) != 1 {
			w.uvarint(uint64(len(m.Ops)))
		}
		for i, op := range m.Ops {
			switch {
			case op.Entry == nil:
				w.uint(op.Ref)
			case contiguous && op.Ref == op.Entry.Ref && op.Ref == m.From+uint64(i)+1:
				w.entry(op.Entry, true)
			default:
				w.entry(op.Entry, false)
			}
		}
	case *Snapshot:
		k := byte(kindSnapshot)
		if m.Owner == from {
			k |= flagOwnerImplied
		}
		w.byte(k)
		if m.Owner != from {
			w.replica(m.Owner)
		}
		w.uvarint(m.Seq)
		w.uvarint(uint64(m.Part))
		w.uvarint(uint64(m.Parts))
		w.uvarint(uint64(len(m.Entries)))
		for _, e := range m.Entries {
			w.entry(e, false)
		}
	case *Digest:
		w.byte(byte(kindDigest))
		w.uvarint(uint64(len(m.Items)))
		for _, it := range m.Items {
			w.replica(it.Owner)
			w.uvarint(it.Seq)
		}
	case *Request:
		w.byte(byte(kindRequest))
		w.replica(m.Owner)
		w.uvarint(m.Since)
	case *Goodbye:
		w.byte(byte(kindGoodbye))
		w.replica(m.Replica)
	default:
		return nil, fmt.Errorf("crdt: cannot marshal %T", m)
	}
	if w.err != nil {
		return nil, w.err
	}
	return buf.Bytes(), nil
}

// appendReplica appends r as a uvarint name length, the name and a uvarint epoch.
func appendReplica(b []byte, r Replica) []byte {
	b = binary.AppendUvarint(b, uint64(len(r.Name)))
	b = append(b, r.Name...)
	return binary.AppendUvarint(b, r.Epoch)
}

type writer struct {
	buf *bytes.Buffer
	enc *msgpack.Encoder
	err error
	tmp [binary.MaxVarintLen64]byte
}

func (w *writer) byte(c byte) { w.buf.WriteByte(c) }

func (w *writer) uvarint(v uint64) { w.buf.Write(binary.AppendUvarint(w.tmp[:0], v)) }

func (w *writer) replica(r Replica) {
	w.uvarint(uint64(len(r.Name)))
	w.buf.WriteString(r.Name)
	w.uvarint(r.Epoch)
}

func (w *writer) uint(v uint64) {
	if w.err == nil {
		w.err = w.enc.EncodeUint(v)
	}
}

func (w *writer) entry(e *Entry, impliedRef bool) {
	w.arrayLen(5)
	if impliedRef {
		w.nil()
	} else {
		w.uint(e.Ref)
	}
	w.str(e.Topic)
	w.str(e.User)
	w.uint(e.Conn)
	if w.err == nil {
		w.err = w.enc.EncodeBytes(e.Meta)
	}
}

func (w *writer) arrayLen(n int) {
	if w.err == nil {
		w.err = w.enc.EncodeArrayLen(n)
	}
}

func (w *writer) nil() {
	if w.err == nil {
		w.err = w.enc.EncodeNil()
	}
}

func (w *writer) str(s string) {
	if w.err == nil {
		w.err = w.enc.EncodeString(s)
	}
}

// Unmarshal decodes a message written by Marshal. Corrupt or hostile input
// returns an error wrapping ErrCorrupt or ErrVersion; it never panics. Every
// count read from the wire is checked against len(b) and against the protocol
// limits (MaxDeltaOps, MaxSnapshotEntries, MaxDigestItems) before anything is
// allocated for it, so one message costs at most a few MiB.
func Unmarshal(b []byte) (from Replica, m Message, err error) {
	if len(b) == 0 {
		return Replica{}, nil, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	if b[0] != WireVersion {
		return Replica{}, nil, fmt.Errorf("%w: first byte 0x%02x, want %d", ErrVersion, b[0], WireVersion)
	}
	r := newReader(b[1:])
	from = r.replica()
	if r.err != nil {
		return Replica{}, nil, r.err
	}
	m, err = r.message(from)
	if err != nil {
		return Replica{}, nil, err
	}
	return from, m, nil
}

// UnmarshalBody decodes a body written by MarshalBody(from, m). Like Unmarshal it returns an
// error wrapping ErrCorrupt for any malformed input, never panics, and bounds every count
// before it allocates.
func UnmarshalBody(from Replica, b []byte) (Message, error) {
	return newReader(b).message(from)
}

func newReader(b []byte) *reader {
	r := &reader{b: b, rd: bytes.NewReader(b)}
	r.dec = msgpack.NewDecoder(r.rd) // a bytes.Reader is read directly, without a buffer
	return r
}

// A reader decodes one message. The strings it returns are copies (a decoded message never
// aliases its input), and the entries of one message share one string per distinct topic:
// topics repeat heavily within a delta or snapshot, and a per-entry copy would be garbage as
// soon as State interns it.
type reader struct {
	b   []byte // the whole input; rd reads it
	rd  *bytes.Reader
	dec *msgpack.Decoder
	err error

	lastTopic string // the topic of the previous entry
}

func (r *reader) message(from Replica) (Message, error) {
	m := r.body(from)
	if r.err == nil && r.rd.Len() != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	c, err := r.rd.ReadByte()
	if err != nil {
		r.fail("%v", err)
	}
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, err := binary.ReadUvarint(r.rd)
	if err != nil {
		r.fail("uvarint: %v", err)
	}
	return v
}

// count reads a uvarint count of items that each take at least one byte: a larger count than
// the input left is a lie, and so is one above max.
func (r *reader) count(what string, max int) int {
	n := r.uvarint()
	if r.err == nil && (n > uint64(r.rd.Len()) || n > uint64(max)) {
		r.fail("%s of %d (max %d, %d bytes left)", what, n, max, r.rd.Len())
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

func (r *reader) name() string {
	n := r.uvarint()
	if r.err == nil && (n > MaxNameLen || n > uint64(r.rd.Len())) {
		r.fail("name of %d bytes", n)
	}
	if r.err != nil {
		return ""
	}
	return string(r.next(int(n)))
}

// next consumes the next n bytes, which the caller has checked are there (n <= rd.Len()), and
// returns them without copying: they alias the input.
func (r *reader) next(n int) []byte {
	off := len(r.b) - r.rd.Len()
	_, _ = r.rd.Seek(int64(n), io.SeekCurrent) // within the input: cannot fail
	return r.b[off : off+n : off+n]
}

// peek returns the next byte without consuming it; ok is false at the end of the input. The
// decoder reads rd without a buffer, so the codes the common fields use (a fixed array of 5, a
// positive fixint, a fixstr, nil) are read here directly, and the rest through the decoder.
func (r *reader) peek() (c byte, ok bool) {
	off := len(r.b) - r.rd.Len()
	if off >= len(r.b) {
		return 0, false
	}
	return r.b[off], true
}

// skip consumes the byte peek returned.
func (r *reader) skip() { _, _ = r.rd.ReadByte() }

func (r *reader) replica() Replica {
	return Replica{Name: r.name(), Epoch: r.uvarint()}
}

func isUintCode(c byte) bool { return c <= 0x7f || (c >= 0xcc && c <= 0xcf) }

// uint reads a msgpack unsigned integer. A signed one (msgpack decoders convert -18 to 2^64-18)
// is refused: no honest sender writes one, and it would not re-encode to the same bytes.
func (r *reader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	if c, ok := r.peek(); ok && c <= 0x7f {
		r.skip()
		return uint64(c)
	}
	if !r.code(isUintCode, "an unsigned integer") {
		return 0
	}
	v, err := r.dec.DecodeUint64()
	if err != nil {
		r.fail("%v", err)
	}
	return v
}

// isStrCode and isBinCode tell msgpack's string and binary codes apart (its decoder reads
// either as either): a string field must be a string and a bytes field bytes or nil, so that
// what decodes re-encodes to the same bytes.
func isStrCode(c byte) bool { return (c >= 0xa0 && c <= 0xbf) || (c >= 0xd9 && c <= 0xdb) }
func isBinCode(c byte) bool { return c == 0xc0 || (c >= 0xc4 && c <= 0xc6) }

func (r *reader) code(ok func(byte) bool, what string) bool {
	if r.err != nil {
		return false
	}
	c, err := r.dec.PeekCode()
	if err != nil {
		r.fail("%v", err)
		return false
	}
	if !ok(c) {
		r.fail("code 0x%02x is not %s", c, what)
		return false
	}
	return true
}

func (r *reader) str(max int) string {
	b, ok := r.strBytes(max)
	if !ok {
		return ""
	}
	return string(b)
}

// strBytes reads a string field of at most max bytes and returns its bytes, which alias the
// input.
func (r *reader) strBytes(max int) ([]byte, bool) {
	var n int
	if c, ok := r.peek(); ok && r.err == nil && c >= 0xa0 && c <= 0xbf {
		r.skip()
		n = int(c & 0x1f)
	} else {
		if !r.code(isStrCode, "a string") {
			return nil, false
		}
		var err error
		n, err = r.dec.DecodeBytesLen()
		if err != nil || n < 0 {
			if err == nil {
				err = errors.New("nil string")
			}
			r.fail("%v", err)
			return nil, false
		}
	}
	if n > max || n > r.rd.Len() {
		r.fail("string of %d bytes", n)
		return nil, false
	}
	return r.next(n), true
}

// topic reads a topic like str, and returns the message's earlier copy of the same topic if
// it has one.
func (r *reader) topic() string {
	b, ok := r.strBytes(MaxTopicLen)
	if !ok {
		return ""
	}
	if string(b) == r.lastTopic { // neither the comparison nor the lookup copies b
		return r.lastTopic
	}
	t := string(b)
	r.lastTopic = t
	return t
}

func (r *reader) bytes(max int) []byte {
	if r.skipNil() {
		return nil
	}
	if !r.code(isBinCode, "bytes") {
		return nil
	}
	n, err := r.dec.DecodeBytesLen()
	if err != nil {
		r.fail("%v", err)
		return nil
	}
	if n < 0 {
		return nil // msgpack nil
	}
	if n > max || n > r.rd.Len() {
		r.fail("bytes of %d", n)
		return nil
	}
	buf := make([]byte, n)
	if _, err := r.rd.Read(buf); err != nil && n > 0 {
		r.fail("%v", err)
		return nil
	}
	return buf
}

// entry reads one entry; its ref may be nil (implied) only where implied is nonzero, and is
// then implied.
func (r *reader) entry(implied Seq) *Entry {
	if r.err != nil {
		return nil
	}
	n := 5
	if c, ok := r.peek(); !ok || c != 0x95 {
		var err error
		if n, err = r.dec.DecodeArrayLen(); err != nil {
			r.fail("%v", err)
			return nil
		}
	} else {
		r.skip()
	}
	if n != 5 {
		r.fail("entry of %d fields, want 5", n)
		return nil
	}
	var ref Seq
	if r.skipNil() {
		if implied == 0 {
			r.fail("implied ref outside a contiguous delta")
			return nil
		}
		ref = implied
	} else {
		ref = r.uint()
	}
	e := &Entry{Ref: ref, Topic: r.topic(), User: r.str(MaxUserLen), Conn: r.uint(), Meta: r.bytes(MaxMetaLen)}
	if r.err != nil {
		return nil
	}
	return e
}

// skipNil consumes a msgpack nil if one comes next and reports whether it
// did.
func (r *reader) skipNil() bool {
	if r.err != nil {
		return false
	}
	c, ok := r.peek()
	if !ok {
		r.fail("EOF")
		return false
	}
	if c != 0xc0 {
		return false
	}
	r.skip()
	return true
}

func (r *reader) body(from Replica) Message {
	head := r.byte()
	if r.err != nil {
		return nil
	}
	k := kind(head & kindMask)
	flags := head &^ kindMask
	var allowed byte
	switch k {
	case kindDelta:
		allowed = flagOwnerImplied | flagFromImplied | flagOneOp
	case kindSnapshot:
		allowed = flagOwnerImplied
	}
	if flags&^allowed != 0 || head&^flagsKnown != 0 {
		r.fail("kind %d with flags 0x%02x", k, flags)
		return nil
	}
	owner := func() Replica {
		if flags&flagOwnerImplied != 0 {
			return from
		}
		return r.replica()
	}
	switch k {
	case kindDelta:
		d := &Delta{Owner: owner()}
		impliedFrom := flags&flagFromImplied != 0
		if !impliedFrom {
			d.From = r.uvarint()
		}
		d.To = r.uvarint()
		cnt := 1
		if flags&flagOneOp == 0 {
			cnt = r.count("delta ops", MaxDeltaOps)
			if r.err == nil && cnt == 1 {
				r.fail("one op without its flag")
			}
		}
		if r.err != nil {
			return nil
		}
		if impliedFrom {
			if uint64(cnt) > d.To {
				r.fail("delta of %d ops ending at %d", cnt, d.To)
				return nil
			}
			d.From = d.To - uint64(cnt)
		} else if d.From <= d.To && d.To-d.From == uint64(cnt) {
			r.fail("explicit start of a contiguous delta")
			return nil
		}
		d.Ops = make([]Op, 0, cnt)
		for i := 0; i < cnt && r.err == nil; i++ {
			c, ok := r.peek()
			if !ok {
				r.fail("EOF")
				break
			}
			if isArrayCode(c) {
				var implied Seq
				if impliedFrom {
					implied = d.From + uint64(i) + 1
				}
				if e := r.entry(implied); e != nil {
					d.Ops = append(d.Ops, Op{Ref: e.Ref, Entry: e})
				}
			} else {
				d.Ops = append(d.Ops, Op{Ref: r.uint()})
			}
		}
		return d
	case kindSnapshot:
		s := &Snapshot{Owner: owner(), Seq: r.uvarint()}
		part, parts := r.uvarint(), r.uvarint()
		if r.err == nil && (parts > MaxSnapshotParts || (parts > 1 && part >= parts) || (parts <= 1 && part != 0)) {
			r.fail("snapshot part %d of %d", part, parts)
		}
		s.Part, s.Parts = uint32(part), uint32(parts)
		cnt := r.count("snapshot entries", MaxSnapshotEntries)
		if r.err != nil {
			return nil
		}
		s.Entries = make([]*Entry, 0, cnt)
		for i := 0; i < cnt && r.err == nil; i++ {
			if e := r.entry(0); e != nil {
				s.Entries = append(s.Entries, e)
			}
		}
		return s
	case kindDigest:
		// An item takes at least 3 bytes (empty name, epoch, seq).
		cnt := r.count("digest items", MaxDigestItems)
		if r.err == nil && cnt*3 > r.rd.Len() {
			r.fail("digest of %d items in %d bytes", cnt, r.rd.Len())
		}
		if r.err != nil {
			return nil
		}
		d := &Digest{Items: make([]DigestItem, 0, cnt)}
		for i := 0; i < cnt && r.err == nil; i++ {
			d.Items = append(d.Items, DigestItem{Owner: r.replica(), Seq: r.uvarint()})
		}
		return d
	case kindRequest:
		return &Request{Owner: r.replica(), Since: r.uvarint()}
	case kindGoodbye:
		return &Goodbye{Replica: r.replica()}
	}
	r.fail("unknown kind %d", k)
	return nil
}

func isArrayCode(c byte) bool {
	return (c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd
}

package crdt

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// WireVersion is the version of the encoding Marshal writes. Unmarshal
// rejects messages of any other version with ErrVersion.
const WireVersion = 1

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

// Marshal encodes m, sent by from, as versioned msgpack. The layout is one
// array: [version, kind, from.Name, from.Epoch, body...]. An add is encoded
// as [ref, topic, user, conn, meta] and a remove as the bare ref.
func Marshal(from Replica, m Message) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	w := writer{enc: enc}
	switch m := m.(type) {
	case *Delta:
		w.head(from, kindDelta, 5)
		// The common delta is a node's own fresh flush: its owner is the
		// sender and every op consumed one sequence number. Both are then
		// implied (nil), which saves ~20 bytes on a one-op delta.
		if m.Owner == from {
			w.nil()
			w.nil()
		} else {
			w.replica(m.Owner)
		}
		if m.From <= m.To && m.To-m.From == uint64(len(m.Ops)) {
			w.nil()
		} else {
			w.uint(m.From)
		}
		w.uint(m.To)
		w.arrayLen(len(m.Ops))
		for _, op := range m.Ops {
			if op.Entry == nil {
				w.uint(op.Ref)
			} else {
				w.entry(op.Entry)
			}
		}
	case *Snapshot:
		w.head(from, kindSnapshot, 6)
		w.replica(m.Owner)
		w.uint(m.Seq)
		w.uint(uint64(m.Part))
		w.uint(uint64(m.Parts))
		w.arrayLen(len(m.Entries))
		for _, e := range m.Entries {
			w.entry(e)
		}
	case *Digest:
		w.head(from, kindDigest, 1)
		w.arrayLen(len(m.Items) * 3)
		for _, it := range m.Items {
			w.replica(it.Owner)
			w.uint(it.Seq)
		}
	case *Request:
		w.head(from, kindRequest, 3)
		w.replica(m.Owner)
		w.uint(m.Since)
	case *Goodbye:
		w.head(from, kindGoodbye, 2)
		w.replica(m.Replica)
	default:
		return nil, fmt.Errorf("crdt: cannot marshal %T", m)
	}
	if w.err != nil {
		return nil, w.err
	}
	return buf.Bytes(), nil
}

type writer struct {
	enc *msgpack.Encoder
	err error
}

func (w *writer) head(from Replica, k kind, bodyLen int) {
	w.arrayLen(4 + bodyLen)
	w.uint(WireVersion)
	w.uint(uint64(k))
	w.replica(from)
}

func (w *writer) arrayLen(n int) {
	if w.err == nil {
		w.err = w.enc.EncodeArrayLen(n)
	}
}

func (w *writer) uint(v uint64) {
	if w.err == nil {
		w.err = w.enc.EncodeUint(v)
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

func (w *writer) replica(r Replica) {
	w.str(r.Name)
	w.uint(r.Epoch)
}

func (w *writer) entry(e *Entry) {
	w.arrayLen(5)
	w.uint(e.Ref)
	w.str(e.Topic)
	w.str(e.User)
	w.uint(e.Conn)
	if w.err == nil {
		w.err = w.enc.EncodeBytes(e.Meta)
	}
}

// Unmarshal decodes a message written by Marshal. Corrupt or hostile input
// returns an error wrapping ErrCorrupt or ErrVersion; it never panics. Every
// count read from the wire is checked against len(b) and against the protocol
// limits (MaxDeltaOps, MaxSnapshotEntries, MaxDigestItems) before anything is
// allocated for it, so one message costs at most a few MiB.
func Unmarshal(b []byte) (from Replica, m Message, err error) {
	r := reader{rd: bytes.NewReader(b)}
	r.dec = msgpack.NewDecoder(r.rd)
	n := r.arrayLen()
	if v := r.uint(); r.err == nil && v != WireVersion {
		return Replica{}, nil, fmt.Errorf("%w: %d", ErrVersion, v)
	}
	k := kind(r.uint())
	from = r.replica()
	if r.err == nil {
		m = r.body(k, n-4, from)
	}
	if r.err == nil && r.rd.Len() != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return Replica{}, nil, r.err
	}
	return from, m, nil
}

type reader struct {
	rd  *bytes.Reader
	dec *msgpack.Decoder
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
	}
}

func (r *reader) arrayLen() int {
	if r.err != nil {
		return 0
	}
	n, err := r.dec.DecodeArrayLen()
	if err != nil {
		r.fail("%v", err)
		return 0
	}
	// Every element takes at least one byte: a larger count is a lie.
	if n < 0 || n > r.rd.Len() {
		r.fail("array length %d exceeds input", n)
		return 0
	}
	return n
}

func (r *reader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, err := r.dec.DecodeUint64()
	if err != nil {
		r.fail("%v", err)
	}
	return v
}

func (r *reader) str(max int) string {
	if r.err != nil {
		return ""
	}
	n, err := r.dec.DecodeBytesLen()
	if err != nil || n < 0 {
		if err == nil {
			err = errors.New("nil string")
		}
		r.fail("%v", err)
		return ""
	}
	if n > max || n > r.rd.Len() {
		r.fail("string of %d bytes", n)
		return ""
	}
	buf := make([]byte, n)
	if _, err := r.rd.Read(buf); err != nil && n > 0 {
		r.fail("%v", err)
		return ""
	}
	return string(buf)
}

func (r *reader) bytes(max int) []byte {
	if r.err != nil {
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

func (r *reader) replica() Replica {
	return Replica{Name: r.str(MaxNameLen), Epoch: r.uint()}
}

func (r *reader) expect(got, want int) bool {
	if r.err == nil && got != want {
		r.fail("array of %d, want %d", got, want)
	}
	return r.err == nil
}

func (r *reader) entry() *Entry {
	if !r.expect(r.arrayLen(), 5) {
		return nil
	}
	e := &Entry{Ref: r.uint(), Topic: r.str(MaxTopicLen), User: r.str(MaxUserLen), Conn: r.uint(), Meta: r.bytes(MaxMetaLen)}
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
	c, err := r.dec.PeekCode()
	if err != nil {
		r.fail("%v", err)
		return false
	}
	if c != 0xc0 {
		return false
	}
	_ = r.dec.DecodeNil()
	return true
}

func (r *reader) body(k kind, n int, from Replica) Message {
	switch k {
	case kindDelta:
		if !r.expect(n, 5) {
			return nil
		}
		d := &Delta{}
		if r.skipNil() {
			if !r.skipNil() {
				r.fail("half-implied delta owner")
			}
			d.Owner = from
		} else {
			d.Owner = r.replica()
		}
		impliedFrom := r.skipNil()
		if !impliedFrom {
			d.From = r.uint()
		}
		d.To = r.uint()
		cnt := r.arrayLen()
		if r.err == nil && cnt > MaxDeltaOps {
			r.fail("delta of %d ops (max %d)", cnt, MaxDeltaOps)
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
		}
		d.Ops = make([]Op, 0, cnt)
		for i := 0; i < cnt && r.err == nil; i++ {
			c, err := r.dec.PeekCode()
			if err != nil {
				r.fail("%v", err)
				break
			}
			if isArrayCode(c) {
				e := r.entry()
				if e != nil {
					d.Ops = append(d.Ops, Op{Ref: e.Ref, Entry: e})
				}
			} else {
				d.Ops = append(d.Ops, Op{Ref: r.uint()})
			}
		}
		return d
	case kindSnapshot:
		if !r.expect(n, 6) {
			return nil
		}
		s := &Snapshot{Owner: r.replica(), Seq: r.uint()}
		part, parts := r.uint(), r.uint()
		if r.err == nil && (parts > MaxSnapshotParts || (parts > 1 && part >= parts) || (parts <= 1 && part != 0)) {
			r.fail("snapshot part %d of %d", part, parts)
		}
		s.Part, s.Parts = uint32(part), uint32(parts)
		cnt := r.arrayLen()
		if r.err == nil && cnt > MaxSnapshotEntries {
			r.fail("snapshot of %d entries (max %d)", cnt, MaxSnapshotEntries)
		}
		if r.err != nil {
			return nil
		}
		s.Entries = make([]*Entry, 0, cnt)
		for i := 0; i < cnt && r.err == nil; i++ {
			if e := r.entry(); e != nil {
				s.Entries = append(s.Entries, e)
			}
		}
		return s
	case kindDigest:
		if !r.expect(n, 1) {
			return nil
		}
		cnt := r.arrayLen()
		if r.err == nil && cnt%3 != 0 {
			r.fail("digest of %d fields", cnt)
		}
		if r.err == nil && cnt/3 > MaxDigestItems {
			r.fail("digest of %d items (max %d)", cnt/3, MaxDigestItems)
		}
		if r.err != nil {
			return nil
		}
		d := &Digest{Items: make([]DigestItem, 0, cnt/3)}
		for i := 0; i < cnt/3 && r.err == nil; i++ {
			d.Items = append(d.Items, DigestItem{Owner: r.replica(), Seq: r.uint()})
		}
		return d
	case kindRequest:
		if !r.expect(n, 3) {
			return nil
		}
		return &Request{Owner: r.replica(), Since: r.uint()}
	case kindGoodbye:
		if !r.expect(n, 2) {
			return nil
		}
		return &Goodbye{Replica: r.replica()}
	}
	r.fail("unknown kind %d", k)
	return nil
}

func isArrayCode(c byte) bool {
	return (c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd
}

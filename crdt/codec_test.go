package crdt

import (
	"bytes"
	"encoding/hex"
	"errors"
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func sampleMessages() []Message {
	e1 := &Entry{Ref: 1, Topic: "video:42", User: "", Conn: 7}
	e2 := &Entry{Ref: 3, Topic: "video:42", User: "user-1", Conn: 8, Meta: []byte(`{"tab":2}`)}
	return []Message{
		&Delta{Owner: rA, From: 0, To: 3, Ops: []Op{{Ref: 1, Entry: e1}, {Ref: 1}, {Ref: 3, Entry: e2}}},
		&Delta{Owner: rA, From: 3, To: 3},
		&Snapshot{Owner: rB, Seq: 9, Entries: []*Entry{e1, e2}},
		&Snapshot{Owner: rB, Seq: 0},
		&Snapshot{Owner: rB, Seq: 9, Entries: []*Entry{e2}, Part: 2, Parts: 3},
		&Digest{Items: []DigestItem{{Owner: rA, Seq: 3}, {Owner: Replica{Name: "node-with-a-long-name", Epoch: 1 << 62}, Seq: 1 << 40}}},
		&Digest{},
		&Request{Owner: rC, Since: 17},
		&Goodbye{Replica: rC},
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b, err := Marshal(rB, m)
		require.NoError(t, err)
		from, got, err := Unmarshal(b)
		require.NoError(t, err)
		require.Equal(t, rB, from)
		// Entries decoded from the wire have no owner yet; compare fields.
		require.Equal(t, normalize(m), normalize(got), "%T", m)
		b2, err := Marshal(rB, got)
		require.NoError(t, err)
		require.Equal(t, b, b2, "re-encoding is stable")
	}
}

// normalize clears what the wire does not carry and makes empty slices nil.
func normalize(m Message) Message {
	cp := func(e *Entry) *Entry {
		c := *e
		c.owner = nil
		if len(c.Meta) == 0 {
			c.Meta = nil
		}
		return &c
	}
	switch m := m.(type) {
	case *Delta:
		d := &Delta{Owner: m.Owner, From: m.From, To: m.To}
		for _, op := range m.Ops {
			o := Op{Ref: op.Ref}
			if op.Entry != nil {
				o.Entry = cp(op.Entry)
			}
			d.Ops = append(d.Ops, o)
		}
		return d
	case *Snapshot:
		s := &Snapshot{Owner: m.Owner, Seq: m.Seq, Part: m.Part, Parts: m.Parts}
		for _, e := range m.Entries {
			s.Entries = append(s.Entries, cp(e))
		}
		return s
	case *Digest:
		if len(m.Items) == 0 {
			return &Digest{}
		}
	}
	return m
}

func TestUnmarshalRejects(t *testing.T) {
	good, err := Marshal(rA, sampleMessages()[0])
	require.NoError(t, err)
	// msg builds a version-2 message from sender "a"/1 and the given body bytes.
	msg := func(body ...byte) []byte { return append([]byte{WireVersion, 1, 'a', 1}, body...) }
	v1, err := hex.DecodeString("9901" + "01a16101c0c0c00891" + "9501a17400" + "01c0") // a version-1 one-op delta
	require.NoError(t, err)
	cases := map[string]struct {
		in   []byte
		want error
	}{
		"empty":                     {nil, ErrCorrupt},
		"truncated":                 {good[:len(good)-3], ErrCorrupt},
		"trailing":                  {append(append([]byte{}, good...), 0), ErrCorrupt},
		"version 1":                 {v1, ErrVersion},
		"future version":            {[]byte{WireVersion + 1, 1, 'a', 1, byte(kindGoodbye), 1, 'a', 1}, ErrVersion},
		"no body":                   {msg(), ErrCorrupt},
		"unknown kind":              {msg(7), ErrCorrupt},
		"kind zero":                 {msg(0), ErrCorrupt},
		"unknown flag":              {msg(byte(kindDelta)|0x40, 0, 0), ErrCorrupt},
		"flag of other kind":        {msg(byte(kindDigest)|flagOwnerImplied, 0), ErrCorrupt},
		"long name":                 {append([]byte{WireVersion, 0xac, 0x02}, make([]byte, 300)...), ErrCorrupt},
		"name past end":             {[]byte{WireVersion, 9, 'a'}, ErrCorrupt},
		"overlong uvarint":          {msg(byte(kindRequest), 1, 'o', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), ErrCorrupt},
		"digest count lie":          {msg(byte(kindDigest), 100, 1, 'o', 1, 1), ErrCorrupt},
		"part past parts":           {msg(byte(kindSnapshot), 1, 'o', 1, 5, 3, 3, 0), ErrCorrupt},
		"too many parts":            {msg(byte(kindSnapshot), 1, 'o', 1, 5, 0, 0x81, 0x20, 0), ErrCorrupt},
		"entry arity":               {msg(byte(kindSnapshot), 1, 'o', 1, 5, 0, 0, 1, 0x92, 1, 0xa1, 't'), ErrCorrupt},
		"ops count lie":             {msg(byte(kindDelta)|flagFromImplied, 200, 100, 1), ErrCorrupt},
		"one op unflagged":          {msg(byte(kindDelta)|flagOwnerImplied|flagFromImplied, 5, 1, 3), ErrCorrupt},
		"implied underflow":         {msg(byte(kindDelta)|flagOwnerImplied|flagFromImplied|flagOneOp, 0, 3), ErrCorrupt},
		"explicit contiguous start": {msg(byte(kindDelta)|flagOwnerImplied|flagOneOp, 4, 5, 3), ErrCorrupt},
		// A nil ref is the op's own sequence number, which only a contiguous delta defines.
		"implied ref, gap":      {msg(byte(kindDelta)|flagOwnerImplied|flagOneOp, 1, 5, 0x95, 0xc0, 0xa1, 't', 0xa0, 1, 0xc0), ErrCorrupt},
		"implied ref, snapshot": {msg(byte(kindSnapshot)|flagOwnerImplied, 5, 0, 0, 1, 0x95, 0xc0, 0xa1, 't', 0xa0, 1, 0xc0), ErrCorrupt},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, m, err := Unmarshal(c.in)
			require.Error(t, err)
			require.True(t, errors.Is(err, c.want), "err = %v", err)
			require.Nil(t, m)
		})
	}
}

// The bodies MarshalBody writes decode with UnmarshalBody and the same sender, whoever owns
// the partition; a body names no sender, so decoding it for another sender gives the owner
// that sender (which is why a transport must name the sender exactly).
func TestMarshalBodyRoundTrip(t *testing.T) {
	for _, from := range []Replica{rA, rB} {
		for _, m := range sampleMessages() {
			b, err := MarshalBody(from, m)
			require.NoError(t, err)
			got, err := UnmarshalBody(from, b)
			require.NoError(t, err)
			require.Equal(t, normalize(m), normalize(got), "%T from %v", m, from)
			full, err := Marshal(from, m)
			require.NoError(t, err)
			require.Equal(t, full, append(appendReplica([]byte{WireVersion}, from), b...), "Marshal is the sender and the body")
		}
	}
}

// FuzzUnmarshal checks that no input panics, and that whatever decodes
// re-encodes to a message that decodes to the same thing.
func FuzzUnmarshal(f *testing.F) {
	for _, m := range sampleMessages() {
		b, err := Marshal(rA, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{WireVersion, 1, 'a', 1, byte(kindDelta) | flagOwnerImplied | flagFromImplied, 3, 2, 0x95, 0xc0, 0xa1, 't', 0xa0, 1, 0xc0, 2})
	f.Fuzz(func(t *testing.T, in []byte) {
		from, m, err := Unmarshal(in)
		if err != nil {
			return
		}
		b, err := Marshal(from, m)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		from2, m2, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if from != from2 {
			t.Fatalf("from %v != %v", from, from2)
		}
		b2, _ := Marshal(from2, m2)
		if !bytes.Equal(b, b2) {
			t.Fatal("encoding not stable")
		}
		applyFuzzed(m)
	})
}

// applyFuzzed applies a decoded fuzz input to a fresh state: whatever decodes must be safe to
// apply (an error, never a panic).
func applyFuzzed(m Message) {
	s := NewState(Replica{Name: "fuzz", Epoch: 1}, Options{})
	switch m := m.(type) {
	case *Delta:
		_, _, _ = s.ApplyDelta(m)
	case *Snapshot:
		_, _, _ = s.ApplySnapshot(m)
	}
}

// A node's own fresh delta implies its owner (the sender), its start (To minus the number of
// ops), its count (one) and the ref of each fresh add (its sequence number).
func TestDeltaImpliedOwnerAndFrom(t *testing.T) {
	e := &Entry{Ref: 8, Topic: "video:42", Conn: 7}
	rA := Replica{Name: "hc-node-1", Epoch: 1 << 60}
	own := &Delta{Owner: rA, From: 7, To: 8, Ops: []Op{{Ref: 8, Entry: e}}}
	relayed := &Delta{Owner: rA, From: 5, To: 8, Ops: []Op{{Ref: 8, Entry: e}}}
	rB := Replica{Name: "hc-node-2", Epoch: 1 << 60}
	bOwn, err := MarshalBody(rA, own)
	require.NoError(t, err)
	bRelayed, err := MarshalBody(rB, relayed)
	require.NoError(t, err)
	require.LessOrEqual(t, len(bOwn)+20, len(bRelayed), "owner and start implied")
	// kind|flags, To, then the entry with a nil ref: two bytes of header.
	snap, err := MarshalBody(rA, &Snapshot{Owner: rB, Seq: 8, Entries: []*Entry{e}})
	require.NoError(t, err)
	emptySnap, err := MarshalBody(rA, &Snapshot{Owner: rB, Seq: 8})
	require.NoError(t, err)
	require.Equal(t, 2, len(bOwn)-(len(snap)-len(emptySnap)), "a lone own add is the entry plus 2 bytes (the entry's ref of 1 byte is a nil)")
	for _, c := range []struct {
		from Replica
		b    []byte
		want *Delta
	}{{rA, bOwn, own}, {rB, bRelayed, relayed}} {
		m, err := UnmarshalBody(c.from, c.b)
		require.NoError(t, err)
		require.Equal(t, normalize(c.want), normalize(m))
	}
	// An implied start must not underflow: To = 0 with one op.
	bad := append([]byte{}, bOwn...)
	require.Equal(t, byte(8), bad[1])
	bad[1] = 0
	_, err = UnmarshalBody(rA, bad)
	require.ErrorIs(t, err, ErrCorrupt)
}

// An add whose ref is not its own sequence number (no honest owner writes one, but the codec
// must not rewrite it) keeps its ref on the wire.
func TestDeltaExplicitRefKept(t *testing.T) {
	d := &Delta{Owner: rA, From: 7, To: 9, Ops: []Op{
		{Ref: 9, Entry: &Entry{Ref: 9, Topic: "t", Conn: 1}}, // at seq 8: not implied
		{Ref: 3},
	}}
	b, err := MarshalBody(rA, d)
	require.NoError(t, err)
	m, err := UnmarshalBody(rA, b)
	require.NoError(t, err)
	require.Equal(t, normalize(d), normalize(m))
}

// Regression: a 1 MB delta of removes decoded into 33.5 MB of ops (32x). Counts beyond the
// protocol limits are refused before anything is allocated for them.
func TestUnmarshalRefusesCountsBeyondProtocolLimits(t *testing.T) {
	big := func(m Message) []byte {
		b, err := Marshal(rA, m)
		require.NoError(t, err)
		return b
	}
	ops := make([]Op, 300_000)
	for i := range ops {
		ops[i] = Op{Ref: Seq(i + 1)}
	}
	removes := big(&Delta{Owner: rA, From: 400_000, To: 700_000, Ops: ops})
	entries := make([]*Entry, MaxSnapshotEntries+1)
	for i := range entries {
		entries[i] = &Entry{Ref: Seq(i + 1)}
	}
	snap := big(&Snapshot{Owner: rA, Seq: Seq(len(entries)), Entries: entries})
	items := make([]DigestItem, MaxDigestItems+1)
	for i := range items {
		items[i] = DigestItem{Owner: Replica{Name: "n"}, Seq: 1}
	}
	digest := big(&Digest{Items: items})
	for name, b := range map[string][]byte{"removes": removes, "snapshot": snap, "digest": digest} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, _, err := Unmarshal(b)
			runtime.ReadMemStats(&after)
			require.ErrorIs(t, err, ErrCorrupt)
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(len(b)/4+64<<10),
				"%d-byte message", len(b))
		})
	}
	// At the limit, a delta of removes costs a bounded amount.
	ops = ops[:MaxDeltaOps]
	b := big(&Delta{Owner: rA, From: 1000, To: 1000 + MaxDeltaOps, Ops: ops})
	_, m, err := Unmarshal(b)
	require.NoError(t, err)
	require.Len(t, m.(*Delta).Ops, MaxDeltaOps)
}

// FuzzUnmarshalBody is FuzzUnmarshal for the bodies gossip's frames carry: whatever decodes
// re-encodes, for the same sender, to bytes that decode to the same message.
func FuzzUnmarshalBody(f *testing.F) {
	for _, m := range sampleMessages() {
		for _, from := range []Replica{rA, rB} {
			b, err := MarshalBody(from, m)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := UnmarshalBody(rA, in)
		if err != nil {
			return
		}
		b, err := MarshalBody(rA, m)
		if err != nil {
			t.Fatalf("re-marshal: %v", err)
		}
		m2, err := UnmarshalBody(rA, b)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if b2, _ := MarshalBody(rA, m2); !bytes.Equal(b, b2) {
			t.Fatal("encoding not stable")
		}
		if len(b) > len(in) {
			t.Fatalf("a %d-byte input re-encodes to %d bytes: the encoder is not minimal", len(in), len(b))
		}
		applyFuzzed(m)
	})
}

// Consecutive entries of one decoded message with the same topic share one string, and no
// decoded string aliases the input: overwriting the input leaves the message intact.
func TestUnmarshalSharesTopicsWithoutAliasing(t *testing.T) {
	topics := []string{"room-a", "room-a", "room-a", "room-b", "room-a", "", "", "room-b", "room-b"}
	d := &Delta{Owner: rA, From: 0, To: Seq(len(topics))}
	for i, tp := range topics {
		ref := Seq(i + 1)
		d.Ops = append(d.Ops, Op{Ref: ref, Entry: &Entry{Ref: ref, Topic: tp, User: "user-1", Conn: uint64(i)}})
	}
	b, err := Marshal(rA, d)
	require.NoError(t, err)
	_, m, err := Unmarshal(b)
	require.NoError(t, err)
	got := m.(*Delta)
	for i, op := range got.Ops {
		require.Equal(t, topics[i], op.Entry.Topic)
		if i > 0 && topics[i] == topics[i-1] && topics[i] != "" {
			require.Same(t, unsafe.StringData(got.Ops[i-1].Entry.Topic), unsafe.StringData(op.Entry.Topic), "op %d's topic %q is a second copy", i, op.Entry.Topic)
		}
	}
	want := normalize(d)
	for i := range b {
		b[i] = 0xff
	}
	require.Equal(t, want, normalize(got), "the decoded message aliases its input")
}

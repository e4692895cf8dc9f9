package crdt

import (
	"bytes"
	"errors"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
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
	enc := func(v ...any) []byte {
		var buf bytes.Buffer
		e := msgpack.NewEncoder(&buf)
		require.NoError(t, e.EncodeArrayLen(len(v)))
		for _, x := range v {
			require.NoError(t, e.Encode(x))
		}
		return buf.Bytes()
	}
	cases := map[string]struct {
		in   []byte
		want error
	}{
		"empty":           {nil, ErrCorrupt},
		"truncated":       {good[:len(good)-3], ErrCorrupt},
		"trailing":        {append(append([]byte{}, good...), 0), ErrCorrupt},
		"not an array":    {[]byte{0x01}, ErrCorrupt},
		"huge array":      {[]byte{0xdd, 0xff, 0xff, 0xff, 0xff}, ErrCorrupt},
		"future version":  {enc(2, 1, "a", 1, "o", 1, 0, 0, []any{}), ErrVersion},
		"unknown kind":    {enc(1, 99, "a", 1), ErrCorrupt},
		"wrong arity":     {enc(1, 4, "a", 1, "o"), ErrCorrupt},
		"string as int":   {enc(1, 4, "a", 1, "o", "x", 3), ErrCorrupt},
		"long name":       {enc(1, 5, string(make([]byte, 300)), 1, "o", 1), ErrCorrupt},
		"digest not by 3": {enc(1, 3, "a", 1, []any{"o", 1}), ErrCorrupt},
		"part past parts": {enc(1, 2, "a", 1, "o", 1, 5, 3, 3, []any{}), ErrCorrupt},
		"too many parts":  {enc(1, 2, "a", 1, "o", 1, 5, 0, MaxSnapshotParts+1, []any{}), ErrCorrupt},
		"entry arity":     {enc(1, 2, "a", 1, "o", 1, 5, 0, 0, []any{[]any{1, "t"}}), ErrCorrupt},
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
	f.Add([]byte{0x94, 0x01, 0x01, 0xa1, 'a', 0x01})
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
		// Whatever decodes must be safe to apply: an error, never a panic.
		s := NewState(Replica{Name: "fuzz", Epoch: 1}, Options{})
		switch m := m.(type) {
		case *Delta:
			_, _, _ = s.ApplyDelta(m)
		case *Snapshot:
			_, _, _ = s.ApplySnapshot(m)
		}
	})
}

// A node's own fresh delta implies its owner (the sender) and its start
// (To minus the number of ops): a one-op delta is ~20 bytes smaller.
func TestDeltaImpliedOwnerAndFrom(t *testing.T) {
	e := &Entry{Ref: 8, Topic: "video:42", Conn: 7}
	rA := Replica{Name: "hc-node-1", Epoch: 1 << 60}
	own := &Delta{Owner: rA, From: 7, To: 8, Ops: []Op{{Ref: 8, Entry: e}}}
	relayed := &Delta{Owner: rA, From: 5, To: 8, Ops: []Op{{Ref: 8, Entry: e}}}
	rB := Replica{Name: "hc-node-2", Epoch: 1 << 60}
	bOwn, err := Marshal(rA, own)
	require.NoError(t, err)
	bRelayed, err := Marshal(rB, relayed)
	require.NoError(t, err)
	require.LessOrEqual(t, len(bOwn)+17, len(bRelayed), "owner and start implied")
	for _, c := range []struct {
		from Replica
		b    []byte
		want *Delta
	}{{rA, bOwn, own}, {rB, bRelayed, relayed}} {
		from, m, err := Unmarshal(c.b)
		require.NoError(t, err)
		require.Equal(t, c.from, from)
		d := m.(*Delta)
		require.Equal(t, c.want.Owner, d.Owner)
		require.Equal(t, c.want.From, d.From)
		require.Equal(t, c.want.To, d.To)
	}
	// An implied start must not underflow.
	bad := append([]byte{}, bOwn...)
	_, _, err = Unmarshal(mutateTo(t, bad))
	require.ErrorIs(t, err, ErrCorrupt)
}

// mutateTo rewrites a one-op own delta so that To (8) is smaller than the
// number of ops would need: To = 0.
func mutateTo(t *testing.T, b []byte) []byte {
	t.Helper()
	i := bytes.Index(b, []byte{0xc0, 0xc0, 0xc0, 0x08})
	require.GreaterOrEqual(t, i, 0)
	b[i+3] = 0x00
	return b
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

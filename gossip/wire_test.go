package gossip

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/headcount-io/headcount/crdt"
)

func TestMetaRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := nodeMeta{
			Epoch:    rapid.Uint64().Draw(t, "epoch"),
			Protocol: rapid.Uint64().Draw(t, "proto"),
			HTTP:     rapid.StringN(0, MaxHTTPAddrLen, MaxHTTPAddrLen).Draw(t, "http"),
		}
		b := m.encode()
		if len(b) > 512 {
			t.Fatalf("meta is %d bytes, memberlist allows 512", len(b))
		}
		got, err := decodeMeta(b)
		if err != nil || got != m {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", m, got, err)
		}
	})
}

func TestMetaMaxSize(t *testing.T) {
	b := nodeMeta{Epoch: ^uint64(0), Protocol: ^uint64(0), HTTP: strings.Repeat("x", MaxHTTPAddrLen)}.encode()
	require.LessOrEqual(t, len(b), 512)
}

func TestDecodeMetaRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {}, {0x00}, {metaMagic}, {metaMagic, 1}, {metaMagic, 1, 1, 5, 'a'}, {metaMagic, 0xff}} {
		_, err := decodeMeta(b)
		require.ErrorIs(t, err, ErrBadMeta, "%x", b)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(nodeMeta{Epoch: 7, Protocol: 1, HTTP: "127.0.0.1:4000"}.encode())
	f.Add([]byte{metaMagic, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err == nil && !bytes.Equal(m.encode(), b) && len(b) > 0 {
			// Non-canonical varints decode too; re-encoding must at least decode to the same.
			m2, err2 := decodeMeta(m.encode())
			if err2 != nil || m2 != m {
				t.Fatalf("re-encode of %+v differs", m)
			}
		}
	})
}

// testFrame is the frame from sends with bodies: its short id or its full name.
func testFrame(from crdt.Replica, short bool, bodies ...[]byte) []byte {
	pk := packer{limit: 1 << 30, head: frameHead(from, short)}
	for _, b := range bodies {
		pk.add(b)
	}
	return pk.done()[0]
}

// Packed frames parse back to their sender and bodies, within the limit, with or without a
// Host's prefix, and a frame of one body carries no length.
func TestFramePackAndParse(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		limit := rapid.IntRange(16, 2000).Draw(t, "limit")
		msgs := rapid.SliceOfN(rapid.SliceOfN(rapid.Byte(), 1, 3000), 0, 50).Draw(t, "msgs")
		self := crdt.Replica{Name: rapid.StringN(0, 20, crdt.MaxNameLen).Draw(t, "name"), Epoch: rapid.Uint64().Draw(t, "epoch")}
		short := rapid.Bool().Draw(t, "short")
		prefix := rapid.SliceOfN(rapid.Byte(), 0, 1).Draw(t, "prefix")
		pk := packer{limit: limit, prefix: prefix, head: frameHead(self, short)}
		for _, m := range msgs {
			pk.add(m)
		}
		var got [][]byte
		for _, f := range pk.done() {
			if !bytes.HasPrefix(f, prefix) {
				t.Fatal("prefix missing")
			}
			pf, err := parseFrame(f[len(prefix):])
			if err != nil {
				t.Fatal(err)
			}
			want := frameSender{short: true, id: shortID(self)}
			if !short {
				want = frameSender{full: self}
			}
			if pf.sender != want {
				t.Fatalf("sender %+v, want %+v", pf.sender, want)
			}
			n := 0
			if err := pf.each(1<<20, func(m []byte) {
				got = append(got, bytes.Clone(m))
				n++
			}); err != nil {
				t.Fatal(err)
			}
			if n > 1 && len(f) > limit {
				t.Fatalf("frame of %d messages is %d bytes, limit %d", n, len(f), limit)
			}
			if n == 1 && len(f) != len(prefix)+len(frameHead(self, short))+len(got[len(got)-1]) {
				t.Fatalf("a frame of one message is %d bytes, not head and body", len(f))
			}
		}
		if len(got) != len(msgs) {
			t.Fatalf("got %d messages, want %d", len(got), len(msgs))
		}
		for i := range msgs {
			if !bytes.Equal(got[i], msgs[i]) {
				t.Fatalf("message %d differs", i)
			}
		}
	})
}

// A lone add from a node's own flush is the tag, the short id and the body: 5 bytes of frame.
func TestLoneAddFrameSize(t *testing.T) {
	self := crdt.Replica{Name: "hc-node-1", Epoch: 1_764_201_600_123_456_789}
	e := &crdt.Entry{Ref: 1_000_001, Topic: "video:12345", Conn: 2_000_001}
	body, err := crdt.MarshalBody(self, &crdt.Delta{Owner: self, From: 1_000_000, To: 1_000_001, Ops: []crdt.Op{{Ref: e.Ref, Entry: e}}})
	require.NoError(t, err)
	require.Len(t, testFrame(self, true, body), 5+len(body))
	require.Len(t, frameHead(self, true), frameHeader)
}

func TestParseFrameRejectsGarbage(t *testing.T) {
	self := crdt.Replica{Name: "a", Epoch: 1}
	good := testFrame(self, false, []byte("hello"), []byte("x"))
	for _, b := range [][]byte{nil, {frameTag}, {frameTag | flagShort, 1, 2, 3}, {0x48, 1, 1, 'a'}, {frameTag ^ 0x80, 1, 'a', 1, 'x'},
		{frameTag, 2, 'a'}, {frameTag, 1, 'a'}, {frameTag, 1, 'a', 0xff}, {frameTag, 1, 'a', 1},
		{frameTag | flagShort, 1, 2, 3, 4}, append([]byte{frameTag, 0x80, 0x02}, make([]byte, 300)...)} {
		_, err := parseFrame(b)
		require.ErrorIs(t, err, errBadFrame, "%x", b)
	}
	for _, b := range [][]byte{append(frameHead(self, false), 5, 'a'), append(frameHead(self, false), 0), append(frameHead(self, true), 0xff)} {
		pf, err := parseFrame(b)
		require.NoError(t, err)
		require.ErrorIs(t, pf.each(100, func([]byte) {}), errBadFrame, "%x", b)
	}
	pf, err := parseFrame(good)
	require.NoError(t, err)
	require.ErrorIs(t, pf.each(4, func([]byte) {}), errBadFrame, "message over the limit")
	require.NoError(t, pf.each(100, func([]byte) {}))
	single, err := parseFrame(testFrame(self, true, []byte("hello")))
	require.NoError(t, err)
	require.ErrorIs(t, single.each(4, func([]byte) {}), errBadFrame, "single message over the limit")
}

// FuzzParseFrame: no input panics; bodies never add up to more than the frame; and a frame that
// parses re-packs, with the same head, into one that parses to the same sender and bodies.
func FuzzParseFrame(f *testing.F) {
	self := crdt.Replica{Name: "hc-node-1", Epoch: 1 << 60}
	f.Add(testFrame(self, false, []byte("a"), []byte("bc")))
	f.Add(testFrame(self, true, []byte("a")))
	f.Add(testFrame(self, true, []byte("a"), []byte("bc")))
	f.Add([]byte{frameTag, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0x48, 1, 1, 'a'})
	f.Fuzz(func(t *testing.T, b []byte) {
		pf, err := parseFrame(b)
		if err != nil {
			return
		}
		var bodies [][]byte
		total := 0
		if pf.each(1<<16, func(m []byte) { bodies = append(bodies, m); total += len(m) }) != nil {
			return
		}
		if total > len(b) {
			t.Fatalf("messages total %d bytes from a %d-byte frame", total, len(b))
		}
		head := []byte{frameTag | flagShort}
		head = binary.BigEndian.AppendUint32(head, pf.sender.id)
		if !pf.sender.short {
			head = frameHead(pf.sender.full, false)
		}
		pk := packer{limit: 1 << 30, head: head}
		for _, m := range bodies {
			pk.add(m)
		}
		frames := pk.done()
		if len(frames) != 1 {
			t.Fatalf("%d frames", len(frames))
		}
		again, err := parseFrame(frames[0])
		if err != nil || again.sender != pf.sender {
			t.Fatalf("re-packed: %+v, %v; want %+v", again.sender, err, pf.sender)
		}
		var bodies2 [][]byte
		if err := again.each(1<<16, func(m []byte) { bodies2 = append(bodies2, m) }); err != nil {
			t.Fatal(err)
		}
		if len(bodies2) != len(bodies) {
			t.Fatalf("%d bodies, want %d", len(bodies2), len(bodies))
		}
		for i := range bodies {
			if !bytes.Equal(bodies[i], bodies2[i]) {
				t.Fatalf("body %d differs", i)
			}
		}
	})
}

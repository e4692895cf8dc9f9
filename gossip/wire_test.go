package gossip

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
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

func TestFramePackAndSplit(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		limit := rapid.IntRange(16, 2000).Draw(t, "limit")
		msgs := rapid.SliceOfN(rapid.SliceOfN(rapid.Byte(), 1, 3000), 0, 50).Draw(t, "msgs")
		pk := packer{limit: limit}
		for _, m := range msgs {
			pk.add(m)
		}
		var got [][]byte
		for _, f := range pk.done() {
			n := 0
			err := splitFrame(f, 1<<20, func(m []byte) {
				got = append(got, bytes.Clone(m))
				n++
			})
			if err != nil {
				t.Fatal(err)
			}
			if n > 1 && len(f) > limit {
				t.Fatalf("frame of %d messages is %d bytes, limit %d", n, len(f), limit)
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

func TestSplitFrameRejectsGarbage(t *testing.T) {
	good := appendFrameMsg(nil, []byte("hello"))
	for _, b := range [][]byte{nil, {frameMagic}, {0, ProtocolVersion, 1, 'a'}, {frameMagic, 99, 1, 'a'},
		{frameMagic, ProtocolVersion}, {frameMagic, ProtocolVersion, 5, 'a'}, {frameMagic, ProtocolVersion, 0}} {
		require.ErrorIs(t, splitFrame(b, 100, func([]byte) {}), errBadFrame, "%x", b)
	}
	require.ErrorIs(t, splitFrame(good, 4, func([]byte) {}), errBadFrame, "message over the limit")
	require.NoError(t, splitFrame(good, 100, func([]byte) {}))
}

func FuzzSplitFrame(f *testing.F) {
	f.Add(appendFrameMsg(appendFrameMsg(nil, []byte("a")), []byte("bc")))
	f.Add([]byte{frameMagic, ProtocolVersion, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		_ = splitFrame(b, 1<<16, func(m []byte) { total += len(m) })
		if total > len(b) {
			t.Fatalf("messages total %d bytes from a %d-byte frame", total, len(b))
		}
	})
}

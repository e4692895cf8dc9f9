package wsgateway

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseVsn(t *testing.T) {
	for in, want := range map[string]protoVersion{"": vsn1, "1.0.0": vsn1, "1": vsn1, "2.0.0": vsn2, "2.1": vsn2} {
		got, ok := parseVsn(in)
		require.True(t, ok, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"3.0.0", "0.9", "2.x", "2.0.0.0", "v2", "2..0", " 2"} {
		_, ok := parseVsn(in)
		require.False(t, ok, in)
	}
}

func TestAppendStringEscapes(t *testing.T) {
	for _, s := range []string{"plain", `q"uote`, `back\slash`, "ctl\x00\x1f\n", "ünï😀", "bad\xffutf8", "</script>"} {
		var got string
		require.NoError(t, json.Unmarshal(appendString(nil, s), &got), s)
		want, _ := json.Marshal(s)
		var wantS string
		require.NoError(t, json.Unmarshal(want, &wantS))
		require.Equal(t, wantS, got)
	}
}

func TestDiffPayloadAddsUp(t *testing.T) {
	from, to := Counts{Viewers: 5, Users: 1, Connections: 7}, Counts{Viewers: 2, Users: 4, Connections: 7}
	var p struct {
		Joins, Leaves map[string]struct{ Count int }
	}
	require.NoError(t, json.Unmarshal(appendDiff(nil, from, to, shapeConns), &p))
	for class, pair := range map[string][2]int{"viewers": {5, 2}, "users": {1, 4}, "connections": {7, 7}} {
		require.Contains(t, p.Joins, class)
		require.Contains(t, p.Leaves, class)
		require.Equal(t, pair[1], pair[0]+p.Joins[class].Count-p.Leaves[class].Count, class)
	}
	require.NotContains(t, string(appendDiff(nil, from, to, 0)), "connections")
}

// FuzzDecodeFrame: the decoder never panics, and whatever it accepts re-encodes to a frame
// that decodes to the same message.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range []string{
		`[null,"1","phoenix","heartbeat",{}]`, `["1","1","room:a","phx_join",{"connections":true}]`,
		`{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}`,
		`{"topic":"t","event":"e","payload":null,"ref":null,"join_ref":"2"}`,
		`[1,2,3]`, `null`, `{}`, `[]`, "\x00\xff", `["a","b","c","d",{"x":[1,2,{"y":null}]}]`,
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, v2 bool) {
		v := vsn1
		if v2 {
			v = vsn2
		}
		m, err := decodeFrame(v, data)
		if err != nil {
			return
		}
		payload := m.Payload
		if len(payload) == 0 {
			payload = json.RawMessage("null")
		}
		enc := appendFrame(nil, v, m.JoinRef, m.Ref, m.Topic, m.Event, payload)
		m2, err := decodeFrame(v, enc)
		if err != nil {
			t.Fatalf("re-encoded frame %q does not decode: %v", enc, err)
		}
		if m2.JoinRef != m.JoinRef || m2.Ref != m.Ref || m2.Topic != m.Topic || m2.Event != m.Event {
			t.Fatalf("round trip changed the frame: %+v -> %+v", m, m2)
		}
		var a, b any
		if json.Unmarshal(payload, &a) != nil || json.Unmarshal(m2.Payload, &b) != nil {
			t.Fatalf("payload is not JSON after a round trip")
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if !bytes.Equal(ja, jb) {
			t.Fatalf("payload changed: %s -> %s", ja, jb)
		}
	})
}

package wsgateway

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBroadcastSharedAcrossWriters: one change to a topic of far more channels than the hub
// goroutine writes alone, of both serializers, with and without connections. The fan-out
// writers queue and write the channels in parallel, and each shape's presence_diff is
// still encoded exactly once, shared by every channel of that shape, and each socket gets
// its own shape.
func TestBroadcastSharedAcrossWriters(t *testing.T) {
	tg := startGateway(t, nil)
	type watcher struct {
		c         *client
		v1, conns bool
	}
	n := 4 * inlineWrites
	ws := make([]watcher, n)
	for i := range ws {
		w := watcher{v1: i%2 == 1, conns: i%4 >= 2}
		params := "{\"observe\":true}"
		if w.conns {
			params = "{\"observe\":true,\"connections\":true}"
		}
		if w.v1 {
			w.c = tg.dial(t, "vsn=1.0.0")
			w.c.sendRaw(fmt.Sprintf(`{"topic":"room:a","event":"phx_join","payload":%s,"ref":"1","join_ref":"1"}`, params))
		} else {
			w.c = tg.dial(t, "vsn=2.0.0")
			w.c.sendRaw(fmt.Sprintf(`["1","1","room:a","phx_join",%s]`, params))
		}
		require.Equal(t, "phx_reply", frameEvent(t, w.c.read(), w.v1))
		require.Equal(t, "presence_state", frameEvent(t, w.c.read(), w.v1))
		ws[i] = w
	}
	encodes := tg.g.metrics.diffEncodes.Load()
	personal := tg.g.metrics.personalDiffs.Load()

	mover := tg.dial(t, "vsn=2.0.0")
	mover.join("room:a", "1")
	mover.expect(stateFrame("1", "room:a", 1, 0))
	for i, w := range ws {
		raw := w.c.read()
		require.Equal(t, "presence_diff", frameEvent(t, raw, w.v1), "watcher %d", i)
		joins := framePayload(t, raw, w.v1)["joins"].(map[string]any)
		require.Equal(t, 1.0, joins["viewers"].(map[string]any)["count"], "watcher %d: %s", i, raw)
		_, hasConns := joins["connections"]
		require.Equal(t, w.conns, hasConns, "watcher %d gets its own shape: %s", i, raw)
	}
	require.Equal(t, uint64(4), tg.g.metrics.diffEncodes.Load()-encodes, "one encode per serializer and shape")
	require.Equal(t, personal, tg.g.metrics.personalDiffs.Load(), "every watcher took the shared frame")
}

// frameEvent returns a frame's event, in either serializer.
func frameEvent(t *testing.T, raw string, v1 bool) string {
	t.Helper()
	if v1 {
		var m struct{ Event string }
		require.NoError(t, json.Unmarshal([]byte(raw), &m))
		return m.Event
	}
	var a []json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(raw), &a))
	require.Len(t, a, 5)
	var ev string
	require.NoError(t, json.Unmarshal(a[3], &ev))
	return ev
}

// framePayload returns a frame's payload object, in either serializer.
func framePayload(t *testing.T, raw string, v1 bool) map[string]any {
	t.Helper()
	var p map[string]any
	if v1 {
		var m struct{ Payload map[string]any }
		require.NoError(t, json.Unmarshal([]byte(raw), &m))
		return m.Payload
	}
	var a []json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(raw), &a))
	require.NoError(t, json.Unmarshal(a[4], &p))
	return p
}

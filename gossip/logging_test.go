package gossip

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// memberlist's warnings go to debug; its errors go to error level, at most logBurst per logEvery,
// and the next line that gets through says how many were held back.
func TestLogWriterLevelsAndRateLimit(t *testing.T) {
	var buf bytes.Buffer
	w := newLogWriter(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	now := time.Unix(1000, 0)
	w.now = func() time.Time { return now }
	_, _ = w.Write([]byte("2026/12/01 [WARN] memberlist: Was able to connect to b over TCP but UDP probes failed\n"))
	_, _ = w.Write([]byte("2026/12/01 [DEBUG] memberlist: Stream connection\n"))
	require.Empty(t, buf.String(), "warnings and debug lines stay at debug")
	for range 3 * logBurst {
		_, _ = w.Write([]byte("[ERR] memberlist: failed to decrypt packet\n"))
	}
	require.Equal(t, logBurst, strings.Count(buf.String(), "level=ERROR"))
	now = now.Add(logEvery)
	_, _ = w.Write([]byte("[ERR] memberlist: failed to decrypt packet\n"))
	require.Contains(t, buf.String(), "suppressed_before="+"20")
	w.close()
	before := buf.Len()
	_, _ = w.Write([]byte("[ERR] memberlist: after close\n"))
	require.Equal(t, before, buf.Len())
}

func TestStateOnlyMovesForward(t *testing.T) {
	var n Node
	require.Equal(t, StateAlive, n.State())
	require.True(t, n.advance(StateLeaving))
	require.False(t, n.advance(StateAlive))
	require.True(t, n.advance(StateShutdown))
	require.False(t, n.advance(StateLeft))
	require.Equal(t, "shutdown", n.State().String())
}

// memberlist's lines for packets it dropped undecoded are counted, rate-limited or not.
func TestLogWriterCountsRefusedPackets(t *testing.T) {
	var refused atomic.Uint64
	w := newLogWriter(slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.refused = &refused
	for range 3 * logBurst {
		_, _ = w.Write([]byte("[ERR] memberlist: Decrypt packet failed: no installed keys could decrypt the message from=127.0.0.1:1\n"))
	}
	_, _ = w.Write([]byte(`[ERR] memberlist: discarding packet with unacceptable label "x": from=127.0.0.1:1` + "\n"))
	_, _ = w.Write([]byte("[ERR] memberlist: msg type (200) not supported from=127.0.0.1:1\n"))
	_, _ = w.Write([]byte("[ERR] memberlist: Failed to send ack: broken pipe\n"))
	_, _ = w.Write([]byte("[WARN] memberlist: Was able to connect to b over TCP but UDP probes failed\n"))
	require.Equal(t, uint64(3*logBurst+2), refused.Load())
}

package gossip

import (
	"bytes"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// logWriter routes memberlist's log lines to slog. memberlist is chatty during faults (every
// failed probe, every refused or undecryptable packet), so [DEBUG], [INFO] and [WARN] lines go to
// debug level and only [ERR] lines to error level, at most logBurst of them per logEvery; the
// rest are counted and summarised in the next line that gets through.
// memberlist's goroutines can outlive its Shutdown; after close the writer drops their lines.
// Lines that report a packet dropped before it reached the delegate are also counted in refused
// (nil = not counted): memberlist has no other hook for them.
type logWriter struct {
	l       *slog.Logger
	refused *atomic.Uint64

	mu         sync.Mutex
	closed     bool
	now        func() time.Time
	window     time.Time // start of the current rate window
	inWindow   int
	suppressed int
}

const (
	logEvery = 10 * time.Second
	logBurst = 10
)

func newLogWriter(l *slog.Logger) *logWriter { return &logWriter{l: l, now: time.Now} }

func (w *logWriter) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
}

// refusedLines are the parts of memberlist's (v0.7) log lines for a received packet or stream it
// dropped undecoded: not sealed with a key of the keyring (no key, a foreign key, corrupt bytes),
// another cluster's label, or no message memberlist knows. TestHostileGossip fails if an upgrade
// changes them.
var refusedLines = [][]byte{
	[]byte("Decrypt packet failed"),
	[]byte("with unacceptable label"),
	[]byte("failed to receive and remove the stream label header"),
	[]byte("missing message type byte"),
	[]byte(") not supported"),
}

func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return len(p), nil
	}
	if w.refused != nil {
		for _, r := range refusedLines {
			if bytes.Contains(p, r) {
				w.refused.Add(1)
				break
			}
		}
	}
	if !bytes.Contains(p, []byte("[ERR]")) {
		w.l.Debug(line)
		return len(p), nil
	}
	if now := w.now(); now.Sub(w.window) >= logEvery {
		w.window, w.inWindow = now, 0
	}
	if w.inWindow >= logBurst {
		w.suppressed++
		w.l.Debug(line)
		return len(p), nil
	}
	w.inWindow++
	if w.suppressed > 0 {
		w.l.Error(line, "suppressed_before", w.suppressed)
		w.suppressed = 0
	} else {
		w.l.Error(line)
	}
	return len(p), nil
}

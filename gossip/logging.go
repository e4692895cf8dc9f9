package gossip

import (
	"bytes"
	"log/slog"
	"sync"
	"time"
)

// logWriter routes memberlist's log lines to slog. memberlist is chatty during faults (every
// failed probe, every refused or undecryptable packet), so [DEBUG], [INFO] and [WARN] lines go to
// debug level and only [ERR] lines to error level, at most logBurst of them per logEvery; the
// rest are counted and summarised in the next line that gets through.
// memberlist's goroutines can outlive its Shutdown; after close the writer drops their lines.
type logWriter struct {
	l *slog.Logger

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

func (w *logWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimSpace(p))
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return len(p), nil
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

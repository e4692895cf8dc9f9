package main

import (
	"errors"
	"io"
	"log/slog"
	"strings"
)

// logFlags are the logging flags every long-running subcommand shares.
type logFlags struct {
	format string // "text" or "json"
	level  string // "debug", "info", "warn" or "error"
}

func (l *logFlags) register(fs *flagSet) {
	fs.StringVar(&l.format, "log-format", "text", "log format: text (for people) or json (for log collectors)")
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
}

// newLogger builds the process logger writing to w.
func (l *logFlags) newLogger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, errors.New("--log-level must be debug, info, warn or error")
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(l.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, errors.New("--log-format must be text or json")
	}
}

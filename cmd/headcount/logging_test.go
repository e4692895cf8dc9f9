package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestLoggerFormats(t *testing.T) {
	var buf bytes.Buffer
	l, err := (&logFlags{format: "json", level: "info"}).newLogger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hidden")
	l.Info("hello", "k", 1)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil || rec["msg"] != "hello" || rec["k"] != 1.0 {
		t.Fatalf("json log %q: %v", buf.String(), err)
	}
	buf.Reset()
	l, err = (&logFlags{format: "text", level: "debug"}).newLogger(&buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("shown")
	if !strings.Contains(buf.String(), "level=DEBUG msg=shown") {
		t.Fatalf("text log %q", buf.String())
	}
	for _, bad := range []logFlags{{format: "xml", level: "info"}, {format: "text", level: "loud"}} {
		if _, err := bad.newLogger(&buf); err == nil {
			t.Errorf("%+v: want an error", bad)
		}
	}
}

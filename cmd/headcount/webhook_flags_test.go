package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/headcount-io/headcount/webhook"
)

// Webhooks (issue 13).

func TestWebhookOffByDefault(t *testing.T) {
	c, err := resolveAgent(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.webhook != nil {
		t.Fatalf("webhook on without --webhook-url: %+v", c.webhook)
	}
}

func TestWebhookFlags(t *testing.T) {
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := resolveAgent(t, nil, "--webhook-url", "https://example.test/hook", "--webhook-secret-file", f)
	if err != nil {
		t.Fatal(err)
	}
	w := c.webhook
	if w == nil || w.URL != "https://example.test/hook" || string(w.Secret) != "s3cret" ||
		w.Events != (webhook.Events{Occupied: true, Vacated: true}) || w.Debounce != time.Second || w.VacateGrace != 5*time.Second {
		t.Fatalf("defaults: %+v", w)
	}
	c, err = resolveAgent(t, map[string]string{"HEADCOUNT_WEBHOOK_VACATE_GRACE": "250ms"},
		"--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret-file", f,
		"--webhook-events", "occupied,vacated,counts", "--webhook-debounce", "100ms", "--webhook-timeout", "1s")
	if err != nil {
		t.Fatal(err)
	}
	if w := c.webhook; !w.Events.Counts || w.Debounce != 100*time.Millisecond || w.VacateGrace != 250*time.Millisecond || w.Timeout != time.Second {
		t.Fatalf("set: %+v", w)
	}
}

func TestWebhookUsageErrors(t *testing.T) {
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := []string{"--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret-file", f}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--webhook-url", "http://127.0.0.1:9/x"}, "--webhook-secret-file"},
		{[]string{"--webhook-secret-file", f}, "--webhook-url"},
		{[]string{"--webhook-url", "ftp://x/y", "--webhook-secret-file", f}, "--webhook-url"},
		{append(url, "--webhook-events", "occupied,joined"), "--webhook-events"},
		{append(url, "--webhook-debounce", "0s"), "--webhook-debounce"},
		{append(url, "--webhook-vacate-grace", "-1s"), "--webhook-vacate-grace"},
		{append(url, "--webhook-timeout", "0s"), "--webhook-timeout"},
	} {
		r := runCmd(t, nil, append([]string{"agent"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: exit %d stderr %q, want exit 2 and one line naming %s", tc.args, r.code, r.stderr, tc.want)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, nil, "agent", "--webhook-url", "http://127.0.0.1:9/x", "--webhook-secret-file", empty)
	if r.code == 0 || !strings.Contains(r.stderr, "--webhook-secret-file") {
		t.Errorf("empty secret file: exit %d stderr %q", r.code, r.stderr)
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// result is what one in-process run of the binary produced.
type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs the binary's entry point in-process with only the given
// environment variables visible.
func runCmd(t *testing.T, environ map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{
		stdout: &out,
		stderr: &errOut,
		lookupEnv: func(k string) (string, bool) {
			v, ok := environ[k]
			return v, ok
		},
	}
	code := run(context.Background(), e, args)
	return result{code: code, stdout: out.String(), stderr: errOut.String()}
}

// writeFile writes content to a new file in a test directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := t.TempDir() + "/" + name
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunWithoutCommandPrintsUsage(t *testing.T) {
	r := runCmd(t, nil)
	if r.code != 2 || !strings.Contains(r.stderr, "Usage: headcount <command>") {
		t.Fatalf("got %+v", r)
	}
}

func TestRunHelp(t *testing.T) {
	r := runCmd(t, nil, "help")
	if r.code != 0 || !strings.Contains(r.stdout, "agent") || !strings.Contains(r.stdout, "keygen") {
		t.Fatalf("got %+v", r)
	}
}

func TestRunUnknownCommand(t *testing.T) {
	r := runCmd(t, nil, "frobnicate")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Fatalf("got %+v", r)
	}
}

func TestSubcommandHelpExitsZero(t *testing.T) {
	for _, c := range commands() {
		r := runCmd(t, nil, c.name, "-h")
		if r.code != 0 || !strings.Contains(r.stdout, "Usage: headcount "+c.name) {
			t.Errorf("%s -h: got %+v", c.name, r)
		}
	}
}

func TestBadFlagIsOneLineUsageError(t *testing.T) {
	for _, c := range commands() {
		r := runCmd(t, nil, c.name, "--no-such-flag")
		if r.code != 2 {
			t.Errorf("%s: exit %d, want 2", c.name, r.code)
		}
		if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "no-such-flag") {
			t.Errorf("%s: want one line naming the flag, got %q", c.name, r.stderr)
		}
	}
}

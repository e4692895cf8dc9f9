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

// setEnv makes environ the only HEADCOUNT_* variables of the process for
// the rest of the test (so the test cannot run in parallel).
func setEnv(t *testing.T, environ map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix) {
			t.Setenv(k, "") // restored at the end of the test
			os.Unsetenv(k)
		}
	}
	for k, v := range environ {
		t.Setenv(k, v)
	}
}

// runCmd runs the binary's entry point in-process with only the given
// HEADCOUNT_* environment variables visible.
func runCmd(t *testing.T, environ map[string]string, args ...string) result {
	t.Helper()
	setEnv(t, environ)
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut}
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

func TestHelpCommandPrintsTheCommandsUsage(t *testing.T) {
	r := runCmd(t, nil, "help", "agent")
	if r.code != 0 || !strings.Contains(r.stdout, "Usage: headcount agent") || !strings.Contains(r.stdout, "-jwt-secret-file") {
		t.Fatalf("got %+v", r)
	}
	r = runCmd(t, nil, "help", "frobnicate")
	if r.code != 2 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Fatalf("got %+v", r)
	}
}

func TestVersionFlagAndCommand(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "v1.2.3", "0123456789abcdef"
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		r := runCmd(t, nil, args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "headcount v1.2.3 0123456789ab go") {
			t.Errorf("%q: got %+v", args, r)
		}
	}
	// without link-time values the build info's are used (tests have none
	// of VCS, and "(devel)" or a module version as the version)
	version, commit = "", ""
	if r := runCmd(t, nil, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "headcount ") || strings.Contains(r.stdout, "v1.2.3") {
		t.Errorf("got %+v", r)
	}
}

package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sampleValues are tried in order to find, for each agent flag, a value its
// Set accepts that differs from the default. A new flag whose type accepts
// none of them makes TestEveryAgentFlagFromEveryLayer fail: add one here.
var sampleValues = []string{"7", "3", "5ms", "3s", "2.5", "0.5", "127.0.0.1:8001", "127.0.0.1:8002"}

// flagSamples returns, for every agent flag but --config, two values a and
// b with a != b and a not the default, and the String() each gives.
func flagSamples(t *testing.T) map[string][2]string {
	t.Helper()
	fresh := func() *flagSet {
		fs := newFlagSet(&env{stdout: io.Discard, stderr: io.Discard}, "agent")
		(&agentFlags{}).register(fs)
		return fs
	}
	out := map[string][2]string{}
	fresh().VisitAll(func(f *flag.Flag) {
		if f.Name == configFlag {
			return
		}
		if isBoolFlag(f) {
			def := f.DefValue == "true"
			out[f.Name] = [2]string{fmt.Sprint(!def), fmt.Sprint(def)}
			return
		}
		var ok []string
		for _, v := range sampleValues {
			g := fresh().Lookup(f.Name)
			if g.Value.Set(v) == nil && g.Value.String() != f.DefValue && !slices.Contains(ok, g.Value.String()) {
				ok = append(ok, v)
			}
			if len(ok) == 2 {
				break
			}
		}
		if len(ok) < 2 {
			t.Errorf("flag --%s accepts fewer than two of the sample values %q: add some to sampleValues", f.Name, sampleValues)
			return
		}
		out[f.Name] = [2]string{ok[0], ok[1]}
	})
	return out
}

// valueAfter parses the agent flags from args and the environment and
// returns every flag's value as a string.
func valueAfter(t *testing.T, environ map[string]string, args ...string) map[string]string {
	t.Helper()
	setEnv(t, environ)
	var errOut bytes.Buffer
	fs := newFlagSet(&env{stdout: io.Discard, stderr: &errOut}, "agent")
	(&agentFlags{}).register(fs)
	if err := fs.parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	if errOut.Len() > 0 {
		t.Errorf("unexpected warnings: %s", errOut.String())
	}
	got := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { got[f.Name] = f.Value.String() })
	return got
}

// normalized is what the flag called name shows after Set(v).
func normalized(t *testing.T, name, v string) string {
	fs := newFlagSet(&env{}, "agent")
	(&agentFlags{}).register(fs)
	if err := fs.Set(name, v); err != nil {
		t.Fatal(err)
	}
	return fs.Lookup(name).Value.String()
}

// TestEveryAgentFlagFromEveryLayer checks the one precedence rule (flag >
// HEADCOUNT_* > config file > default) for every registered agent flag,
// including flags added later, with no per-flag code.
func TestEveryAgentFlagFromEveryLayer(t *testing.T) {
	samples := flagSamples(t)
	var yaml strings.Builder
	environ := map[string]string{}
	var args []string
	for name, s := range samples {
		fmt.Fprintf(&yaml, "%s: %q\n", name, s[0])
		environ[envName(name)] = s[1]
		args = append(args, "--"+name+"="+s[0])
	}
	cfg := writeFile(t, "headcount.yaml", yaml.String())

	fileOnly := valueAfter(t, nil, "--config", cfg)
	fileAndEnv := valueAfter(t, environ, "--config", cfg)
	all := valueAfter(t, environ, append(args, "--config", cfg)...)
	for name, s := range samples {
		a, b := normalized(t, name, s[0]), normalized(t, name, s[1])
		if fileOnly[name] != a {
			t.Errorf("--%s: config file %q gave %q", name, s[0], fileOnly[name])
		}
		if fileAndEnv[name] != b {
			t.Errorf("--%s: %s=%q over the file gave %q", name, envName(name), s[1], fileAndEnv[name])
		}
		if all[name] != a {
			t.Errorf("--%s: the flag %q over env and file gave %q", name, s[0], all[name])
		}
	}
}

func TestConfigFileJSONAndLists(t *testing.T) {
	y := writeFile(t, "c.yaml", "join:\n  - a:1\n  - b:2\nallowed-origins: https://x.example,https://y.example\ndemo-tokens: true\n")
	got := valueAfter(t, nil, "--config", y)
	if got["join"] != "a:1,b:2" || got["allowed-origins"] != "https://x.example,https://y.example" || got["demo-tokens"] != "true" {
		t.Fatalf("yaml: %v", got)
	}
	// a list on the command line replaces the file's
	got = valueAfter(t, nil, "--config", y, "--join", "c:3")
	if got["join"] != "c:3" {
		t.Fatalf("join = %q, want the flag's alone", got["join"])
	}
	j := writeFile(t, "c.json", `{"http": "127.0.0.1:4100", "max-conns": 9, "join": ["d:4"]}`)
	got = valueAfter(t, map[string]string{"HEADCOUNT_CONFIG": j})
	if got["http"] != "127.0.0.1:4100" || got["max-conns"] != "9" || got["join"] != "d:4" {
		t.Fatalf("json via HEADCOUNT_CONFIG: %v", got)
	}
}

func TestConfigUnknownKeysAndVariablesAreWarned(t *testing.T) {
	cfg := writeFile(t, "c.yaml", "htp: 127.0.0.1:1\nprofile: wan\nnested:\n  key: 1\n")
	r := runCmd(t, map[string]string{"HEADCOUNT_HTPP": "x", "HEADCOUNT_JWT_SECRET": strings.Repeat("k", 32)}, "agent", "--config", cfg)
	// The unknown names are warnings; the bad profile from the file is the error.
	if r.code != 2 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{`unknown key "htp"`, `unknown key "nested.key"`, "HEADCOUNT_HTPP is not a setting", `--profile "wan"`} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "HEADCOUNT_JWT_SECRET ") {
		t.Errorf("HEADCOUNT_JWT_SECRET is a setting, warned about:\n%s", r.stderr)
	}
	if n := strings.Count(r.stderr, "\n"); n != 4 {
		t.Errorf("want 3 warnings and 1 error line, got %d lines:\n%s", n, r.stderr)
	}
}

func TestConfigFileErrors(t *testing.T) {
	dir := t.TempDir()
	badYAML := writeFile(t, "bad.yaml", "http: [unclosed\n")
	badValue := writeFile(t, "value.yaml", "max-conns: lots\n")
	for _, tc := range []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--config", filepath.Join(dir, "missing.yaml")}, 1, []string{"--config", "missing.yaml"}},
		{[]string{"--config", badYAML}, 2, []string{"--config", "bad.yaml"}},
		{[]string{"--config", badValue}, 2, []string{"--config", "max-conns"}},
	} {
		r := runCmd(t, nil, append([]string{"agent"}, tc.args...)...)
		if r.code != tc.code || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: exit %d stderr %q, want exit %d and one line", tc.args, r.code, r.stderr, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%q: stderr %q lacks %q", tc.args, r.stderr, w)
			}
		}
	}
}

func TestOtherCommandsDoNotWarnAboutAgentVariables(t *testing.T) {
	srv, _ := fakeNode(t)
	r := runCmd(t, map[string]string{"HEADCOUNT_BIND": "0.0.0.0:7946", "HEADCOUNT_ADDR": srv.URL}, "count", "lobby")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
}

func TestFlagsAfterPositionalArguments(t *testing.T) {
	srv, paths := fakeNode(t)
	for _, args := range [][]string{
		{"count", "lobby", "--addr", srv.URL},
		{"count", "lobby", "--addr=" + srv.URL, "--json"},
		{"count", "--json", "lobby", "--addr", srv.URL},
		{"count", "--addr", srv.URL, "--", "lobby"},
	} {
		r := runCmd(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "3") {
			t.Errorf("%q: exit %d stdout %q stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	if want := "/v1/topics/lobby"; len(*paths) != 4 || (*paths)[3] != want {
		t.Fatalf("paths %q", *paths)
	}
	// after "--" a dash is a topic, not a flag
	r := runCmd(t, nil, "count", "--addr", srv.URL, "--", "-x")
	if r.code != 0 || (*paths)[4] != "/v1/topics/-x" {
		t.Fatalf("exit %d %q paths %q", r.code, r.stderr, *paths)
	}
	r = runCmd(t, nil, "count", "lobby", "more", "--addr", srv.URL)
	if r.code != 2 || !strings.Contains(r.stderr, "got 2") {
		t.Fatalf("two topics: exit %d %q", r.code, r.stderr)
	}
}

func TestInterspersed(t *testing.T) {
	fs := newFlagSet(&env{}, "x")
	fs.String("s", "", "")
	fs.Bool("b", false, "")
	for _, tc := range []struct{ in, want []string }{
		{[]string{"a", "-s", "v", "b"}, []string{"-s", "v", "--", "a", "b"}},
		{[]string{"a", "-b", "c"}, []string{"-b", "--", "a", "c"}},
		{[]string{"-s=v", "a"}, []string{"-s=v", "--", "a"}},
		{[]string{"a", "--", "-s", "v"}, []string{"--", "a", "-s", "v"}},
		{[]string{"-s", "v"}, []string{"-s", "v"}},
		{[]string{"-s"}, []string{"-s"}},
		{[]string{"-nope", "a"}, []string{"-nope", "--", "a"}},
	} {
		if got := interspersed(fs.FlagSet, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("interspersed(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestBarePortKeepsTheDefaultHost(t *testing.T) {
	c, err := resolveAgent(t, nil, "--bind", "7969", "--http", "4100")
	if err != nil {
		t.Fatal(err)
	}
	if c.bind.String() != "127.0.0.1:7969" || c.advertise.String() != "127.0.0.1:7969" || c.http.String() != "127.0.0.1:4100" {
		t.Fatalf("bind %s advertise %s http %s, want loopback", c.bind, c.advertise, c.http)
	}
	if !strings.HasSuffix(c.name, "-7969") {
		t.Fatalf("name %q", c.name)
	}
	// ":port" still means every interface, as in Go
	c, err = resolveAgent(t, nil, "--http", ":4100")
	if err != nil || !c.http.unspecified() {
		t.Fatalf("--http :4100 = %v, %v", c.http, err)
	}
}

func TestSecretsFromTheEnvironment(t *testing.T) {
	long := strings.Repeat("j", 40)
	k := strings.TrimSpace(runCmd(t, nil, "keygen").stdout)
	c, err := resolveAgent(t, map[string]string{"HEADCOUNT_JWT_SECRET": " " + long + "\n", "HEADCOUNT_GOSSIP_KEY": k})
	if err != nil {
		t.Fatal(err)
	}
	if string(c.jwtSecret) != long || len(c.gossipKeys) != 1 || len(c.gossipKeys[0]) != 32 {
		t.Fatalf("jwt %q keys %x", c.jwtSecret, c.gossipKeys)
	}
	k2 := strings.TrimSpace(runCmd(t, nil, "keygen").stdout)
	c, err = resolveAgent(t, map[string]string{"HEADCOUNT_GOSSIP_KEY": k + "," + k2})
	if err != nil || len(c.gossipKeys) != 2 {
		t.Fatalf("two keys: %x, %v", c.gossipKeys, err)
	}

	jwtFile := writeFile(t, "jwt", long)
	keyFile := writeFile(t, "key", k)
	for _, tc := range []struct {
		environ map[string]string
		args    []string
		code    int
		want    string
	}{
		{map[string]string{"HEADCOUNT_JWT_SECRET": long}, []string{"--jwt-secret-file", jwtFile}, 2, "HEADCOUNT_JWT_SECRET are both set"},
		{map[string]string{"HEADCOUNT_GOSSIP_KEY": k}, []string{"--gossip-key-file", keyFile}, 2, "HEADCOUNT_GOSSIP_KEY are both set"},
		{map[string]string{"HEADCOUNT_GOSSIP_KEY": "short"}, nil, 1, "HEADCOUNT_GOSSIP_KEY"},
		{map[string]string{"HEADCOUNT_JWT_SECRET": " "}, nil, 1, "HEADCOUNT_JWT_SECRET is set but empty"},
		{map[string]string{"HEADCOUNT_JWT_SECRET": "s3cret"}, nil, 1, "HEADCOUNT_JWT_SECRET: the key is 6 bytes, want at least 32"},
		{nil, []string{"--jwt-secret-file", writeFile(t, "short", "s3cret\n")}, 1, "--allow-short-jwt-secret"},
	} {
		r := runCmd(t, tc.environ, append([]string{"agent"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v %q: exit %d stderr %q, want exit %d and one line with %q", tc.environ, tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
	c, err = resolveAgent(t, map[string]string{"HEADCOUNT_JWT_SECRET": "s3cret"}, "--allow-short-jwt-secret")
	if err != nil || string(c.jwtSecret) != "s3cret" {
		t.Fatalf("--allow-short-jwt-secret: %q, %v", c.jwtSecret, err)
	}
}

// The process environment is what the agent reads; make sure setEnv really
// hides the test runner's own HEADCOUNT_* variables.
func TestSetEnvHidesOtherVariables(t *testing.T) {
	t.Setenv("HEADCOUNT_LEFTOVER", "1")
	setEnv(t, map[string]string{"HEADCOUNT_NAME": "x"})
	if _, ok := os.LookupEnv("HEADCOUNT_LEFTOVER"); ok {
		t.Fatal("HEADCOUNT_LEFTOVER still set")
	}
	if os.Getenv("HEADCOUNT_NAME") != "x" {
		t.Fatal("HEADCOUNT_NAME not set")
	}
}

// The agent config in deploy/kubernetes/configmap.yaml must use only agent
// flags (an unknown key would only be a warning in a pod's log).
func TestKubernetesConfigMapIsAnAgentConfig(t *testing.T) {
	b, err := os.ReadFile("../../deploy/kubernetes/configmap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(b), "headcount.yaml: |\n")
	if !ok {
		t.Fatal("configmap.yaml has no headcount.yaml")
	}
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		if !strings.HasPrefix(l, "    ") && strings.TrimSpace(l) != "" {
			break
		}
		lines = append(lines, strings.TrimPrefix(l, "    "))
	}
	cfg := writeFile(t, "headcount.yaml", strings.Join(lines, "\n"))
	got := valueAfter(t, nil, "--config", cfg) // fails on any warning
	if got["join"] != "headcount-gossip:7946" || got["http"] != "0.0.0.0:4000" || got["jwt-secret-file"] == "" {
		t.Fatalf("config read from the ConfigMap: %v", got)
	}
}

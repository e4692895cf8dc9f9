package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{
		"jwt-secret-file": "HEADCOUNT_JWT_SECRET_FILE",
		"join":            "HEADCOUNT_JOIN",
		"allowed-origins": "HEADCOUNT_ALLOWED_ORIGINS",
	} {
		if got := envName(flag); got != want {
			t.Errorf("envName(%q) = %q, want %q", flag, got, want)
		}
	}
}

// parseAgent parses agent flags from args and environ without resolving them.
func parseAgent(t *testing.T, environ map[string]string, args ...string) (*agentFlags, error) {
	t.Helper()
	setEnv(t, environ)
	var a agentFlags
	e := &env{stdout: io.Discard, stderr: io.Discard}
	fs := newFlagSet(e, "agent")
	a.register(fs)
	return &a, fs.parse(args)
}

func TestFlagPrecedence(t *testing.T) {
	// default
	a, err := parseAgent(t, nil)
	if err != nil || a.http != "127.0.0.1:4000" {
		t.Fatalf("default http = %q, %v", a.http, err)
	}
	// environment over default
	a, err = parseAgent(t, map[string]string{"HEADCOUNT_HTTP": "127.0.0.1:5000", "HEADCOUNT_NAME": "n-env"})
	if err != nil || a.http != "127.0.0.1:5000" || a.name != "n-env" {
		t.Fatalf("env: http %q name %q, %v", a.http, a.name, err)
	}
	// command line over environment
	a, err = parseAgent(t, map[string]string{"HEADCOUNT_HTTP": "127.0.0.1:5000"}, "--http", "127.0.0.1:6000")
	if err != nil || a.http != "127.0.0.1:6000" {
		t.Fatalf("flag: http %q, %v", a.http, err)
	}
}

func TestEveryAgentFlagHasAnEnvironmentVariable(t *testing.T) {
	environ := map[string]string{
		"HEADCOUNT_NAME":             "n1",
		"HEADCOUNT_BIND":             "127.0.0.1:8000",
		"HEADCOUNT_ADVERTISE":        "127.0.0.2:8000",
		"HEADCOUNT_JOIN":             "a:1,b:2",
		"HEADCOUNT_HTTP":             "127.0.0.1:8001",
		"HEADCOUNT_JWT_SECRET_FILE":  "/jwt",
		"HEADCOUNT_GOSSIP_KEY_FILE":  "/key",
		"HEADCOUNT_ALLOWED_ORIGINS":  "https://a.example,https://b.example",
		"HEADCOUNT_PROFILE":          "local",
		"HEADCOUNT_LABEL":            "blue",
		"HEADCOUNT_DEMO_TOKENS":      "true",
		"HEADCOUNT_PPROF":            "127.0.0.1:6060",
		"HEADCOUNT_SHUTDOWN_TIMEOUT": "3s",
		"HEADCOUNT_LOG_FORMAT":       "json",
		"HEADCOUNT_LOG_LEVEL":        "debug",
		"HEADCOUNT_MAX_CONNS":        "7",
		"HEADCOUNT_MAX_CONNS_PER_IP": "0",
		"HEADCOUNT_COALESCE_WINDOW":  "5ms",
		// Secure by default (issue 10).
		"HEADCOUNT_INSECURE_GOSSIP":       "true",
		"HEADCOUNT_ADMIN_HTTP":            "127.0.0.1:4009",
		"HEADCOUNT_MAX_HTTP_CONNS":        "11",
		"HEADCOUNT_MAX_HTTP_CONNS_PER_IP": "3",
		"HEADCOUNT_HTTP_READ_TIMEOUT":     "2s",
		"HEADCOUNT_HTTP_WRITE_TIMEOUT":    "3s",
		"HEADCOUNT_HTTP_IDLE_TIMEOUT":     "4s",
		"HEADCOUNT_MAX_PRESENCES":         "12",
		"HEADCOUNT_MAX_TOPICS":            "13",
	}
	a, err := parseAgent(t, environ)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{a.name, a.bind, a.advertise, a.join.String(), a.http, a.jwtSecretFile, a.gossipKeyFile,
		a.allowedOrigins.String(), a.profile, a.label, a.pprof, a.shutdownTimeout.String(), a.log.format, a.log.level}
	want := []string{"n1", "127.0.0.1:8000", "127.0.0.2:8000", "a:1,b:2", "127.0.0.1:8001", "/jwt", "/key",
		"https://a.example,https://b.example", "local", "blue", "127.0.0.1:6060", "3s", "json", "debug"}
	if !slices.Equal(got, want) || !a.demoTokens || a.maxConns != 7 || a.maxConnsPerIP != 0 || a.coalesceWindow != 5*time.Millisecond {
		t.Fatalf("got %q demo=%v\nwant %q", got, a.demoTokens, want)
	}
	if !a.insecureGossip || a.adminHTTP != "127.0.0.1:4009" || a.maxHTTPConns != 11 || a.maxHTTPConnsPerIP != 3 ||
		a.httpReadTimeout != 2*time.Second || a.httpWriteTimeout != 3*time.Second || a.httpIdleTimeout != 4*time.Second ||
		a.maxPresences != 12 || a.maxTopics != 13 {
		t.Errorf("issue 10 flags from the environment: %+v", a)
	}
}

func TestJoinRepeatedAndCommaSeparated(t *testing.T) {
	a, err := parseAgent(t, nil, "--join", "a:1, b:2", "--join", "c:3", "--join=d")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a:1", "b:2", "c:3", "d"}; !slices.Equal(a.join.values, want) {
		t.Fatalf("join = %q, want %q", a.join.values, want)
	}
}

func TestJoinFlagReplacesEnvironment(t *testing.T) {
	a, err := parseAgent(t, map[string]string{"HEADCOUNT_JOIN": "env1:1,env2:2"}, "--join", "cli:3")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"cli:3"}; !slices.Equal(a.join.values, want) {
		t.Fatalf("join = %q, want %q", a.join.values, want)
	}
	a, err = parseAgent(t, map[string]string{"HEADCOUNT_JOIN": "env1:1,env2:2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"env1:1", "env2:2"}; !slices.Equal(a.join.values, want) {
		t.Fatalf("join = %q, want %q", a.join.values, want)
	}
}

func TestBadEnvironmentValueNamesTheVariable(t *testing.T) {
	_, err := parseAgent(t, map[string]string{"HEADCOUNT_SHUTDOWN_TIMEOUT": "soon"})
	if err == nil || !strings.Contains(err.Error(), "HEADCOUNT_SHUTDOWN_TIMEOUT") {
		t.Fatalf("err = %v", err)
	}
}

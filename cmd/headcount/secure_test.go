package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAgentRefusesOpenGossipOnANonLoopbackBind pins issue 10: without a key,
// gossip is unauthenticated, so a --bind other machines can reach needs
// --gossip-key-file or an explicit --insecure-gossip.
func TestAgentRefusesOpenGossipOnANonLoopbackBind(t *testing.T) {
	for _, bind := range []string{"0.0.0.0:7946", "10.1.2.3:7946", ":7946", "[::]:7946", "node1.internal:7946"} {
		r := runCmd(t, nil, "agent", "--bind", bind, "--advertise", "10.1.2.3")
		if r.code != 1 || strings.Count(r.stderr, "\n") != 1 ||
			!strings.Contains(r.stderr, "--gossip-key-file") || !strings.Contains(r.stderr, "--insecure-gossip") {
			t.Errorf("--bind %s without a key: exit %d stderr %q, want exit 1 and one line naming --gossip-key-file and --insecure-gossip",
				bind, r.code, r.stderr)
		}
	}
	r := runCmd(t, map[string]string{"HEADCOUNT_BIND": "0.0.0.0:7946"}, "agent")
	if r.code != 1 || !strings.Contains(r.stderr, "--gossip-key-file") {
		t.Errorf("bind from the environment: exit %d stderr %q", r.code, r.stderr)
	}
}

func TestAgentNonLoopbackBindWithAKeyOrTheOverride(t *testing.T) {
	key := writeFile(t, "key", runCmd(t, nil, "keygen").stdout)
	c, err := resolveAgent(t, nil, "--bind", "0.0.0.0:7946", "--advertise", "10.1.2.3", "--gossip-key-file", key)
	if err != nil || c.insecureGossip {
		t.Fatalf("with a key: insecure %v, err %v", c != nil && c.insecureGossip, err)
	}
	c, err = resolveAgent(t, nil, "--bind", "0.0.0.0:7946", "--advertise", "10.1.2.3", "--insecure-gossip")
	if err != nil || !c.insecureGossip {
		t.Fatalf("with --insecure-gossip: err %v", err)
	}
	c, err = resolveAgent(t, map[string]string{envGossipKey: strings.TrimSpace(runCmd(t, nil, "keygen").stdout)},
		"--bind", "0.0.0.0:7946", "--advertise", "10.1.2.3")
	if err != nil || c.insecureGossip {
		t.Fatalf("with %s: err %v", envGossipKey, err)
	}
	c, err = resolveAgent(t, map[string]string{"HEADCOUNT_INSECURE_GOSSIP": "true"}, "--bind", "0.0.0.0:7946", "--advertise", "10.1.2.3")
	if err != nil || !c.insecureGossip {
		t.Fatalf("with HEADCOUNT_INSECURE_GOSSIP: err %v", err)
	}
}

func TestAgentLoopbackBindNeedsNoKey(t *testing.T) {
	for _, bind := range []string{"127.0.0.1:7946", "127.0.0.2:7946", "[::1]:7946", "localhost:7946"} {
		c, err := resolveAgent(t, nil, "--bind", bind)
		if err != nil || c.insecureGossip {
			t.Errorf("--bind %s: err %v", bind, err)
		}
	}
}

// TestDemoTokenKeyIsNotTheJWTKey pins issue 10: --demo-tokens signed with the
// real JWT key, so a demo token was valid on every node.
func TestDemoTokenKeyIsNotTheJWTKey(t *testing.T) {
	secret := []byte("jwt-secret-0123456789")
	k := demoTokenKey(secret)
	if len(k) != 32 || bytes.Equal(k, secret) || !bytes.Equal(k, demoTokenKey(secret)) {
		t.Fatalf("derived key %x: want 32 bytes, stable, not the JWT key", k)
	}
	if r1, r2 := demoTokenKey(nil), demoTokenKey(nil); len(r1) != 32 || bytes.Equal(r1, r2) {
		t.Fatalf("without a JWT key: %x %x, want two random keys", r1, r2)
	}
}

// TestAgentAdminHTTP pins issue 10: with --admin-http, /metrics, /v1/members and pprof are
// served there and no longer on --http.
func TestAgentAdminHTTP(t *testing.T) {
	_, stderr, sig, exit := background(t, context.Background(), "agent", "--name", "solo",
		"--bind", "127.0.0.1:0", "--http", "127.0.0.1:0", "--admin-http", "127.0.0.1:0", "--profile", "local", "--log-format", "json")
	u := waitStarted(t, stderr, exit)
	base, admin := u.http, u.admin
	if admin == "" {
		t.Fatalf("no admin log line: %s", stderr.String())
	}
	for _, path := range []string{"/metrics", "/v1/members", "/debug/pprof/"} {
		if code, _ := httpGet(t, base+path); code == http.StatusOK {
			t.Errorf("%s is still served on --http", path)
		}
		if code, body := httpGet(t, admin+path); code != http.StatusOK {
			t.Errorf("%s on --admin-http: %d %s", path, code, body)
		}
	}
	if code, body := httpGet(t, admin+"/metrics"); !strings.Contains(body, "headcount_http_connections") {
		t.Errorf("/metrics (%d) lacks headcount_http_connections", code)
	}
	for _, path := range []string{"/healthz", "/readyz", "/v1/topics/lobby", "/"} {
		if code, _ := httpGet(t, base+path); code != http.StatusOK {
			t.Errorf("%s on --http: %d", path, code)
		}
	}
	sig <- syscall.SIGTERM
	waitExit(t, "agent after SIGTERM", exit, stderr)
}

func TestAgentHTTPGuardFlags(t *testing.T) {
	c, err := resolveAgent(t, nil, "--max-http-conns", "5", "--max-http-conns-per-ip", "2",
		"--http-read-timeout", "3s", "--http-write-timeout", "4s", "--http-idle-timeout", "5s")
	if err != nil {
		t.Fatal(err)
	}
	g := c.httpGuard
	if g.MaxConns != 5 || g.MaxConnsPerIP != 2 || g.ReadTimeout != 3*time.Second || g.ReadHeaderTimeout != 3*time.Second ||
		g.WriteTimeout != 4*time.Second || g.IdleTimeout != 5*time.Second {
		t.Fatalf("guard = %+v", g)
	}
	c, err = resolveAgent(t, nil, "--max-presences", "7", "--max-topics", "0")
	if err != nil || c.maxPresences != 7 || c.maxTopics != 0 {
		t.Fatalf("caps: %+v %v", c, err)
	}
	for _, args := range [][]string{{"--http-read-timeout", "0s"}, {"--max-http-conns", "-1"}, {"--admin-http", "x:y"}, {"--max-topics", "-1"}} {
		r := runCmd(t, nil, append([]string{"agent"}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, strings.TrimPrefix(args[0], "")) {
			t.Errorf("%q: exit %d stderr %q", args, r.code, r.stderr)
		}
	}
}

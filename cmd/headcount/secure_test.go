package main

import (
	"bytes"
	"strings"
	"testing"
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

package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
)

// resolveAgent parses and resolves agent flags.
func resolveAgent(t *testing.T, environ map[string]string, args ...string) (*agentConfig, error) {
	t.Helper()
	a, err := parseAgent(t, environ, args...)
	if err != nil {
		return nil, err
	}
	return a.resolve()
}

func TestAgentDefaultsWorkOnOneMachine(t *testing.T) {
	c, err := resolveAgent(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.Hostname()
	if want == "" {
		want = "headcount"
	}
	if c.name != want {
		t.Errorf("name = %q, want the host name %q", c.name, want)
	}
	if c.bind.String() != "127.0.0.1:7946" || c.advertise.String() != "127.0.0.1:7946" {
		t.Errorf("bind %s advertise %s", c.bind, c.advertise)
	}
	if c.http.String() != "127.0.0.1:4000" || c.profile != "lan" || len(c.join) != 0 {
		t.Errorf("http %s profile %s join %q", c.http, c.profile, c.join)
	}
	if c.jwtSecret != nil || c.gossipKeys != nil || c.demoTokens {
		t.Errorf("secrets or demo tokens on by default")
	}
}

func TestAgentDefaultNameCarriesANonDefaultPort(t *testing.T) {
	c, err := resolveAgent(t, nil, "--bind", "127.0.0.1:7950")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(c.name, "-7950") {
		t.Fatalf("name = %q, want a -7950 suffix", c.name)
	}
}

func TestAgentUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bind", "nonsense"}, "--bind"},
		{[]string{"--bind", "127.0.0.1:99999"}, "--bind"},
		{[]string{"--http", "127.0.0.1:x"}, "--http"},
		{[]string{"--profile", "wan"}, "--profile"},
		{[]string{"--shutdown-timeout", "0s"}, "--shutdown-timeout"},
		{[]string{"--pprof", "localhost"}, "--pprof"},
		{[]string{"--advertise", "0.0.0.0"}, "--advertise"},
		{[]string{"--advertise", "127.0.0.1:0"}, "--advertise"},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--max-conns", "-1"}, "--max-conns"},
		{[]string{"--coalesce-window", "0s"}, "--coalesce-window"},
		{[]string{"extra-argument"}, "unexpected argument"},
	} {
		r := runCmd(t, nil, append([]string{"agent"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: exit %d stderr %q, want exit 2 and one line naming %s", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

func TestAgentAdvertiseForms(t *testing.T) {
	for _, tc := range []struct{ flag, want string }{
		{"10.1.2.3", "10.1.2.3:7946"},
		{"10.1.2.3:9000", "10.1.2.3:9000"},
		{"::1", "[::1]:7946"},
		{"[::1]:9000", "[::1]:9000"},
		{"localhost", "127.0.0.1:7946"},
	} {
		c, err := resolveAgent(t, nil, "--advertise", tc.flag)
		if err != nil {
			t.Errorf("%s: %v", tc.flag, err)
			continue
		}
		got := c.advertise.String()
		if tc.flag == "localhost" && got == "[::1]:7946" {
			got = "127.0.0.1:7946" // either loopback is right for a name
		}
		if got != tc.want {
			t.Errorf("--advertise %s: got %s, want %s", tc.flag, got, tc.want)
		}
	}
}

func TestAgentBindEveryInterfaceAdvertisesAnInterfaceAddress(t *testing.T) {
	c, err := resolveAgent(t, nil, "--bind", "0.0.0.0:7946", "--insecure-gossip")
	if _, ipErr := advertiseIP(); ipErr != nil {
		// A machine with only loopback: the error must tell what to set.
		if err == nil || !strings.Contains(err.Error(), "--advertise") {
			t.Fatalf("no interface address: err = %v, want one naming --advertise", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP(c.advertise.host)
	if ip == nil || ip.IsLoopback() || ip.IsUnspecified() {
		t.Fatalf("advertise = %s, want an interface address", c.advertise)
	}
}

func TestHTTPAdvertise(t *testing.T) {
	c := &agentConfig{advertise: hostPort{host: "10.0.0.7", port: 7946}}
	for listen, want := range map[string]string{
		"127.0.0.1:4000": "127.0.0.1:4000",
		"0.0.0.0:4000":   "10.0.0.7:4000",
		"[::]:4000":      "10.0.0.7:4000",
	} {
		addr, err := net.ResolveTCPAddr("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.httpAdvertise(addr); got != want {
			t.Errorf("httpAdvertise(%s) = %s, want %s", listen, got, want)
		}
	}
}

func TestJWTSecretFileIsTrimmed(t *testing.T) {
	const secret = "s3cret-s3cret-s3cret-s3cret-s3cret"
	p := writeFile(t, "jwt", "  "+secret+" \n\n")
	c, err := resolveAgent(t, nil, "--jwt-secret-file", p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.jwtSecret, []byte(secret)) {
		t.Fatalf("secret = %q", c.jwtSecret)
	}
	c, err = resolveAgent(t, map[string]string{"HEADCOUNT_JWT_SECRET_FILE": p})
	if err != nil || !bytes.Equal(c.jwtSecret, []byte(secret)) {
		t.Fatalf("from env: %q, %v", c.jwtSecret, err)
	}
}

func TestKeyFileErrorsAreOneLine(t *testing.T) {
	empty := writeFile(t, "empty", " \n")
	badKey := writeFile(t, "bad", "bm90IGEga2V5\n") // "not a key": 9 bytes
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--jwt-secret-file", "/nonexistent/jwt"}, "--jwt-secret-file"},
		{[]string{"--jwt-secret-file", empty}, "empty"},
		{[]string{"--gossip-key-file", "/nonexistent/key"}, "--gossip-key-file"},
		{[]string{"--gossip-key-file", badKey}, "--gossip-key-file"},
		{[]string{"--gossip-key-file", empty}, "no key"},
	} {
		r := runCmd(t, nil, append([]string{"agent"}, tc.args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: exit %d stderr %q, want exit 1 and one line with %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

func TestGossipKeyFileFromKeygen(t *testing.T) {
	k1 := runCmd(t, nil, "keygen").stdout
	k2 := runCmd(t, nil, "keygen").stdout
	p := writeFile(t, "keys", "# primary\n"+k1+"\n# previous, still accepted\n"+k2)
	c, err := resolveAgent(t, nil, "--gossip-key-file", p)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.gossipKeys) != 2 || len(c.gossipKeys[0]) != 32 || bytes.Equal(c.gossipKeys[0], c.gossipKeys[1]) {
		t.Fatalf("keys = %x", c.gossipKeys)
	}
}

func TestUsageErrorUnwraps(t *testing.T) {
	inner := errors.New("x")
	if !errors.Is(usageError{inner}, inner) {
		t.Fatal("usageError does not unwrap")
	}
}

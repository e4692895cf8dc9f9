package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func sign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func getWithToken(t *testing.T, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestAgentIdentityFlags runs an agent with the identity and access flags and checks the
// HTTP read guard, then rotates --jwt-secret-file and sends SIGHUP: the new key verifies at
// once and the retired one no longer does.
func TestAgentIdentityFlags(t *testing.T) {
	keyA, keyB := strings.Repeat("a", 32), strings.Repeat("b", 32)
	secretFile := writeFile(t, "jwt", keyA+"\n")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := writeFile(t, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))

	stderr := &lockedBuffer{}
	sig, reload, exit := make(chan os.Signal, 1), make(chan os.Signal, 1), make(chan int, 1)
	setEnv(t, nil)
	e := &env{stdout: &lockedBuffer{}, stderr: stderr, signals: sig, reload: reload}
	go func() {
		exit <- run(context.Background(), e, []string{"agent", "--name", "auth", "--bind", "127.0.0.1:0", "--http", "127.0.0.1:0",
			"--profile", "local", "--log-format", "json", "--jwt-secret-file", secretFile, "--jwt-public-key-file", pemFile,
			"--jwt-issuer", "https://idp.example/", "--jwt-require-exp", "--public-topics", "video:*,lobby"})
	}()
	base := waitStarted(t, stderr, exit).http
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "u", "iss": "https://idp.example/", "exp": time.Now().Add(time.Hour).Unix(), "topics": []string{"room:*"}}
	}
	tokA := sign(t, jwt.SigningMethodHS256, []byte(keyA), claims())
	tokB := sign(t, jwt.SigningMethodHS512, []byte(keyB), claims())
	tokRSA := sign(t, jwt.SigningMethodRS256, rsaKey, claims())
	noExp := claims()
	delete(noExp, "exp")
	otherIss := claims()
	otherIss["iss"] = "https://evil.example/"

	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/v1/topics/video:1", "", 200},
		{"/v1/topics/lobby", "", 200},
		{"/v1/topics/room:1", "", 403},
		{"/v1/topics/room:1", tokA, 200},
		{"/v1/topics/room:1", tokRSA, 200},
		{"/v1/topics/video:1", tokA, 403}, // the claim replaces the public topics
		{"/v1/topics/room:1", tokB, 403},
		{"/v1/topics/room:1", sign(t, jwt.SigningMethodHS256, []byte(keyA), noExp), 403},
		{"/v1/topics/room:1", sign(t, jwt.SigningMethodHS256, []byte(keyA), otherIss), 403},
	} {
		if got := getWithToken(t, base+tc.path, tc.token); got != tc.want {
			t.Errorf("GET %s with token %.12q = %d, want %d", tc.path, tc.token, got, tc.want)
		}
	}

	// Rotation: B replaces A in the file; SIGHUP.
	if err := os.WriteFile(secretFile, []byte(keyB+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- syscall.SIGHUP
	waitFor(t, "the reload", func() bool { return strings.Contains(stderr.String(), "JWT keys reloaded") })
	if got := getWithToken(t, base+"/v1/topics/room:1", tokB); got != 200 {
		t.Errorf("new key after reload: %d", got)
	}
	if got := getWithToken(t, base+"/v1/topics/room:1", tokA); got != 403 {
		t.Errorf("retired key after reload: %d", got)
	}
	if got := getWithToken(t, base+"/v1/topics/room:1", tokRSA); got != 200 {
		t.Errorf("PEM key after reload: %d", got)
	}
	// A broken file keeps the keys in use.
	if err := os.WriteFile(secretFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reload <- syscall.SIGHUP
	waitFor(t, "the failed reload", func() bool { return strings.Contains(stderr.String(), "JWT keys not reloaded") })
	if got := getWithToken(t, base+"/v1/topics/room:1", tokB); got != 200 {
		t.Errorf("keys after a failed reload: %d", got)
	}

	sig <- syscall.SIGTERM
	waitExit(t, "agent", exit, stderr)
}

func TestIdentityFlagErrors(t *testing.T) {
	pemFile := writeFile(t, "priv.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
	badJWKS := writeFile(t, "jwks.json", `{"keys":[]}`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--jwt-public-key-file", pemFile}, "--jwt-public-key-file " + pemFile + ": wsgateway: invalid key: PEM block 1 is \"PRIVATE KEY\""},
		{[]string{"--jwt-public-key-file", "/nonexistent/key.pem"}, "--jwt-public-key-file: open /nonexistent/key.pem"},
		{[]string{"--jwks-file", badJWKS}, "--jwks-file " + badJWKS + ": wsgateway: invalid key: JWKS has no signature verification key"},
		{[]string{"--jwks-url", "ftp://idp.example/jwks"}, "--jwks-url \"ftp://idp.example/jwks\": want an http:// or https:// URL with a host"},
		{[]string{"--jwt-leeway", "-1s"}, "--jwt-leeway must be 0 or more"},
	} {
		_, err := resolveAgent(t, nil, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: got %v, want one line with %q", tc.args, err, tc.want)
		}
	}
}

func TestIdentityFlagsResolve(t *testing.T) {
	long := func(b string) string { return strings.Repeat(b, 32) }
	secretFile := writeFile(t, "jwt", "\n"+long("x")+"\n  "+long("y")+"  \n\n")
	c, err := resolveAgent(t, nil, "--jwt-secret-file", secretFile, "--public-topics", " video:* , lobby,,",
		"--jwt-leeway", "5s", "--jwks-url", "https://idp.example/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.auth.keys.HMAC) != 2 || string(c.auth.keys.HMAC[1]) != long("y") || string(c.jwtSecret) != long("x") {
		t.Fatalf("keys %q, first %q", c.auth.keys.HMAC, c.jwtSecret)
	}
	if strings.Join(c.auth.publicTopics, "|") != "video:*|lobby" || c.auth.leeway != 5*time.Second || c.auth.jwksURL == "" {
		t.Fatalf("auth config %+v", c.auth)
	}
	c, err = resolveAgent(t, nil)
	if err != nil || strings.Join(c.auth.publicTopics, "|") != "*" {
		t.Fatalf("default public topics %q, %v", c.auth.publicTopics, err)
	}
	c, err = resolveAgent(t, nil, "--public-topics", "")
	if err != nil || c.auth.publicTopics == nil || len(c.auth.publicTopics) != 0 {
		t.Fatalf("--public-topics '' = %q, %v (want none)", c.auth.publicTopics, err)
	}
	// Every line of the secret file must be long enough.
	short := writeFile(t, "short", long("x")+"\nshort\n")
	if _, err := resolveAgent(t, nil, "--jwt-secret-file", short); err == nil || !strings.Contains(err.Error(), "key 2 is 5 bytes") {
		t.Fatalf("short second key: %v", err)
	}
}

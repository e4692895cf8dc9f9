package wsgateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// testKeys are signing keys made once per test binary (RSA key generation is slow under the
// race detector).
type testKeyPair struct {
	rsa, rsa2        *rsa.PrivateKey
	p256, p384, p521 *ecdsa.PrivateKey
	ed               ed25519.PrivateKey
}

var (
	keysOnce sync.Once
	keysVal  testKeyPair
)

func testKeys(t testing.TB) *testKeyPair {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		k := &keysVal
		k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		k.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		require.NoError(t, err)
		k.p521, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
		require.NoError(t, err)
		_, k.ed, err = ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
	})
	return &keysVal
}

// pemOf encodes a public key as a PKIX "PUBLIC KEY" block.
func pemOf(t testing.TB, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// jwksOf encodes public keys as a JSON Web Key Set; kids[i] (and algs[i] when given) name key i.
func jwksOf(t testing.TB, keys []crypto.PublicKey, kids []string, algs ...string) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for i, k := range keys {
		meta := jwkset.JWKMetadataOptions{KID: kids[i], USE: jwkset.UseSig}
		if i < len(algs) {
			meta.ALG = jwkset.ALG(algs[i])
		}
		j, err := jwkset.NewJWKFromKey(k, jwkset.JWKOptions{Metadata: meta})
		require.NoError(t, err)
		set.Keys = append(set.Keys, j.Marshal())
	}
	b, err := json.Marshal(set)
	require.NoError(t, err)
	return b
}

// signWith signs claims with method and key, with header kid when not "".
func signWith(t testing.TB, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

// fakeClock is a Clock that moves only when told; due AfterFunc calls run inside Advance, in
// the order they are due.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]struct{}
}

type fakeTimer struct {
	at time.Time
	f  func()
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now().Truncate(time.Second), timers: make(map[*fakeTimer]struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	tm := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers[tm] = struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.timers[tm]
		delete(c.timers, tm)
		return ok
	}
}

// pending returns the number of timers not yet fired or stopped.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Advance moves the clock by d and runs the calls that became due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for tm := range c.timers {
		if !tm.at.After(c.now) {
			due = append(due, tm)
			delete(c.timers, tm)
		}
	}
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, tm := range due {
		tm.f()
	}
}

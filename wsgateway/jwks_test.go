package wsgateway

import (
	"bytes"
	"crypto"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// jwksServer is an identity provider's jwks_uri: it serves whatever set it holds, or 500
// while it is down, and counts the requests.
type jwksServer struct {
	srv      *httptest.Server
	mu       sync.Mutex
	body     []byte
	down     bool
	requests atomic.Int64
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	s := &jwksServer{body: body}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		body, down := s.body, s.down
		s.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksServer) set(body []byte, down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.down = body, down
}

// TestJWKSURLUnknownKid: a token signed with a key the provider has just published verifies
// at once (the unknown kid fetches the set again); made-up kids fetch at most once per
// JWKSRefreshMinInterval.
func TestJWKSURLUnknownKid(t *testing.T) {
	k := testKeys(t)
	idp := newJWKSServer(t, jwksOf(t, []crypto.PublicKey{&k.rsa.PublicKey}, []string{"k1"}))
	a := newJWT(t, JWTConfig{JWKSURL: idp.srv.URL, JWKSRefreshInterval: time.Hour, JWKSRefreshMinInterval: time.Hour})
	require.EqualValues(t, 1, idp.requests.Load(), "the set is fetched once at start")
	claims := jwt.MapClaims{"sub": "alice"}

	id, err := a.Authenticate(nil, signWith(t, jwt.SigningMethodRS256, k.rsa, "k1", claims))
	require.NoError(t, err)
	require.Equal(t, "alice", id.User)
	require.EqualValues(t, 1, idp.requests.Load(), "a known kid is served from the cache")

	// Rotation: the provider adds k2 and signs with it.
	idp.set(jwksOf(t, []crypto.PublicKey{&k.rsa.PublicKey, &k.rsa2.PublicKey}, []string{"k1", "k2"}), false)
	_, err = a.Authenticate(nil, signWith(t, jwt.SigningMethodRS256, k.rsa2, "k2", claims))
	require.NoError(t, err)
	require.EqualValues(t, 2, idp.requests.Load())

	// Made-up kids: refused, and no more fetches within the minimum interval.
	for _, kid := range []string{"x1", "x2", "x3"} {
		_, err = a.Authenticate(nil, signWith(t, jwt.SigningMethodRS256, k.rsa2, kid, claims))
		require.ErrorIs(t, err, ErrUnauthorized)
	}
	require.EqualValues(t, 2, idp.requests.Load())
	// The rotated-in key keeps verifying from the cache.
	_, err = a.Authenticate(nil, signWith(t, jwt.SigningMethodRS256, k.rsa2, "k2", claims))
	require.NoError(t, err)
}

// TestJWKSURLRefreshAndOutage: the set is refreshed on its interval (a key the provider
// dropped stops verifying); while the provider fails, the last good set is kept.
func TestJWKSURLRefreshAndOutage(t *testing.T) {
	k := testKeys(t)
	idp := newJWKSServer(t, jwksOf(t, []crypto.PublicKey{&k.p256.PublicKey, &k.rsa.PublicKey}, []string{"e1", "r1"}))
	var fetchErrors atomic.Int64
	a := newJWT(t, JWTConfig{
		JWKSURL: idp.srv.URL, JWKSRefreshInterval: 10 * time.Millisecond, JWKSRefreshMinInterval: time.Hour,
		OnJWKSError: func(error) { fetchErrors.Add(1) },
	})
	claims := jwt.MapClaims{"sub": "alice"}
	tokE1 := signWith(t, jwt.SigningMethodES256, k.p256, "e1", claims)
	tokR1 := signWith(t, jwt.SigningMethodRS256, k.rsa, "r1", claims)
	for _, tok := range []string{tokE1, tokR1} {
		_, err := a.Authenticate(nil, tok)
		require.NoError(t, err)
	}

	// Outage: fetches fail, both keys keep verifying.
	idp.set(nil, true)
	before := idp.requests.Load()
	require.Eventually(t, func() bool { return idp.requests.Load() >= before+3 && fetchErrors.Load() >= 3 }, waitFor, 5*time.Millisecond, "three failed fetches")
	for _, tok := range []string{tokE1, tokR1} {
		_, err := a.Authenticate(nil, tok)
		require.NoError(t, err, "the last good set is kept while the provider is down")
	}

	// Garbage is a failure too, not an empty set.
	idp.set([]byte("<html>oops</html>"), false)
	errs := fetchErrors.Load()
	require.Eventually(t, func() bool { return fetchErrors.Load() >= errs+2 }, waitFor, 5*time.Millisecond, "failed fetches of garbage")
	_, err := a.Authenticate(nil, tokR1)
	require.NoError(t, err)

	// A body over maxJWKSBytes is a failure too, even a valid one (here without r1).
	small := jwksOf(t, []crypto.PublicKey{&k.p256.PublicKey}, []string{"e1"})
	prefix := []byte(`{"keys":`)
	require.True(t, bytes.HasPrefix(small, prefix))
	huge := append(append(append([]byte{}, prefix...), bytes.Repeat([]byte(" "), maxJWKSBytes)...), small[len(prefix):]...)
	idp.set(huge, false)
	errs = fetchErrors.Load()
	require.Eventually(t, func() bool { return fetchErrors.Load() >= errs+2 }, waitFor, 5*time.Millisecond, "failed fetches of a huge body")
	_, err = a.Authenticate(nil, tokR1)
	require.NoError(t, err)

	// Back with r1 revoked: the interval refresh drops it (no kid lookup needed).
	idp.set(jwksOf(t, []crypto.PublicKey{&k.p256.PublicKey}, []string{"e1"}), false)
	require.Eventually(t, func() bool {
		_, err := a.Authenticate(nil, tokR1)
		return err != nil
	}, waitFor, 5*time.Millisecond, "the revoked key to stop verifying")
	_, err = a.Authenticate(nil, tokE1)
	require.NoError(t, err)
}

// TestJWKSURLDownAtStart: a provider that is down when the node starts does not stop it;
// tokens verify once a fetch succeeds.
func TestJWKSURLDownAtStart(t *testing.T) {
	k := testKeys(t)
	idp := newJWKSServer(t, nil)
	idp.set(nil, true)
	a := newJWT(t, JWTConfig{JWKSURL: idp.srv.URL, JWKSRefreshInterval: time.Hour, JWKSRefreshMinInterval: time.Millisecond})
	tok := signWith(t, jwt.SigningMethodEdDSA, k.ed, "ed", jwt.MapClaims{"sub": "a"})
	_, err := a.Authenticate(nil, tok)
	require.ErrorIs(t, err, ErrUnauthorized)
	idp.set(jwksOf(t, []crypto.PublicKey{k.ed.Public()}, []string{"ed"}), false)
	require.Eventually(t, func() bool { // the unknown kid fetches again once the limiter allows
		_, err := a.Authenticate(nil, tok)
		return err == nil
	}, waitFor, 5*time.Millisecond, "the token to verify after the provider is back")
}

func TestJWKSURLInvalid(t *testing.T) {
	for _, u := range []string{"ftp://x/jwks", "not a url", "/relative"} {
		_, err := NewJWTAuthenticator(JWTConfig{JWKSURL: u})
		require.ErrorIs(t, err, ErrInvalidConfig, u)
	}
}

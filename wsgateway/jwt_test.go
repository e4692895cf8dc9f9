package wsgateway

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func newJWT(t *testing.T, cfg JWTConfig) *JWTAuthenticator {
	t.Helper()
	a, err := NewJWTAuthenticator(cfg)
	require.NoError(t, err)
	t.Cleanup(a.Close)
	return a
}

// TestJWTAlgorithms signs a token with every supported algorithm and checks that it verifies
// with its key read from PEM (or the secret file format), and with no key of another type.
func TestJWTAlgorithms(t *testing.T) {
	k := testKeys(t)
	claims := func() jwt.MapClaims { return jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()} }
	secret := []byte("a-long-enough-hmac-secret-for-tests")
	cases := []struct {
		method jwt.SigningMethod
		sign   any
		verify crypto.PublicKey // nil: the HMAC secret
	}{
		{jwt.SigningMethodHS256, secret, nil},
		{jwt.SigningMethodHS384, secret, nil},
		{jwt.SigningMethodHS512, secret, nil},
		{jwt.SigningMethodRS256, k.rsa, &k.rsa.PublicKey},
		{jwt.SigningMethodRS384, k.rsa, &k.rsa.PublicKey},
		{jwt.SigningMethodRS512, k.rsa, &k.rsa.PublicKey},
		{jwt.SigningMethodPS256, k.rsa, &k.rsa.PublicKey},
		{jwt.SigningMethodPS384, k.rsa, &k.rsa.PublicKey},
		{jwt.SigningMethodPS512, k.rsa, &k.rsa.PublicKey},
		{jwt.SigningMethodES256, k.p256, &k.p256.PublicKey},
		{jwt.SigningMethodES384, k.p384, &k.p384.PublicKey},
		{jwt.SigningMethodES512, k.p521, &k.p521.PublicKey},
		{jwt.SigningMethodEdDSA, k.ed, k.ed.Public()},
	}
	// every key of every type, so that each case also proves the other types are not tried
	var allPublic []crypto.PublicKey
	for _, c := range cases {
		if c.verify != nil {
			allPublic = append(allPublic, c.verify)
		}
	}
	for _, c := range cases {
		t.Run(c.method.Alg(), func(t *testing.T) {
			tok := signWith(t, c.method, c.sign, "", claims())
			var keys Keys
			if c.verify == nil {
				hmac, err := ParseHMACKeys(append([]byte("old-secret\n\n  "), append(secret, '\n')...))
				require.NoError(t, err)
				keys.HMAC = hmac
			} else {
				pub, err := ParsePublicKeysPEM(pemOf(t, c.verify))
				require.NoError(t, err)
				keys.Public = pub
			}
			id, err := newJWT(t, JWTConfig{Keys: keys}).Authenticate(nil, tok)
			require.NoError(t, err)
			require.Equal(t, "alice", id.User)

			// Every other key, but not this one: refused.
			var others Keys
			for _, p := range allPublic {
				if !p.(interface{ Equal(crypto.PublicKey) bool }).Equal(c.verify) {
					others.Public = append(others.Public, p)
				}
			}
			if c.verify != nil {
				others.HMAC = [][]byte{secret}
			}
			_, err = newJWT(t, JWTConfig{Keys: others}).Authenticate(nil, tok)
			require.ErrorIs(t, err, ErrUnauthorized)
		})
	}
}

// TestJWTAlgorithmConfusion: a token "signed" with HS256 using the RSA public key's PEM as
// the HMAC secret must not verify against that RSA key; "none" never verifies.
func TestJWTAlgorithmConfusion(t *testing.T) {
	k := testKeys(t)
	pemBytes := pemOf(t, &k.rsa.PublicKey)
	a := newJWT(t, JWTConfig{Keys: Keys{Public: []crypto.PublicKey{&k.rsa.PublicKey}}})
	claims := jwt.MapClaims{"sub": "mallory"}
	_, err := a.Authenticate(nil, signWith(t, jwt.SigningMethodHS256, pemBytes, "", claims))
	require.ErrorIs(t, err, ErrUnauthorized)
	none := signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", claims)
	_, err = a.Authenticate(nil, none)
	require.ErrorIs(t, err, ErrUnauthorized)
	// An ES256 token checked against a P-384 key (the right type, the wrong curve).
	b := newJWT(t, JWTConfig{Keys: Keys{Public: []crypto.PublicKey{&k.p384.PublicKey}}})
	_, err = b.Authenticate(nil, signWith(t, jwt.SigningMethodES256, k.p256, "", claims))
	require.ErrorIs(t, err, ErrUnauthorized)
}

func TestJWTClaims(t *testing.T) {
	clk := newFakeClock()
	now := clk.Now()
	secret := []byte("claims-secret")
	sign := func(c jwt.MapClaims) string { return signWith(t, jwt.SigningMethodHS256, secret, "", c) }
	base := JWTConfig{Keys: Keys{HMAC: [][]byte{secret}}, Clock: clk}
	cases := []struct {
		name   string
		cfg    func(*JWTConfig)
		claims jwt.MapClaims
		ok     bool
	}{
		{name: "no exp is fine by default", claims: jwt.MapClaims{"sub": "a"}, ok: true},
		{name: "no exp refused with RequireExp", cfg: func(c *JWTConfig) { c.RequireExp = true }, claims: jwt.MapClaims{"sub": "a"}},
		{name: "exp with RequireExp", cfg: func(c *JWTConfig) { c.RequireExp = true }, claims: jwt.MapClaims{"sub": "a", "exp": now.Add(time.Minute).Unix()}, ok: true},
		{name: "expired", claims: jwt.MapClaims{"sub": "a", "exp": now.Add(-time.Second).Unix()}},
		{name: "expired within the leeway", cfg: func(c *JWTConfig) { c.Leeway = 5 * time.Second }, claims: jwt.MapClaims{"sub": "a", "exp": now.Add(-time.Second).Unix()}, ok: true},
		{name: "iat in the future", claims: jwt.MapClaims{"sub": "a", "iat": now.Add(time.Minute).Unix()}},
		{name: "iat in the future within the leeway", cfg: func(c *JWTConfig) { c.Leeway = time.Minute }, claims: jwt.MapClaims{"sub": "a", "iat": now.Add(30 * time.Second).Unix()}, ok: true},
		{name: "iat in the past", claims: jwt.MapClaims{"sub": "a", "iat": now.Add(-time.Minute).Unix()}, ok: true},
		{name: "nbf in the future", claims: jwt.MapClaims{"sub": "a", "nbf": now.Add(time.Minute).Unix()}},
		{name: "issuer", cfg: func(c *JWTConfig) { c.Issuer = "https://idp.example/" }, claims: jwt.MapClaims{"sub": "a", "iss": "https://idp.example/"}, ok: true},
		{name: "wrong issuer", cfg: func(c *JWTConfig) { c.Issuer = "https://idp.example/" }, claims: jwt.MapClaims{"sub": "a", "iss": "https://other.example/"}},
		{name: "missing issuer", cfg: func(c *JWTConfig) { c.Issuer = "https://idp.example/" }, claims: jwt.MapClaims{"sub": "a"}},
		{name: "audience among several", cfg: func(c *JWTConfig) { c.Audience = "headcount" }, claims: jwt.MapClaims{"sub": "a", "aud": []string{"api", "headcount"}}, ok: true},
		{name: "wrong audience", cfg: func(c *JWTConfig) { c.Audience = "headcount" }, claims: jwt.MapClaims{"sub": "a", "aud": "api"}},
		{name: "topics must be a list of strings", claims: jwt.MapClaims{"sub": "a", "topics": "room:*"}},
		{name: "topics list too long", claims: jwt.MapClaims{"sub": "a", "topics": make([]string, maxTokenTopics+1)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			id, err := newJWT(t, cfg).Authenticate(nil, sign(tc.claims))
			if !tc.ok {
				require.ErrorIs(t, err, ErrUnauthorized)
				return
			}
			require.NoError(t, err)
			require.Equal(t, "a", id.User)
		})
	}
}

func TestJWTIdentity(t *testing.T) {
	clk := newFakeClock()
	secret := []byte("identity-secret")
	a := newJWT(t, JWTConfig{Keys: Keys{HMAC: [][]byte{secret}}, Clock: clk, Leeway: 3 * time.Second})
	exp := clk.Now().Add(time.Hour)
	id, err := a.Authenticate(nil, signWith(t, jwt.SigningMethodHS256, secret, "", jwt.MapClaims{
		"sub": "bob", "exp": exp.Unix(), "topics": []string{"room:1", "video:*"},
	}))
	require.NoError(t, err)
	require.Equal(t, Identity{User: "bob", Expires: exp.Add(3 * time.Second), Topics: []string{"room:1", "video:*"}}, id)

	id, err = a.Authenticate(nil, signWith(t, jwt.SigningMethodHS256, secret, "", jwt.MapClaims{"sub": "bob", "topics": []string{}}))
	require.NoError(t, err)
	require.NotNil(t, id.Topics, "an empty topics claim allows nothing, unlike no claim")
	require.Empty(t, id.Topics)

	id, err = a.Authenticate(nil, signWith(t, jwt.SigningMethodHS256, secret, "", jwt.MapClaims{"sub": "bob"}))
	require.NoError(t, err)
	require.Nil(t, id.Topics)
	require.True(t, id.Expires.IsZero())

	id, err = a.Authenticate(nil, "")
	require.NoError(t, err)
	require.Equal(t, Identity{}, id, "no token is anonymous")
}

// TestJWTSetKeys is the reload path: a rotated secret file replaces the keys at once.
func TestJWTSetKeys(t *testing.T) {
	a := newJWT(t, JWTConfig{Keys: Keys{HMAC: [][]byte{[]byte("one")}}})
	tokOne := signWith(t, jwt.SigningMethodHS256, []byte("one"), "", jwt.MapClaims{"sub": "a"})
	tokTwo := signWith(t, jwt.SigningMethodHS256, []byte("two"), "", jwt.MapClaims{"sub": "a"})
	_, err := a.Authenticate(nil, tokOne)
	require.NoError(t, err)
	_, err = a.Authenticate(nil, tokTwo)
	require.ErrorIs(t, err, ErrUnauthorized)

	keys, err := ParseHMACKeys([]byte("two\none\n"))
	require.NoError(t, err)
	a.SetKeys(Keys{HMAC: keys}) // rotation: both verify
	for _, tok := range []string{tokOne, tokTwo} {
		_, err = a.Authenticate(nil, tok)
		require.NoError(t, err)
	}
	a.SetKeys(Keys{HMAC: [][]byte{[]byte("two")}}) // the old one retired
	_, err = a.Authenticate(nil, tokOne)
	require.ErrorIs(t, err, ErrUnauthorized)

	a.SetKeys(Keys{}) // no key: every token refused, no token still anonymous
	_, err = a.Authenticate(nil, tokTwo)
	require.ErrorIs(t, err, ErrUnauthorized)
	_, err = a.Authenticate(nil, "")
	require.NoError(t, err)
}

// TestJWKSFileKid: with a key set, a token's kid selects the key, and the key's alg binds it.
func TestJWKSFileKid(t *testing.T) {
	k := testKeys(t)
	set, err := ParseJWKS(jwksOf(t, []crypto.PublicKey{&k.rsa.PublicKey, &k.rsa2.PublicKey, &k.p256.PublicKey}, []string{"r1", "r2", "e1"}, "RS256", "", ""))
	require.NoError(t, err)
	require.Len(t, set, 3)
	a := newJWT(t, JWTConfig{Keys: Keys{JWKS: set}})
	claims := jwt.MapClaims{"sub": "a"}
	for _, tc := range []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    string
		ok     bool
	}{
		{"kid r1", jwt.SigningMethodRS256, k.rsa, "r1", true},
		{"kid r2", jwt.SigningMethodRS512, k.rsa2, "r2", true},
		{"kid e1", jwt.SigningMethodES256, k.p256, "e1", true},
		{"no kid tries every key", jwt.SigningMethodRS256, k.rsa2, "", true},
		{"kid of another key", jwt.SigningMethodRS256, k.rsa, "r2", false},
		{"unknown kid", jwt.SigningMethodRS256, k.rsa, "r9", false},
		{"alg other than the key's", jwt.SigningMethodPS256, k.rsa, "r1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.Authenticate(nil, signWith(t, tc.method, tc.key, tc.kid, claims))
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrUnauthorized)
			}
		})
	}
}

func TestKeyParsers(t *testing.T) {
	k := testKeys(t)
	_, err := ParseHMACKeys([]byte(" \n\t\n"))
	require.ErrorIs(t, err, ErrInvalidKey)
	keys, err := ParseHMACKeys([]byte("  first  \r\nsecond"))
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("first"), []byte("second")}, keys)

	// Several blocks, every kind of public key.
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa2.PublicKey)})
	all := append(append(append(pemOf(t, &k.rsa.PublicKey), pemOf(t, &k.p256.PublicKey)...), pemOf(t, k.ed.Public())...), pkcs1...)
	pub, err := ParsePublicKeysPEM(all)
	require.NoError(t, err)
	require.Len(t, pub, 4)

	// A certificate's key.
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.p384.PublicKey, k.p384)
	require.NoError(t, err)
	pub, err = ParsePublicKeysPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	require.NoError(t, err)
	require.True(t, k.p384.PublicKey.Equal(pub[0]))

	// A private key is refused rather than used.
	priv, err := x509.MarshalPKCS8PrivateKey(k.p256)
	require.NoError(t, err)
	_, err = ParsePublicKeysPEM(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: priv}))
	require.ErrorIs(t, err, ErrInvalidKey)
	require.ErrorContains(t, err, "PRIVATE KEY")
	_, err = ParsePublicKeysPEM([]byte("not pem"))
	require.ErrorIs(t, err, ErrInvalidKey)
	_, err = ParsePublicKeysPEM(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("garbage")}))
	require.ErrorIs(t, err, ErrInvalidKey)

	// Key sets: encryption and symmetric keys are skipped; nothing usable is an error.
	_, err = ParseJWKS([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}`))
	require.ErrorIs(t, err, ErrInvalidKey)
	_, err = ParseJWKS([]byte(`{"keys":[]}`))
	require.ErrorIs(t, err, ErrInvalidKey)
	_, err = ParseJWKS([]byte(`not json`))
	require.ErrorIs(t, err, ErrInvalidKey)
	_, err = ParseJWKS([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"!!","kid":"bad"}]}`))
	require.ErrorIs(t, err, ErrInvalidKey)
	mixed := strings.Replace(string(jwksOf(t, []crypto.PublicKey{&k.rsa.PublicKey, &k.p256.PublicKey}, []string{"enc", "sig"})), `"use":"sig"`, `"use":"enc"`, 1)
	set, err := ParseJWKS([]byte(mixed))
	require.NoError(t, err)
	require.Len(t, set, 1)
	require.Equal(t, "sig", set[0].KID)
}

package wsgateway

import (
	"crypto/rand"
	"errors"
	"net/http"
	"time"
)

// demoIssuer is the `iss` of demo tokens.
const demoIssuer = "headcount-demo"

// demoAuth accepts the tokens of POST /v1/demo/token, signed with a key of their own, then
// falls back to the gateway's real authenticator. A node without Config.DemoTokens never
// builds one, so demo tokens are refused there.
type demoAuth struct {
	key  []byte
	demo *JWTAuthenticator
	next Authenticator
}

func newDemoAuth(key []byte, clock Clock, next Authenticator) (*demoAuth, error) {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key) // never fails on supported platforms
	}
	demo, err := NewJWTAuthenticator(JWTConfig{Keys: Keys{HMAC: [][]byte{key}}, Issuer: demoIssuer, Clock: clock})
	if err != nil {
		return nil, err
	}
	return &demoAuth{key: key, demo: demo, next: next}, nil
}

// Authenticate implements Authenticator.
func (a *demoAuth) Authenticate(r *http.Request, token string) (Identity, error) {
	id, err := a.next.Authenticate(r, token)
	if err == nil || !errors.Is(err, ErrUnauthorized) || token == "" {
		return id, err
	}
	if demoID, demoErr := a.demo.Authenticate(r, token); demoErr == nil {
		return demoID, nil
	}
	return Identity{}, err // the real authenticator's reason
}

func (a *demoAuth) mint(user string, ttl time.Duration, now time.Time) (string, error) {
	return MintToken(a.key, user, demoIssuer, "", ttl, now)
}

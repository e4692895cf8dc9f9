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
	demo JWTAuthenticator
	next Authenticator
}

func newDemoAuth(key []byte, next Authenticator) *demoAuth {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key) // never fails on supported platforms
	}
	return &demoAuth{demo: JWTAuthenticator{Secret: key, Issuer: demoIssuer}, next: next}
}

// Authenticate implements Authenticator.
func (a *demoAuth) Authenticate(r *http.Request, token string) (string, error) {
	user, err := a.next.Authenticate(r, token)
	if err == nil || !errors.Is(err, ErrUnauthorized) || token == "" {
		return user, err
	}
	if demoUser, demoErr := a.demo.Authenticate(r, token); demoErr == nil {
		return demoUser, nil
	}
	return "", err // the real authenticator's reason
}

func (a *demoAuth) mint(user string, ttl time.Duration, now time.Time) (string, error) {
	return MintToken(a.demo.Secret, user, demoIssuer, "", ttl, now)
}

package wsgateway

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Authenticator maps the token a socket presents to a user id. It is called concurrently, once
// per upgrade, from the HTTP handler goroutine, and may block briefly (it delays only that
// upgrade). token is "" when the socket presented none. It returns user "" for an anonymous
// socket, or an error (conventionally wrapping ErrUnauthorized) to refuse the socket with
// HTTP 403. It must not keep r after returning.
type Authenticator interface {
	Authenticate(r *http.Request, token string) (user string, err error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request, token string) (string, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(r *http.Request, token string) (string, error) {
	return f(r, token)
}

// JWTAuthenticator checks HS256 tokens: `sub` is the user id (empty = anonymous); a bad
// signature, another algorithm (including "none"), an expired or not-yet-valid token, or a
// wrong issuer or audience is refused. No token means anonymous.
type JWTAuthenticator struct {
	// Secret is the HMAC key. With an empty Secret every token is refused.
	Secret []byte
	// Issuer and Audience, when not empty, must match the token's `iss` and one of its `aud`.
	Issuer, Audience string
	// Leeway is the clock skew allowed for `exp`, `nbf` and `iat`.
	Leeway time.Duration
}

// Authenticate implements Authenticator.
func (a *JWTAuthenticator) Authenticate(_ *http.Request, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	if len(a.Secret) == 0 {
		return "", fmt.Errorf("%w: no key to verify tokens", ErrUnauthorized)
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithLeeway(a.Leeway)}
	if a.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(a.Issuer))
	}
	if a.Audience != "" {
		opts = append(opts, jwt.WithAudience(a.Audience))
	}
	var claims jwt.RegisteredClaims
	_, err := jwt.NewParser(opts...).ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) {
		return a.Secret, nil
	})
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return claims.Subject, nil
}

// MintToken returns an HS256 token for user valid for ttl, with the given issuer and audience
// when not empty. The demo endpoint and tests use it.
func MintToken(secret []byte, user, issuer, audience string, ttl time.Duration, now time.Time) (string, error) {
	claims := jwt.RegisteredClaims{
		Subject:   user,
		Issuer:    issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	if audience != "" {
		claims.Audience = jwt.ClaimStrings{audience}
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}

// subprotocolPrefix introduces the token in the phoenix client's authToken subprotocol.
const subprotocolPrefix = "base64url.bearer.phx."

// tokenOf extracts the socket's token: the `token` query parameter, or the authToken
// subprotocol (base64 without padding, standard or URL alphabet).
func tokenOf(r *http.Request, q url.Values) (string, error) {
	if t := q.Get("token"); t != "" {
		return t, nil
	}
	for _, header := range r.Header.Values("Sec-Websocket-Protocol") {
		for _, p := range strings.Split(header, ",") {
			p = strings.TrimSpace(p)
			enc, ok := strings.CutPrefix(p, subprotocolPrefix)
			if !ok {
				continue
			}
			enc = strings.TrimRight(enc, "=")
			for _, e := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
				if b, err := e.DecodeString(enc); err == nil {
					return string(b), nil
				}
			}
			return "", errors.New("wsgateway: undecodable authToken subprotocol")
		}
	}
	return "", nil
}

package wsgateway

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Identity is who a connection is, as its Authenticator found it. The gateway keeps it for
// the connection's lifetime and hands it to the Authorizer on every join and read.
type Identity struct {
	// User is the user id (a token's `sub`); "" is an anonymous connection.
	User string
	// Expires, when not zero, is when the identity ends: a socket still open then is closed
	// with code 4001, reason "token expired". The built-in JWT check sets it to the token's
	// `exp` plus the leeway.
	Expires time.Time
	// Topics are the topic patterns the connection may join and read (a token's `topics`
	// claim; see MatchTopic). Nil means the token has no such claim, so the public topics
	// apply; an empty, non-nil list allows no topic.
	Topics []string
	// Extra is whatever a custom Authenticator wants a custom Authorizer to see; the
	// built-in ones neither set nor read it.
	Extra any
}

// Authenticator maps the token a connection presents to an Identity. It is called
// concurrently, once per upgrade and once per HTTP read, from the HTTP handler goroutine,
// and may block briefly (it delays only that request). token is "" when the request
// presented none. It returns the zero Identity for an anonymous connection, or an error
// (conventionally wrapping ErrUnauthorized) to refuse the request with HTTP 403. It must not
// keep r after returning.
type Authenticator interface {
	Authenticate(r *http.Request, token string) (Identity, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request, token string) (Identity, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(r *http.Request, token string) (Identity, error) {
	return f(r, token)
}

// subprotocolPrefix introduces the token in the phoenix client's authToken subprotocol.
const subprotocolPrefix = "base64url.bearer.phx."

// errBadToken is returned for a token that cannot even be extracted from the request.
var errBadToken = errors.New("wsgateway: undecodable token")

// tokenOf extracts a socket's token: the `token` query parameter, the authToken subprotocol
// (base64 without padding, standard or URL alphabet), or an `Authorization: Bearer` header.
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
			return "", errBadToken
		}
	}
	return bearerToken(r), nil
}

// bearerToken returns the token of an `Authorization: Bearer` header, or "" (other schemes
// are left to whatever proxy uses them).
func bearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

package wsgateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWTConfig configures a JWTAuthenticator. The zero value, with keys added, is usable.
type JWTConfig struct {
	// Keys verify tokens; JWTAuthenticator.SetKeys replaces them while it runs.
	Keys Keys
	// JWKSURL, when not "", is a JSON Web Key Set fetched over HTTP(S) (an identity
	// provider's jwks_uri) whose keys verify tokens besides Keys. The set is cached,
	// refreshed every JWKSRefreshInterval and when a token names a `kid` it does not hold (at
	// most once per JWKSRefreshMinInterval); when a fetch fails, the last good set is kept.
	JWKSURL string
	// JWKSRefreshInterval is how often the set at JWKSURL is fetched again (0: 10 minutes).
	JWKSRefreshInterval time.Duration
	// JWKSRefreshMinInterval is the shortest time between two fetches for an unknown `kid`,
	// so that tokens with made-up key ids cannot flood the provider (0: 30 seconds).
	JWKSRefreshMinInterval time.Duration
	// JWKSClient fetches JWKSURL (nil: a client with a 10 second timeout).
	JWKSClient *http.Client
	// Issuer, when not "", must equal the token's `iss`.
	Issuer string
	// Audience, when not "", must be one of the token's `aud` values.
	Audience string
	// Leeway is the clock skew allowed for `exp`, `nbf` and `iat`; a socket is closed at its
	// token's `exp` plus Leeway.
	Leeway time.Duration
	// RequireExp refuses tokens without an `exp` claim.
	RequireExp bool
	// Clock tells the time (nil: the system clock).
	Clock Clock
	// Logger receives failed JWKS fetches (nil: discarded).
	Logger *slog.Logger
	// OnJWKSError, when not nil, is called (from the fetching goroutine) for every failed
	// fetch of JWKSURL; the gateway counts them in its errors metric.
	OnJWKSError func(error)
}

// JWTAuthenticator is the built-in Authenticator: it checks JSON Web Tokens signed with
// HS256/384/512, RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA. `sub` is the user id
// (empty = anonymous), `exp` (plus the leeway) is when the socket closes, and `topics`, a list
// of topic patterns, limits what it may join and read. A token is refused when no key of the
// type its `alg` names verifies it ("none" and an algorithm that does not fit the key's type
// are always refused), when it is expired, not yet valid (`nbf`) or issued in the future
// (`iat`), or when its issuer, audience or required `exp` is missing or wrong. No token is
// an anonymous connection. It is safe for concurrent use; Close stops its JWKS refreshes.
type JWTAuthenticator struct {
	keys   atomic.Pointer[Keys]
	remote *remoteJWKS
	parser *jwt.Parser
	leeway time.Duration
	clock  Clock
}

// jwtClaims are the claims the gateway reads.
type jwtClaims struct {
	jwt.RegisteredClaims
	Topics *[]string `json:"topics,omitempty"`
}

// maxTokenTopics bounds a token's `topics` claim (patterns are matched on every join).
const maxTokenTopics = 1000

// NewJWTAuthenticator returns a JWTAuthenticator for cfg. With a JWKSURL it fetches the set
// once before returning (a failure is logged, not returned: tokens from that provider are
// refused until a fetch succeeds) and starts refreshing it; call Close to stop. Errors wrap
// ErrInvalidConfig.
func NewJWTAuthenticator(cfg JWTConfig) (*JWTAuthenticator, error) {
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("%w: JWT leeway must be >= 0", ErrInvalidConfig)
	}
	if cfg.JWKSRefreshInterval < 0 || cfg.JWKSRefreshMinInterval < 0 {
		return nil, fmt.Errorf("%w: JWKS refresh intervals must be >= 0", ErrInvalidConfig)
	}
	a := &JWTAuthenticator{leeway: cfg.Leeway, clock: cfg.Clock}
	if a.clock == nil {
		a.clock = systemClock{}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(tokenAlgs),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(a.clock.Now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	if cfg.RequireExp {
		opts = append(opts, jwt.WithExpirationRequired())
	}
	a.parser = jwt.NewParser(opts...)
	a.SetKeys(cfg.Keys)
	if cfg.JWKSURL != "" {
		r, err := newRemoteJWKS(cfg)
		if err != nil {
			return nil, err
		}
		a.remote = r
	}
	return a, nil
}

// SetKeys replaces the authenticator's Keys (not the JWKS fetched from a URL): tokens are
// checked against k from now on; sockets already open keep their identity. It is how key
// files are reloaded.
func (a *JWTAuthenticator) SetKeys(k Keys) {
	a.keys.Store(&k)
}

// Close stops refreshing the JWKS of JWKSURL. It is idempotent.
func (a *JWTAuthenticator) Close() {
	if a.remote != nil {
		a.remote.close()
	}
}

// Authenticate implements Authenticator. Its errors wrap ErrUnauthorized.
func (a *JWTAuthenticator) Authenticate(r *http.Request, token string) (Identity, error) {
	if token == "" {
		return Identity{}, nil
	}
	ctx := context.Background()
	if r != nil {
		ctx = r.Context()
	}
	var claims jwtClaims
	_, err := a.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		return a.verificationKeys(ctx, t)
	})
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	id := Identity{User: claims.Subject}
	if claims.ExpiresAt != nil {
		id.Expires = claims.ExpiresAt.Add(a.leeway)
	}
	if claims.Topics != nil {
		if len(*claims.Topics) > maxTokenTopics {
			return Identity{}, fmt.Errorf("%w: more than %d topic patterns", ErrUnauthorized, maxTokenTopics)
		}
		id.Topics = append([]string{}, *claims.Topics...)
	}
	return id, nil
}

// errNoKey is returned when no key could verify a token.
var errNoKey = errors.New("wsgateway: no key fits the token")

// verificationKeys returns every key that may verify t: those of the type t's algorithm is
// defined for, and, for a `kid`, only the key set entries of that id.
func (a *JWTAuthenticator) verificationKeys(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, _ := t.Header["kid"].(string)
	var set jwt.VerificationKeySet
	add := func(key any) {
		if keyFits(alg, key) {
			set.Keys = append(set.Keys, key)
		}
	}
	keys := a.keys.Load()
	for _, k := range keys.HMAC {
		add(k)
	}
	for _, k := range keys.Public {
		add(k)
	}
	addJWKs := func(jwks []JWK) {
		for _, k := range jwks {
			if (kid == "" || k.KID == "" || k.KID == kid) && (k.Alg == "" || k.Alg == alg) {
				add(k.Key)
			}
		}
	}
	addJWKs(keys.JWKS)
	if a.remote != nil {
		addJWKs(a.remote.keys(ctx, kid))
	}
	if len(set.Keys) == 0 {
		if kid != "" {
			return nil, fmt.Errorf("%w (alg %s, kid %q)", errNoKey, alg, kid)
		}
		return nil, fmt.Errorf("%w (alg %s)", errNoKey, alg)
	}
	return set, nil
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

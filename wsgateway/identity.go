package wsgateway

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// ErrNotJWT is returned by Gateway.SetJWTKeys when Config.Authenticator replaced the
// built-in JWT check.
var ErrNotJWT = errors.New("wsgateway: the built-in JWT check is not in use")

// setupAccess builds the gateway's Clock, Authenticator and Authorizer from its Config.
func (g *Gateway) setupAccess() error {
	cfg := &g.cfg
	g.clock = cfg.Clock
	if g.clock == nil {
		g.clock = systemClock{}
	}
	g.authz = cfg.Authorizer
	if g.authz == nil {
		g.authz = TopicRules{Public: append([]string(nil), cfg.PublicTopics...)}
	}
	g.auth = cfg.Authenticator
	if g.auth == nil {
		a, err := g.newJWT()
		if err != nil {
			return err
		}
		g.jwt, g.auth = a, a
	}
	if cfg.DemoTokens {
		demo, err := newDemoAuth(cfg.DemoTokenKey, g.clock, g.auth)
		if err != nil {
			return err
		}
		g.demo, g.auth = demo, demo
	}
	return nil
}

// newJWT builds the built-in Authenticator from the Config.
func (g *Gateway) newJWT() (*JWTAuthenticator, error) {
	cfg := &g.cfg
	return NewJWTAuthenticator(JWTConfig{
		Keys:                   g.withSecret(cfg.JWTKeys),
		JWKSURL:                cfg.JWKSURL,
		JWKSRefreshInterval:    cfg.JWKSRefreshInterval,
		JWKSRefreshMinInterval: cfg.JWKSRefreshMinInterval,
		Issuer:                 cfg.JWTIssuer,
		Audience:               cfg.JWTAudience,
		Leeway:                 cfg.JWTLeeway,
		RequireExp:             cfg.JWTRequireExp,
		Clock:                  g.clock,
		Logger:                 g.log,
		OnJWKSError:            func(error) { g.metrics.fail("jwks_fetch") },
	})
}

// withSecret returns k with Config.JWTSecret first among its HMAC keys.
func (g *Gateway) withSecret(k Keys) Keys {
	if len(g.cfg.JWTSecret) > 0 {
		k.HMAC = append([][]byte{g.cfg.JWTSecret}, k.HMAC...)
	}
	return k
}

// SetJWTKeys replaces Config.JWTKeys while the gateway runs (JWTSecret and the JWKS of
// JWKSURL stay): new sockets and reads are checked against k, open sockets keep the identity
// they were admitted with. It is how key files are reloaded (on SIGHUP). It returns
// ErrNotJWT when Config.Authenticator replaced the built-in check.
func (g *Gateway) SetJWTKeys(k Keys) error {
	if g.jwt == nil {
		return ErrNotJWT
	}
	g.jwt.SetKeys(g.withSecret(k))
	return nil
}

// authenticateSocket runs the Authenticator for an upgrade and checks what the tracker would
// refuse later, so that such a socket is refused now rather than failing every join.
func (g *Gateway) authenticateSocket(r *http.Request, token string) (Identity, error) {
	id, err := g.auth.Authenticate(r, token)
	if err != nil {
		return Identity{}, err
	}
	if len(id.User) > g.cfg.MaxUserBytes {
		return Identity{}, fmt.Errorf("%w: user id of %d bytes (max %d)", ErrUnauthorized, len(id.User), g.cfg.MaxUserBytes)
	}
	if !id.Expires.IsZero() && !g.clock.Now().Before(id.Expires) {
		return Identity{}, fmt.Errorf("%w: identity expired at %s", ErrUnauthorized, id.Expires.UTC().Format(time.RFC3339))
	}
	return id, nil
}

// expireAt closes c with 4001 "token expired" at t (never when t is zero); the function it
// returns cancels that.
func (g *Gateway) expireAt(c *conn, t time.Time) func() bool {
	if t.IsZero() {
		return func() bool { return false }
	}
	return g.clock.AfterFunc(t.Sub(g.clock.Now()), func() {
		g.metrics.fail("token_expired")
		c.close(closeTokenExpired, "token expired")
	})
}

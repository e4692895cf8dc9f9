package wsgateway

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

func signed(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	require.NoError(t, err)
	return s
}

func TestUpgradeRefusals(t *testing.T) {
	now := time.Now()
	valid := jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Hour).Unix()}
	noneTok := signed(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid)
	cases := []struct {
		name    string
		config  func(*Config)
		query   string
		header  http.Header
		status  int // 0: upgrade succeeds
		viewers int // counts after joining, when it succeeds
		users   int
	}{
		{name: "no token is anonymous", query: "vsn=2.0.0", viewers: 1},
		{name: "valid token is a user", query: "vsn=2.0.0&token=" + signed(t, jwt.SigningMethodHS256, testSecret, valid), users: 1},
		{name: "empty sub is anonymous", query: "vsn=2.0.0&token=" + signed(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}), viewers: 1},
		{name: "expired", query: "vsn=2.0.0&token=" + signed(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "a", "exp": now.Add(-time.Hour).Unix()}), status: 403},
		{name: "not yet valid", query: "vsn=2.0.0&token=" + signed(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "a", "nbf": now.Add(time.Hour).Unix()}), status: 403},
		{name: "forged signature", query: "vsn=2.0.0&token=" + signed(t, jwt.SigningMethodHS256, []byte("other secret"), valid), status: 403},
		{name: "alg none", query: "vsn=2.0.0&token=" + noneTok, status: 403},
		{name: "HS384 with the same secret", query: "vsn=2.0.0&token=" + signed(t, jwt.SigningMethodHS384, testSecret, valid), users: 1},
		{name: "garbage token", query: "vsn=2.0.0&token=not.a.jwt", status: 403},
		{name: "token without a secret", config: func(c *Config) { c.JWTSecret = nil },
			query: "vsn=2.0.0&token=" + signed(t, jwt.SigningMethodHS256, testSecret, valid), status: 403},
		{name: "issuer mismatch", config: func(c *Config) { c.JWTIssuer = "us" },
			query: "vsn=2.0.0&token=" + signed(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "a", "iss": "them"}), status: 403},
		{name: "issuer and audience match", config: func(c *Config) { c.JWTIssuer, c.JWTAudience = "us", "web" },
			query: "vsn=2.0.0&token=" + signed(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "a", "iss": "us", "aud": "web"}), users: 1},
		{name: "audience mismatch", config: func(c *Config) { c.JWTAudience = "web" },
			query: "vsn=2.0.0&token=" + signed(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "a", "aud": "mobile"}), status: 403},
		{name: "unknown vsn", query: "vsn=3.0.0", status: 403},
		{name: "garbage vsn", query: "vsn=two", status: 403},
		{name: "vsn 2.1 is V2", query: "vsn=2.1.0", viewers: 1},
		{name: "foreign origin", query: "vsn=2.0.0", header: http.Header{"Origin": {"http://evil.example"}}, status: 403},
		{name: "allowed origin", config: func(c *Config) { c.AllowedOrigins = []string{"https://app.example"} },
			query: "vsn=2.0.0", header: http.Header{"Origin": {"https://app.example"}}, viewers: 1},
		{name: "origin not in the list", config: func(c *Config) { c.AllowedOrigins = []string{"https://app.example"} },
			query: "vsn=2.0.0", header: http.Header{"Origin": {"https://other.example"}}, status: 403},
		{name: "any origin", config: func(c *Config) { c.AllowedOrigins = []string{"*"} },
			query: "vsn=2.0.0", header: http.Header{"Origin": {"https://other.example"}}, viewers: 1},
		{name: "custom authenticator", config: func(c *Config) {
			c.Authenticator = AuthenticatorFunc(func(_ *http.Request, tok string) (Identity, error) {
				if tok == "let-me-in" {
					return Identity{User: "bob"}, nil
				}
				return Identity{}, ErrUnauthorized
			})
		}, query: "vsn=2.0.0&token=let-me-in", users: 1},
		{name: "custom authenticator refuses", config: func(c *Config) {
			c.Authenticator = AuthenticatorFunc(func(*http.Request, string) (Identity, error) { return Identity{}, ErrUnauthorized })
		}, query: "vsn=2.0.0&token=nope", status: 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, tc.config)
			c, resp, err := tg.tryDial(tc.query, tc.header, nil)
			if tc.status != 0 {
				require.Error(t, err)
				require.NotNil(t, resp)
				resp.Body.Close()
				require.Equal(t, tc.status, resp.StatusCode)
				return
			}
			require.NoError(t, err)
			resp.Body.Close()
			c.t = t
			defer c.ws.Close()
			c.join("room:a", "1")
			c.expect(stateFrame("1", "room:a", tc.viewers, tc.users))
		})
	}
}

// TestAuthTokenSubprotocol checks the phoenix client's authToken option: the token travels in
// a subprotocol and the server must answer "phoenix".
func TestAuthTokenSubprotocol(t *testing.T) {
	tg := startGateway(t, nil)
	enc := strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(token(t, "carol", time.Hour))), "=")
	c, resp, err := tg.tryDial("vsn=2.0.0", nil, []string{"phoenix", subprotocolPrefix + enc})
	require.NoError(t, err)
	resp.Body.Close()
	defer c.ws.Close()
	require.Equal(t, "phoenix", c.ws.Subprotocol())
	c.t = t
	c.join("room:a", "1")
	c.expect(stateFrame("1", "room:a", 0, 1))

	forged := strings.TrimRight(base64.StdEncoding.EncodeToString([]byte(signed(t, jwt.SigningMethodHS256, []byte("x"), jwt.MapClaims{"sub": "m"}))), "=")
	_, resp, err = tg.tryDial("vsn=2.0.0", nil, []string{"phoenix", subprotocolPrefix + forged})
	require.Error(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestUpgradeNeedsGET(t *testing.T) {
	tg := startGateway(t, nil)
	resp, err := http.Post(tg.srv.URL+"/socket/websocket?vsn=2.0.0", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

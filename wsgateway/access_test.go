package wsgateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/headcount-io/headcount/tracker"
	"github.com/stretchr/testify/require"
)

func TestMatchTopic(t *testing.T) {
	cases := []struct {
		patterns []string
		topic    string
		want     bool
	}{
		{[]string{"*"}, "anything", true},
		{[]string{"*"}, "video:*", true},
		{[]string{"room:1"}, "room:1", true},
		{[]string{"room:1"}, "room:10", false},
		{[]string{"room:1*"}, "room:10", true},
		{[]string{"room:*"}, "room:", true},
		{[]string{"room:*"}, "roo", false},
		{[]string{"video:*"}, "video:*", true},   // the roll-up of what the pattern allows
		{[]string{"vid*"}, "video:*", true},      // a wider pattern covers it too
		{[]string{"video:1*"}, "video:*", false}, // a narrower one does not
		{[]string{"video:1"}, "video:*", false},
		{[]string{"a", "b*"}, "bee", true},
		{nil, "room:1", false},
		{[]string{}, "room:1", false},
		{[]string{""}, "room:1", false},
	}
	for _, c := range cases {
		require.Equal(t, c.want, MatchTopic(c.patterns, c.topic), "%q vs %q", c.patterns, c.topic)
	}
}

// tokenWith signs claims with the test secret.
func tokenWith(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	if _, ok := claims["exp"]; !ok {
		claims["exp"] = time.Now().Add(time.Hour).Unix()
	}
	return signWith(t, jwt.SigningMethodHS256, testSecret, "", claims)
}

func unauthorizedReply(jr, topic string) string {
	return fmt.Sprintf(`[%q,%q,%q,"phx_reply",{"status":"error","response":{"reason":"unauthorized"}}]`, jr, jr, topic)
}

// TestJoinAccess: the topics claim, or --public-topics without it, decides every join; a
// refused join gets {"reason":"unauthorized"} and changes no count.
func TestJoinAccess(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.PublicTopics = []string{"video:*", "lobby"} })

	anon := tg.dial(t, "vsn=2.0.0")
	anon.join("video:1", "1")
	anon.expect(stateFrame("1", "video:1", 1, 0))
	anon.join("lobby", "2")
	anon.expect(stateFrame("2", "lobby", 1, 0))
	anon.sendRaw(`["3","3","room:secret","phx_join",{}]`)
	anon.expect(unauthorizedReply("3", "room:secret"))
	anon.sendRaw(`["4","4","lobby2","phx_join",{}]`)
	anon.expect(unauthorizedReply("4", "lobby2"))

	// A token without the claim gets the public topics too.
	plain := tg.dial(t, "vsn=2.0.0&token="+tokenWith(t, jwt.MapClaims{"sub": "pat"}))
	plain.sendRaw(`["1","1","room:secret","phx_join",{}]`)
	plain.expect(unauthorizedReply("1", "room:secret"))

	// A token with the claim gets its own topics and nothing else, public or not.
	member := tg.dial(t, "vsn=2.0.0&token="+tokenWith(t, jwt.MapClaims{"sub": "mia", "topics": []string{"room:secret", "team:7:*"}}))
	member.join("room:secret", "1")
	member.expect(stateFrame("1", "room:secret", 0, 1))
	member.join("team:7:chat", "2")
	member.expect(stateFrame("2", "team:7:chat", 0, 1))
	member.sendRaw(`["3","3","video:1","phx_join",{}]`)
	member.expect(unauthorizedReply("3", "video:1"))
	member.sendRaw(`["4","4","team:8:chat","phx_join",{}]`)
	member.expect(unauthorizedReply("4", "team:8:chat"))

	// An empty claim allows nothing.
	none := tg.dial(t, "vsn=2.0.0&token="+tokenWith(t, jwt.MapClaims{"sub": "nil", "topics": []string{}}))
	none.sendRaw(`["1","1","video:1","phx_join",{}]`)
	none.expect(unauthorizedReply("1", "video:1"))

	// The refused joins counted no one: a heartbeat round trip orders the checks after them.
	for _, c := range []*client{anon, plain, member, none} {
		c.heartbeat()
	}
	require.Equal(t, tracker.Counts{Users: 1, Connections: 1}, tg.tr.Count("room:secret"))
	require.Equal(t, tracker.Counts{Viewers: 1, Connections: 1}, tg.tr.Count("video:1"))
	require.Equal(t, tracker.Counts{}, tg.tr.Count("team:8:chat"))
	require.Equal(t, tracker.Counts{}, tg.tr.Count("lobby2"))
	require.EqualValues(t, 6, metricValue(t, tg, `headcount_gateway_errors_total{kind="unauthorized"}`))
}

// TestCustomAuthorizer: an embedder's Authorizer replaces the rules and sees the identity
// its Authenticator made.
func TestCustomAuthorizer(t *testing.T) {
	var asked []string
	tg := startGateway(t, func(c *Config) {
		c.Authenticator = AuthenticatorFunc(func(_ *http.Request, tok string) (Identity, error) {
			return Identity{User: tok, Extra: "plan:" + tok}, nil
		})
		c.Authorizer = AuthorizerFunc(func(id Identity, topic string, a Access) bool {
			asked = append(asked, fmt.Sprintf("%s %s %s", id.Extra, topic, a)) // joins of one socket are serial
			return strings.HasPrefix(topic, id.User+":")
		})
	})
	c := tg.dial(t, "vsn=2.0.0&token=gold")
	c.join("gold:1", "1")
	c.expect(stateFrame("1", "gold:1", 0, 1))
	c.sendRaw(`["2","2","silver:1","phx_join",{}]`)
	c.expect(unauthorizedReply("2", "silver:1"))
	require.Equal(t, []string{"plan:gold gold:1 track", "plan:gold silver:1 track"}, asked)
}

// TestReadAccess: GET /v1/topics/{topic} takes the token as ?token= or a Bearer header and
// answers 403 when the rules refuse it.
func TestReadAccess(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.PublicTopics = []string{"video:*"} })
	reader := tokenWith(t, jwt.MapClaims{"sub": "r", "topics": []string{"room:*"}})
	get := func(path, bearer string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, tg.srv.URL+path, nil)
		require.NoError(t, err)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, get("/v1/topics/video:1", ""))
	require.Equal(t, http.StatusForbidden, get("/v1/topics/room:1", ""))
	require.Equal(t, http.StatusOK, get("/v1/topics/room:1?token="+reader, ""))
	require.Equal(t, http.StatusOK, get("/v1/topics/room:1", reader))
	require.Equal(t, http.StatusForbidden, get("/v1/topics/video:1", reader), "the claim replaces the public topics")
	require.Equal(t, http.StatusForbidden, get("/v1/topics/room:1?token=garbage", ""))
	expired := tokenWith(t, jwt.MapClaims{"sub": "r", "topics": []string{"room:*"}, "exp": time.Now().Add(-time.Minute).Unix()})
	require.Equal(t, http.StatusForbidden, get("/v1/topics/room:1", expired))
	forged := signWith(t, jwt.SigningMethodHS256, []byte("not the secret"), "", jwt.MapClaims{"sub": "r", "topics": []string{"*"}})
	require.Equal(t, http.StatusForbidden, get("/v1/topics/room:1?token="+forged, ""))
}

// TestUpgradeRefusesLongSub: a `sub` the tracker would refuse is refused at the upgrade, not
// admitted and then failing every join.
func TestUpgradeRefusesLongSub(t *testing.T) {
	tg := startGateway(t, nil)
	_, resp, err := tg.tryDial("vsn=2.0.0&token="+token(t, strings.Repeat("u", 256), time.Hour), nil, nil)
	require.Error(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	c := tg.dial(t, "vsn=2.0.0&token="+token(t, strings.Repeat("u", 255), time.Hour))
	c.join("room:a", "1")
	c.expect(stateFrame("1", "room:a", 0, 1))
}

// TestUpgradeBearerToken: non-browser clients may send the token as a Bearer header.
func TestUpgradeBearerToken(t *testing.T) {
	tg := startGateway(t, nil)
	c, resp, err := tg.tryDial("vsn=2.0.0", http.Header{"Authorization": {"Bearer " + token(t, "erin", time.Hour)}}, nil)
	require.NoError(t, err)
	resp.Body.Close()
	c.t = t
	defer c.ws.Close()
	c.join("room:a", "1")
	c.expect(stateFrame("1", "room:a", 0, 1))
}

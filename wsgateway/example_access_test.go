package wsgateway_test

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/headcount-io/headcount/wsgateway"
)

// ExampleMatchTopic shows the patterns of a token's `topics` claim and of PublicTopics.
func ExampleMatchTopic() {
	patterns := []string{"video:*", "room:42"}
	for _, topic := range []string{"video:7", "video:*", "room:42", "room:420", "lobby"} {
		fmt.Println(topic, wsgateway.MatchTopic(patterns, topic))
	}
	// Output:
	// video:7 true
	// video:* true
	// room:42 true
	// room:420 false
	// lobby false
}

// ExampleAuthorizerFunc replaces the topic rules with an embedding service's own: here its
// Authenticator maps session cookies to identities carrying a team, and its Authorizer lets
// a team see its own topics only.
func ExampleAuthorizerFunc() {
	type session struct{ team string }
	cfg := wsgateway.DefaultConfig()
	cfg.Authenticator = wsgateway.AuthenticatorFunc(func(r *http.Request, _ string) (wsgateway.Identity, error) {
		c, err := r.Cookie("session")
		if err != nil {
			return wsgateway.Identity{}, nil // anonymous
		}
		user, team, _ := strings.Cut(c.Value, "@") // a real service looks the session up
		return wsgateway.Identity{User: user, Extra: session{team: team}}, nil
	})
	cfg.Authorizer = wsgateway.AuthorizerFunc(func(id wsgateway.Identity, topic string, _ wsgateway.Access) bool {
		s, ok := id.Extra.(session)
		return ok && strings.HasPrefix(topic, "team:"+s.team+":")
	})
	// cfg.Tracker = ...; wsgateway.New(cfg)
	ada := wsgateway.Identity{User: "ada", Extra: session{team: "7"}}
	fmt.Println(cfg.Authorizer.Authorize(ada, "team:7:standup", wsgateway.AccessTrack))
	fmt.Println(cfg.Authorizer.Authorize(ada, "team:8:standup", wsgateway.AccessRead))
	fmt.Println(cfg.Authorizer.Authorize(wsgateway.Identity{}, "team:7:standup", wsgateway.AccessObserve))
	// Output:
	// true
	// false
	// false
}

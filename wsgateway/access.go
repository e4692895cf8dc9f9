package wsgateway

import (
	"net/http"
	"strings"
)

// Access is what a connection asks to do with a topic.
type Access int

// The accesses an Authorizer is asked about.
const (
	// AccessTrack is a tracked join: the connection is counted in the topic.
	AccessTrack Access = iota + 1
	// AccessObserve is an observer join: the connection sees the counts and is not counted.
	AccessObserve
	// AccessRead is an HTTP read of the topic's counts (GET /v1/topics/..., an event stream).
	AccessRead
)

func (a Access) String() string {
	switch a {
	case AccessTrack:
		return "track"
	case AccessObserve:
		return "observe"
	case AccessRead:
		return "read"
	}
	return "unknown"
}

// Authorizer decides which topics a connection may join and read. It is called
// concurrently, on every join and for every topic of every HTTP read, so it must be fast and
// must not block. topic is the topic's name as the client sent it (a roll-up topic such as
// "video:*" included). A refused join gets the error reply {"reason":"unauthorized"} and
// changes no count; a refused HTTP read gets 403.
type Authorizer interface {
	Authorize(id Identity, topic string, access Access) bool
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(id Identity, topic string, access Access) bool

// Authorize calls f.
func (f AuthorizerFunc) Authorize(id Identity, topic string, access Access) bool {
	return f(id, topic, access)
}

// TopicRules is the built-in Authorizer: a connection whose identity has topic patterns
// (a token's `topics` claim) may access the topics they match, any other connection the
// topics Public matches. Every access is treated alike.
type TopicRules struct {
	// Public are the patterns (see MatchTopic) for connections without a `topics` claim:
	// anonymous ones and tokens without the claim. Empty: none.
	Public []string
}

// Authorize implements Authorizer.
func (r TopicRules) Authorize(id Identity, topic string, _ Access) bool {
	if id.Topics != nil {
		return MatchTopic(id.Topics, topic)
	}
	return MatchTopic(r.Public, topic)
}

// MatchTopic reports whether topic matches one of patterns: a pattern ending in "*" matches
// every topic that starts with what comes before the "*" ("*" alone matches every topic),
// any other pattern only the topic equal to it. A roll-up topic is a name like any other, so
// "video:*" is matched by "video:*", "vid*" or "*" (whose topics it sums) but not by
// "video:1*" or "video:1".
func MatchTopic(patterns []string, topic string) bool {
	for _, p := range patterns {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			if strings.HasPrefix(topic, prefix) {
				return true
			}
		} else if p == topic {
			return true
		}
	}
	return false
}

// authorizeRead is the guard of every HTTP read of counts: it authenticates r (a token in
// the `token` query parameter or an `Authorization: Bearer` header) and asks the Authorizer
// about every topic. When r is refused it has answered 403 and returns false. Reader
// endpoints call it before reading any count.
func (g *Gateway) authorizeRead(w http.ResponseWriter, r *http.Request, topics ...string) (Identity, bool) {
	tok := r.URL.Query().Get("token")
	if tok == "" {
		tok = bearerToken(r)
	}
	id, err := g.auth.Authenticate(r, tok)
	if err != nil {
		g.log.Debug("read refused", "remote", r.RemoteAddr, "err", err)
		g.metrics.fail("auth")
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "unauthorized"})
		return Identity{}, false
	}
	for _, t := range topics {
		if !g.mayAccess(id, t, AccessRead) {
			g.metrics.fail("unauthorized")
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "unauthorized"})
			return Identity{}, false
		}
	}
	return id, true
}

// mayAccess asks the Authorizer whether id may access topic.
func (g *Gateway) mayAccess(id Identity, topic string, access Access) bool {
	return g.authz.Authorize(id, topic, access)
}

package wsgateway

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sentinel errors. Errors returned by New wrap ErrInvalidConfig and name the offending field.
var (
	// ErrInvalidConfig is wrapped by every configuration error returned by New.
	ErrInvalidConfig = errors.New("wsgateway: invalid config")
	// ErrUnauthorized is returned (wrapped) by authenticators for a token that must be refused;
	// the upgrade is then answered with HTTP 403.
	ErrUnauthorized = errors.New("wsgateway: unauthorized")
)

// Config configures a Gateway. Start from DefaultConfig and set Tracker. A zero limit means
// "no limit" only where the field's comment says so; negative values are always invalid.
type Config struct {
	// Tracker holds the presences. Required. The gateway tracks one presence per joined channel,
	// owned by a per-connection owner from Tracker.NewOwner, and subscribes to topic changes.
	Tracker Tracker

	// Partial reports whether some member of the cluster is neither alive nor gone for good
	// (suspect, failed, incompatible): its presences are then missing from every count, which
	// is served as "partial" (issue 12). It may be called concurrently and must not block for
	// long. Nil: only the tracker's down replicas make counts partial. Package node sets it
	// from gossip's members.
	Partial func() bool

	// JWTSecret is an HMAC (HS256/384/512) key for tokens (the `token` query parameter, the
	// `authToken` subprotocol or an `Authorization: Bearer` header); it always verifies,
	// whatever JWTKeys holds. With no key at all (no JWTSecret, JWTKeys or JWKSURL) and no
	// Authenticator, every connection without a token is anonymous and every connection
	// presenting a token is refused (it cannot be verified).
	JWTSecret []byte
	// JWTIssuer, when not empty, is required to equal the token's `iss` claim.
	JWTIssuer string
	// JWTAudience, when not empty, must be one of the token's `aud` values.
	JWTAudience string
	// JWTLeeway is the clock skew allowed when checking `exp`, `nbf` and `iat`.
	JWTLeeway time.Duration

	// Authenticator, when not nil, replaces the built-in JWT check (a JWTAuthenticator made
	// from the JWT* and JWKS* fields): embedders use it to map their own tokens to
	// identities. See Authenticator for its contract.
	Authenticator Authenticator

	// Identity and access (issue 11).

	// JWTKeys verify tokens besides JWTSecret: more HMAC secrets, PEM public keys, a JWKS
	// file. Gateway.SetJWTKeys replaces them while the gateway runs.
	JWTKeys Keys
	// JWKSURL, when not "", is an identity provider's JSON Web Key Set (its jwks_uri); see
	// JWTConfig.JWKSURL for its caching and refreshes.
	JWKSURL string
	// JWKSRefreshInterval is how often JWKSURL is fetched again (0: 10 minutes).
	JWKSRefreshInterval time.Duration
	// JWKSRefreshMinInterval is the shortest time between fetches of JWKSURL for a token
	// whose `kid` the cached set lacks (0: 30 seconds).
	JWKSRefreshMinInterval time.Duration
	// JWTRequireExp refuses tokens without an `exp` claim.
	JWTRequireExp bool
	// MaxUserBytes is the longest user id (a token's `sub`), in bytes; a longer one is
	// refused with HTTP 403 at the upgrade. It should equal the tracker's MaxUserLen.
	MaxUserBytes int
	// PublicTopics are the topic patterns (see MatchTopic) that a connection without a
	// `topics` claim (anonymous, or a token without the claim) may join and read. Empty: none.
	PublicTopics []string
	// Authorizer, when not nil, replaces the built-in topic rules (TopicRules over
	// PublicTopics): it decides every join and every HTTP read of counts.
	Authorizer Authorizer
	// Clock tells the time for token checks and socket expiry (nil: the system clock).
	Clock Clock

	// AllowedOrigins lists the origins (scheme://host[:port], compared case-insensitively)
	// allowed to open sockets when the request carries an Origin header; "*" allows any origin.
	// Besides these, a page is allowed only when it is same-origin on a loopback host
	// (localhost, 127.0.0.0/8, [::1]), so the demo page works on one machine without
	// configuration. The request's Host header alone never admits an origin: a DNS-rebinding
	// page controls both. Requests without an Origin header (non-browser clients) are always
	// allowed, as Phoenix does. Refused origins are logged, at most once per 10 s.
	AllowedOrigins []string

	// DemoTokens enables POST /v1/demo/token?user=NAME, which mints a short-lived HS256 token
	// signed with DemoTokenKey for anyone who asks. For the demo page only, never in production.
	DemoTokens bool
	// DemoTokenKey is the HS256 key demo tokens are signed with. Only a gateway with DemoTokens
	// accepts it (besides its real JWT keys), so demo tokens are worthless on other nodes. It
	// must not be a real JWT key. Empty: a random key of this gateway.
	DemoTokenKey []byte
	// DemoTokenTTL is the lifetime of a demo token.
	DemoTokenTTL time.Duration

	// Registerer receives the gateway's metrics (headcount_gateway_*); nil registers them
	// nowhere. Two gateways need two registerers, or one wrapped with a distinct label each
	// (package node adds node=<name>). The gateway does not serve /metrics: package node does.
	Registerer prometheus.Registerer

	// Logger receives the gateway's logs. Nil discards them.
	Logger *slog.Logger

	// CoalesceWindow is the coalescing period for presence_diff (> 0): a change after a quiet
	// window is sent at once, and the changes that follow within the window are gathered into
	// at most one presence_diff per topic at its end. Larger windows send fewer frames.
	// Under a steady stream of changes a window lasts at least as long as the broadcasts
	// before it took, so that broadcasting takes at most half of the writers' time.
	CoalesceWindow time.Duration

	// MaxFrameBytes is the largest frame a client may send; a bigger one closes the socket
	// with 1009 (message too big).
	MaxFrameBytes int64
	// MaxTopicBytes is the longest topic name, in bytes (Phoenix binary frames allow 255).
	MaxTopicBytes int
	// MaxChannels is the number of channels one socket may have joined at once; further joins
	// get the error reply "too many channels".
	MaxChannels int
	// JoinRate is the sustained number of joins per second one socket may make; JoinBurst is
	// how many it may make at once. Joins over the rate get the error reply "too many joins".
	JoinRate float64
	// JoinBurst: see JoinRate. It should be at least MaxChannels so a reconnecting client can
	// rejoin all its channels at once.
	JoinBurst int
	// MaxConns is the number of sockets this gateway accepts at once; 0 = no limit. Upgrades
	// over it get HTTP 503.
	MaxConns int
	// MaxConnsPerIP is the number of sockets one remote IP (the request's RemoteAddr, not
	// forwarding headers) may hold at once; 0 = no limit. Upgrades over it get HTTP 429.
	MaxConnsPerIP int
	// MaxQueuedBytes bounds the unread bytes of one socket: frames (replies and pushes, not
	// presence diffs, which are coalesced in place) queued or being written and not yet taken
	// by the client. The socket's reader stops reading requests while their answers would not
	// fit, so a client that pipelines a burst (a page rejoining all its channels) is slowed, not
	// closed; a frame that would overflow closes the socket with 1008 (policy violation). Must
	// hold the answers of one request: at least 3 x (MaxFrameBytes + 256).
	MaxQueuedBytes int

	// IdleTimeout closes a socket that sent nothing (the client heartbeats every 30 s) for this
	// long, with close code 1001 so that a live client reconnects.
	IdleTimeout time.Duration
	// WriteTimeout bounds one write to a socket; a socket that does not drain in time is closed.
	WriteTimeout time.Duration
	// HandshakeTimeout bounds the WebSocket upgrade.
	HandshakeTimeout time.Duration
	// NoIOUring makes the fan-out writers write each socket with a write(2) of its own. By
	// default (Linux) they hand the kernel a chunk of 32 sockets' sends with one io_uring
	// submission: at 19,600 sockets on a 2-core VM, 9.5-12.9 µs of server CPU per frame
	// against 17.6 µs with this set ([K], BENCHMARKS.md). Where the kernel refuses io_uring
	// (kernel.io_uring_disabled, a container's seccomp profile) they fall back to write(2)
	// by themselves and say so in the log. headcount_gateway_io_uring_writers tells which is
	// in use.
	NoIOUring bool
	// ReadBufferSize and WriteBufferSize size the per-socket I/O buffers, in bytes. On Linux
	// a socket holds its read buffer only while it reads (an idle socket's is pooled; from
	// 257 bytes up); elsewhere for its lifetime. A client frame larger than it is read in
	// several reads (Phoenix clients' frames are under 512 bytes but for long topics or
	// refs). Write buffers are pooled between writes, so idle sockets hold none.
	ReadBufferSize, WriteBufferSize int

	// Long-poll transport (/socket/longpoll, Phoenix's LongPoll). A session counts as one
	// connection for MaxConns and MaxConnsPerIP and follows every other limit above, except
	// IdleTimeout (the client sends no heartbeats over long-poll; LongPollSessionTimeout
	// plays that part).

	// LongPollHold is how long a poll waits for frames before it is answered "no content"
	// (> 0). It must stay below the client's request timeout (phoenix: longpollerTimeout,
	// 20 s by default).
	LongPollHold time.Duration
	// LongPollSessionTimeout closes a long-poll session that has had no request in flight for
	// this long (> 0); its presences then leave the counts. A live client polls again as soon
	// as a poll is answered, so this bounds how long a closed tab is still counted.
	LongPollSessionTimeout time.Duration

	// Readers (issue 12: observers, roll-ups, the topics API, SSE, CORS).

	// MaxObserved is the number of observer channels ({"observe": true} joins, which track
	// nothing) one socket may have joined at once, besides its MaxChannels tracked ones;
	// further observer joins get the error reply "too many observed channels".
	MaxObserved int
	// ObserveJoinRate is the sustained number of observer joins per second one socket may make;
	// ObserveJoinBurst how many it may make at once (at least MaxObserved, so that a list page
	// that reconnects rejoins every channel at once). They are a bucket of their own: observer
	// joins never use up tracked joins, nor the reverse.
	ObserveJoinRate float64
	// ObserveJoinBurst: see ObserveJoinRate.
	ObserveJoinBurst int
	// CORSOrigins lists the origins allowed to read the HTTP read endpoints (GET /v1/topics,
	// /v1/topics/{topic}, /v1/topics/{topic}/events) from a browser page of another origin:
	// exact origins (scheme://host[:port], case-insensitive), "*" for any, or patterns with
	// one "*" standing for any run of characters ("https://*.example.com"). Empty: no CORS
	// headers (same-origin pages only).
	CORSOrigins []string
	// SSEHeartbeat is the period of the comment lines that keep an idle event stream (and the
	// proxies on its way) open.
	SSEHeartbeat time.Duration
}

// DefaultConfig returns the production defaults. Tracker must still be set.
func DefaultConfig() Config {
	return Config{
		DemoTokenTTL:     15 * time.Minute,
		CoalesceWindow:   50 * time.Millisecond,
		MaxFrameBytes:    64 << 10,
		MaxTopicBytes:    255,
		MaxUserBytes:     255,
		PublicTopics:     []string{"*"},
		MaxChannels:      100,
		JoinRate:         10,
		JoinBurst:        100,
		MaxConns:         100_000,
		MaxConnsPerIP:    1_000,
		MaxQueuedBytes:   1 << 20,
		IdleTimeout:      60 * time.Second,
		WriteTimeout:     10 * time.Second,
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   512,
		WriteBufferSize:  4096,

		LongPollHold:           10 * time.Second,
		LongPollSessionTimeout: 15 * time.Second,
		MaxObserved:            1000,
		ObserveJoinRate:        100,
		ObserveJoinBurst:       1000,
		SSEHeartbeat:           15 * time.Second,
	}
}

func (c *Config) validate() error {
	bad := func(field, why string) error {
		return fmt.Errorf("%w: %s %s", ErrInvalidConfig, field, why)
	}
	switch {
	case c.Tracker == nil:
		return bad("Tracker", "is required")
	case c.DemoTokens && c.DemoTokenTTL <= 0:
		return bad("DemoTokenTTL", "must be > 0")
	case c.JWTLeeway < 0:
		return bad("JWTLeeway", "must be >= 0")
	case c.CoalesceWindow <= 0:
		return bad("CoalesceWindow", "must be > 0")
	case c.MaxFrameBytes <= 0:
		return bad("MaxFrameBytes", "must be > 0")
	case c.MaxTopicBytes <= 0:
		return bad("MaxTopicBytes", "must be > 0")
	case c.MaxUserBytes <= 0:
		return bad("MaxUserBytes", "must be > 0")
	case c.JWKSRefreshInterval < 0 || c.JWKSRefreshMinInterval < 0:
		return bad("JWKSRefreshInterval", "and JWKSRefreshMinInterval must be >= 0")
	case c.MaxChannels <= 0:
		return bad("MaxChannels", "must be > 0")
	case c.JoinRate <= 0:
		return bad("JoinRate", "must be > 0")
	case c.JoinBurst <= 0:
		return bad("JoinBurst", "must be > 0")
	case c.MaxConns < 0:
		return bad("MaxConns", "must be >= 0")
	case c.MaxConnsPerIP < 0:
		return bad("MaxConnsPerIP", "must be >= 0")
	case c.MaxQueuedBytes < maxFramesPerRequest*(int(c.MaxFrameBytes)+answerOverhead):
		return bad("MaxQueuedBytes", "must hold one request's answers: at least 3 x (MaxFrameBytes + 256)")
	case c.IdleTimeout <= 0:
		return bad("IdleTimeout", "must be > 0")
	case c.WriteTimeout <= 0:
		return bad("WriteTimeout", "must be > 0")
	case c.HandshakeTimeout <= 0:
		return bad("HandshakeTimeout", "must be > 0")
	case c.ReadBufferSize <= 0:
		return bad("ReadBufferSize", "must be > 0")
	case c.WriteBufferSize <= 0:
		return bad("WriteBufferSize", "must be > 0")
	case c.LongPollHold <= 0:
		return bad("LongPollHold", "must be > 0")
	case c.LongPollSessionTimeout <= 0:
		return bad("LongPollSessionTimeout", "must be > 0")
	case c.MaxObserved <= 0:
		return bad("MaxObserved", "must be > 0")
	case c.ObserveJoinRate <= 0:
		return bad("ObserveJoinRate", "must be > 0")
	case c.ObserveJoinBurst <= 0:
		return bad("ObserveJoinBurst", "must be > 0")
	case c.SSEHeartbeat <= 0:
		return bad("SSEHeartbeat", "must be > 0")
	}
	for _, o := range c.CORSOrigins {
		if o == "" {
			return bad("CORSOrigins", "contains an empty origin")
		}
	}
	for _, o := range c.AllowedOrigins {
		if o == "" {
			return bad("AllowedOrigins", "contains an empty origin")
		}
	}
	return nil
}

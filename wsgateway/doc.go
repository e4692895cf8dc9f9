// Package wsgateway is Headcount's front door: the WebSocket endpoint that speaks the Phoenix
// Channels protocol (V1 objects and V2 arrays, so the official phoenix JS client works
// unchanged), the JSON HTTP API, the demo page and the Prometheus metrics of one node.
//
// Every channel a socket joins is tracked in the node's tracker (as an anonymous viewer, or as
// the user named by the `sub` claim of its JWT) and untracked when the socket leaves, closes or
// stops heartbeating. Clients only ever learn counts, never who is there: after every join
// reply the gateway pushes
//
//	presence_state {"viewers":{"count":N},"users":{"count":M}}
//
// and, when counts change, a presence_diff with both classes in both halves:
//
//	presence_diff {"joins":{"viewers":{"count":a},"users":{"count":b}},"leaves":{...}}
//
// Diffs are coalesced per topic over Config.CoalesceWindow and encoded once per topic per
// window for every subscriber whose counts are the topic's previous broadcast counts; a client
// that is behind (it has just joined, or it is slow) gets a personal diff from its own counts.
// For every client, its presence_state plus the diffs after it add up to the true counts.
//
// The gateway must never let one connection affect another: bad input from the network is an
// error reply or a closed connection plus a metric, never a panic; fan-out never blocks on a slow
// client (each connection has a bounded queue; a broadcast is written by a few shared writers
// that never wait for a socket, 32 sockets per io_uring submission where the kernel allows it,
// and a socket whose kernel buffer is full gets a writer goroutine of its own, see writers.go).
//
// # Protocol
//
// /socket/websocket takes vsn=2.0.0 (V2 arrays) or vsn=1.0.0 / no vsn (V1 objects); another
// vsn is refused with HTTP 403. Heartbeats on topic "phoenix" get an ok reply. phx_join is
// answered by phx_reply then presence_state, in that order (each socket is strictly FIFO);
// a duplicate join closes the old channel (phx_close with its join ref) and keeps the
// presence; phx_leave is answered ok then phx_close; a leave of an unjoined topic is ok; a
// push to an unjoined topic, or with a stale join ref, gets {"reason":"unmatched topic"}.
// The join payload {"connections":true} adds "connections" to the channel's counts.
//
// # Readers
//
// A join with {"observe":true} is an observer: it gets presence_state and presence_diff
// exactly as a tracked join does, but nothing is tracked, so it counts no one and costs no
// replicated state. A socket may hold MaxChannels tracked and MaxObserved observer channels;
// observer joins draw from a bucket of their own (ObserveJoinRate/ObserveJoinBurst). A topic
// ending in "*" is a roll-up of every topic with that prefix ("*" alone: the whole node's
// view of the cluster): viewers are distinct anonymous connections and users distinct user
// ids across those topics. It may only be observed; a tracked join gets the error reply
// "observe only". A socket that sends requests faster than it reads their answers is not
// closed as a slow consumer: its reader waits for room in its queue.
//
// Over HTTP: GET /v1/topics?topic=A&topic=B (up to 1,000) and ?prefix=P&limit=N (the busiest
// topics of a roll-up, with its "total"); GET /v1/topics/{topic}/events, an event stream
// (presence_state, then presence_diff, the channel's JSON; ?partial=true adds the flag) that
// counts no one. Config.CORSOrigins opens these reads to other origins. HTTP count payloads
// say "partial": true while a member is suspect or down; a channel gets the field only when
// its join payload asks with {"partial": true}.
//
// # Auth
//
// The token comes from the `token` query parameter, the phoenix client's authToken
// subprotocol (the gateway answers subprotocol "phoenix") or an `Authorization: Bearer`
// header. The built-in JWTAuthenticator verifies HS256/384/512, RS256/384/512,
// PS256/384/512, ES256/384/512 and EdDSA tokens with HMAC secrets, PEM public keys and JSON
// Web Key Sets (a file, or an identity provider's URL, cached and refreshed); `sub` is the
// user id, and no token or an empty `sub` is anonymous. A bad signature, `alg` "none" or an
// algorithm that does not fit the key's type, an expired, not-yet-valid or future-issued
// token, a wrong issuer or audience, or a `sub` longer than Config.MaxUserBytes is refused
// with HTTP 403 before the upgrade. Config.Authenticator replaces it. A socket whose
// identity expires (its token's `exp` plus Config.JWTLeeway) is closed with 4001 "token
// expired"; the phoenix client reconnects, with a fresh token when its params are a function.
//
// # Access
//
// An Authorizer decides every join and every HTTP read of counts. The built-in TopicRules
// let a token with a `topics` claim (patterns: exact, or a prefix ending in "*") join and
// read only the topics it matches, and any other connection those of Config.PublicTopics
// (default "*"). A refused join gets the error reply {"reason":"unauthorized"} and counts no
// one; a refused read gets 403. HTTP reads take the token as `?token=` or a Bearer header.
// Config.Authorizer replaces the rules.
//
// A request with an Origin header must match Config.AllowedOrigins or be same-origin on a
// loopback host; the Host header alone never admits an origin (DNS rebinding).
//
// # Limits and close codes
//
// Every limit is a Config field: MaxFrameBytes (a bigger frame closes the socket with 1009),
// MaxTopicBytes and MaxChannels (error replies), JoinRate/JoinBurst (error reply "too many
// joins"), MaxConns (HTTP 503) and MaxConnsPerIP (HTTP 429) at the upgrade, MaxQueuedBytes
// (1008 "slow consumer"), IdleTimeout (1001 "idle timeout") and WriteTimeout. Malformed
// frames and text frames that are not UTF-8 close the socket with 1007 and binary frames
// with 1003. Shutdown closes sockets with 1001, an expired token with 4001 "token expired".
// Phoenix clients reconnect after any of these codes (they do not after 1000, which the
// gateway never sends).
//
// # Long-poll
//
// /socket/longpoll is Phoenix's LongPoll transport, for networks that block WebSockets (the
// official client with `transport: LongPoll`, or falling back to it with
// `longPollFallbackMs`). The channel logic is the WebSocket's (conn over a transport), and so
// are the token, the Origin rule and the limits: a session counts as one connection. A GET
// without a session token opens a session ({"status":410,"token":T}); a GET with it waits
// up to LongPollHold for frames (200 with messages, or 204); a POST carries ndjson frames.
// A session with no request in flight for LongPollSessionTimeout is closed and its presences
// untracked. See longpoll.go for every status.
//
// # Use
//
// The caller owns the http.Server and the listener: mount Gateway.Handler and call
// Gateway.Shutdown before shutting the server down (it does not track hijacked connections).
// The tracker's local operations must be flushed by its transport (package gossip, or a loop
// calling Tick in a single-node setup).
package wsgateway

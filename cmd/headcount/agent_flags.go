package main

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/internal/httpguard"
	"github.com/headcount-io/headcount/node"
	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/webhook"
	"github.com/headcount-io/headcount/wsgateway"
)

const (
	defaultHost     = "127.0.0.1" // of --bind and --http, also when given a bare port
	defaultHTTPPort = 4000
)

// defaultGossipPort is the port of --bind: gossip's own default.
var defaultGossipPort = gossip.DefaultConfig().BindPort

// agentFlags are the raw flags of 'headcount agent'. The names are part of
// the front door contract (DESIGN.md): do not rename them.
type agentFlags struct {
	name            string
	bind            string
	advertise       string
	join            listFlag
	http            string
	jwtSecretFile   string
	gossipKeyFile   string
	allowedOrigins  listFlag
	profile         string
	label           string
	demoTokens      bool
	pprof           string
	shutdownTimeout time.Duration
	maxConns        int
	maxConnsPerIP   int
	coalesceWindow  time.Duration
	noIOUring       bool
	log             logFlags

	// Secure by default (issue 10).
	insecureGossip    bool
	adminHTTP         string
	maxHTTPConns      int
	maxHTTPConnsPerIP int
	httpReadTimeout   time.Duration
	httpWriteTimeout  time.Duration
	httpIdleTimeout   time.Duration
	maxPresences      int
	maxTopics         int

	// Operator (issue 14): secrets may come from the environment.
	allowShortJWTSecret bool

	// testClockOffset is added to the wall clock when the boot epoch is
	// chosen: a testing hook for issue 9's clock-step fault, registered only
	// in test builds (testhooks.go).
	testClockOffset time.Duration

	// Webhooks (issue 13).
	webhook webhookFlags

	// Identity and access (issue 11).
	auth authFlags

	// Readers (issue 12).
	readers readerFlags
}

// Secrets that may be given as environment variables instead of files, for
// platforms that cannot mount files. Files are better: the environment of
// a process is visible to more people and tools than a file with mode 600.
const (
	envJWTSecret = envPrefix + "JWT_SECRET" // the key of --jwt-secret-file
	envGossipKey = envPrefix + "GOSSIP_KEY" // the contents of --gossip-key-file
)

// minJWTSecret is the shortest HS256 key accepted without
// --allow-short-jwt-secret: RFC 7518 wants a key at least as long as the
// hash (32 bytes), and a short one can be found by brute force offline
// from any single token.
const minJWTSecret = 32

func (a *agentFlags) register(fs *flagSet) {
	fs.withConfigFile(envJWTSecret, envGossipKey)
	gport := strconv.Itoa(defaultGossipPort)
	fs.StringVar(&a.name, "name", "", "node name, unique in the cluster (default: the host name, plus -PORT when --bind's port is not "+gport+")")
	fs.StringVar(&a.bind, "bind", defaultHost+":"+gport, "gossip address to listen on, UDP and TCP (host:port, or a bare port on "+defaultHost+"; 0.0.0.0:"+gport+" for every interface)")
	fs.StringVar(&a.advertise, "advertise", "", "gossip address other nodes use to reach this one (default: --bind, or a private interface address when --bind is 0.0.0.0)")
	fs.Var(&a.join, "join", "seed peer host:port to join (repeatable or comma-separated; a DNS name joins every address it resolves to); retried until one answers")
	fs.StringVar(&a.http, "http", defaultHost+":"+strconv.Itoa(defaultHTTPPort), "HTTP address for WebSocket, HTTP API, metrics and demo page (host:port, or a bare port on "+defaultHost+")")
	fs.StringVar(&a.jwtSecretFile, "jwt-secret-file", "", "file of HMAC keys (HS256/384/512) of user tokens, one per line, any verifies (reloaded on SIGHUP); without any key every client is anonymous")
	fs.StringVar(&a.gossipKeyFile, "gossip-key-file", "", "file of base64 gossip encryption keys, one per line, first one encrypts (make one with 'headcount keygen')")
	fs.Var(&a.allowedOrigins, "allowed-origins", "browser origins allowed to open a WebSocket, e.g. https://example.com, or * for any (repeatable or comma-separated; default: only pages served by this node)")
	fs.StringVar(&a.profile, "profile", "lan", "failure-detection timing: lan (data centre) or local (one machine, faster)")
	fs.StringVar(&a.label, "label", "", "cluster label: nodes with different labels ignore each other")
	fs.BoolVar(&a.demoTokens, "demo-tokens", false, "let the demo page mint a token for any user name (POST /v1/demo/token); NEVER in production")
	fs.StringVar(&a.pprof, "pprof", "", "serve net/http/pprof on this host:port (e.g. 127.0.0.1:6060); off when empty")
	stop := node.DefaultConfig().Stop // the steps node.Split shares the timeout among
	fs.DurationVar(&a.shutdownTimeout, "shutdown-timeout", stop.Drain+stop.Goodbye+stop.Sockets, "on SIGTERM/SIGINT, the longest to wait for a graceful stop")
	gw := wsgateway.DefaultConfig()
	fs.IntVar(&a.maxConns, "max-conns", gw.MaxConns, "WebSockets this node accepts at once (0 = no limit); more get HTTP 503")
	fs.IntVar(&a.maxConnsPerIP, "max-conns-per-ip", gw.MaxConnsPerIP, "WebSockets one remote IP may hold (0 = no limit; set 0 behind a proxy or load balancer); more get HTTP 429")
	fs.DurationVar(&a.coalesceWindow, "coalesce-window", gw.CoalesceWindow, "how long count changes are gathered into one presence_diff per topic")
	fs.BoolVar(&a.noIOUring, "no-io-uring", false, "write each WebSocket of a fan-out with its own write(2) rather than 32 sends per io_uring submission (Linux; automatic where the kernel refuses io_uring)")
	a.log.register(fs)

	// Secure by default (issue 10).
	fs.BoolVar(&a.insecureGossip, "insecure-gossip", false, "allow a non-loopback --bind without --gossip-key-file: anyone who can reach the gossip port can then rewrite every count; never outside a trusted test network")
	fs.StringVar(&a.adminHTTP, "admin-http", "", "serve /metrics, /v1/members and pprof on this host:port (e.g. 127.0.0.1:4001) and no longer on --http; off when empty")
	hg := httpguard.DefaultConfig()
	fs.IntVar(&a.maxHTTPConns, "max-http-conns", hg.MaxConns, "plain HTTP connections --http holds at once, WebSockets not included (0 = no limit); more are closed at once")
	fs.IntVar(&a.maxHTTPConnsPerIP, "max-http-conns-per-ip", hg.MaxConnsPerIP, "plain HTTP connections one remote IP may hold on --http, WebSockets not included (0 = no limit; set 0 behind a proxy or load balancer)")
	fs.DurationVar(&a.httpReadTimeout, "http-read-timeout", hg.ReadTimeout, "longest time to read one HTTP request, headers and body (headers alone: at most "+hg.ReadHeaderTimeout.String()+")")
	fs.DurationVar(&a.httpWriteTimeout, "http-write-timeout", hg.WriteTimeout, "longest time to write one HTTP response")
	fs.DurationVar(&a.httpIdleTimeout, "http-idle-timeout", hg.IdleTimeout, "keep-alive HTTP connections idle this long are closed")
	tc := tracker.DefaultConfig()
	fs.IntVar(&a.maxPresences, "max-presences", tc.MaxLocalPresences, "presences this node's clients may hold at once, over all topics (0 = no limit); more joins get the error \"too many presences on this node\"")
	fs.IntVar(&a.maxTopics, "max-topics", tc.MaxLocalTopics, "topics this node's clients may be present in at once (0 = no limit); joins of more get the error \"too many topics on this node\"")

	// Operator (issue 14).
	fs.BoolVar(&a.allowShortJWTSecret, "allow-short-jwt-secret", false, "accept a JWT key shorter than 32 bytes (refused by default: short HS256 keys can be brute-forced from one token)")

	// Testing hooks (issue 9): only in a binary built with the
	// headcount_testhooks tag (testhooks.go), never in a release.
	registerTestHooks(fs, a)

	// Webhooks (issue 13).
	a.webhook.register(fs)

	// Identity and access (issue 11).
	a.auth.register(fs)

	// Readers (issue 12).
	a.readers.register(fs)
}

// agentConfig is the validated form of agentFlags, with key files read.
type agentConfig struct {
	name           string
	bind           hostPort
	advertise      hostPort // host empty when it could not be chosen
	join           []string
	http           hostPort
	jwtSecret      []byte
	gossipKeys     [][]byte
	gossipKeyFile  string // re-read on SIGHUP
	allowedOrigins []string
	profile        string
	label          string
	demoTokens     bool
	pprof          string
	shutdown       time.Duration
	maxConns       int
	maxConnsPerIP  int
	coalesceWindow time.Duration
	noIOUring      bool             // wsgateway.Config.NoIOUring
	insecureGossip bool             // --insecure-gossip given and no key: gossip is open to anyone
	webhook        *webhook.Config  // nil without --webhook-url (issue 13)
	adminHTTP      string           // --admin-http, "" when off (issue 10)
	httpGuard      httpguard.Config // timeouts and connection caps of --http (issue 10)
	jwtSecrets     [][]byte         // every key of --jwt-secret-file or HEADCOUNT_JWT_SECRET (jwtSecret is the first)
	auth           authConfig       // issue 11
	maxPresences   int              // tracker.Config.MaxLocalPresences (issue 10)
	maxTopics      int              // tracker.Config.MaxLocalTopics (issue 10)
	readers        readerFlags      // issue 12, validated
	clockOffset    time.Duration    // --test-clock-offset (issue 9)
}

// resolve validates the flags and reads the key files. Its errors are one
// line and name the flag at fault.
func (a *agentFlags) resolve() (*agentConfig, error) {
	c := &agentConfig{
		join:           a.join.values,
		allowedOrigins: a.allowedOrigins.values,
		label:          a.label,
		demoTokens:     a.demoTokens,
		pprof:          a.pprof,
		shutdown:       a.shutdownTimeout,
		maxConns:       a.maxConns,
		maxConnsPerIP:  a.maxConnsPerIP,
		coalesceWindow: a.coalesceWindow,
		noIOUring:      a.noIOUring,
		clockOffset:    a.testClockOffset,
	}
	var err error
	if c.bind, err = parseHostPort("bind", a.bind, defaultHost); err != nil {
		return nil, usageError{err}
	}
	if c.bind.unspecified() {
		c.bind.host = "0.0.0.0"
	}
	if c.http, err = parseHostPort("http", a.http, defaultHost); err != nil {
		return nil, usageError{err}
	}
	for _, j := range c.join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			// A seed without a port uses the gossip port, as memberlist does.
			if _, _, err2 := net.SplitHostPort(net.JoinHostPort(j, "1")); err2 != nil {
				return nil, usagef("--join %q: want host:port or host", j)
			}
		}
	}
	switch a.profile {
	case "lan", "local":
		c.profile = a.profile
	default:
		return nil, usagef("--profile %q: want lan or local", a.profile)
	}
	if a.shutdownTimeout <= 0 {
		return nil, usagef("--shutdown-timeout must be positive, got %s", a.shutdownTimeout)
	}
	if a.maxConns < 0 || a.maxConnsPerIP < 0 {
		return nil, usagef("--max-conns and --max-conns-per-ip must be 0 (no limit) or more")
	}
	if a.coalesceWindow <= 0 {
		return nil, usagef("--coalesce-window must be positive, got %s", a.coalesceWindow)
	}
	if a.pprof != "" {
		if _, err := parseHostPort("pprof", a.pprof, defaultHost); err != nil {
			return nil, usageError{err}
		}
	}
	if err := a.resolveHTTPGuard(c); err != nil { // issue 10
		return nil, err
	}
	if err := c.resolveAdvertise(a.advertise); err != nil {
		return nil, err
	}
	c.name = a.name
	if c.name == "" {
		c.name = defaultNodeName(c.bind.port)
	}
	if err := checkOrigins("allowed-origins", c.allowedOrigins); err != nil {
		return nil, usageError{err}
	}
	if err := a.resolveSecrets(c); err != nil {
		return nil, err
	}
	if len(c.gossipKeys) == 0 && !c.bind.loopback() {
		if !a.insecureGossip {
			return nil, fmt.Errorf("--bind %s is not a loopback address and --gossip-key-file is not set: "+
				"without a key anyone who can reach the gossip port can rewrite counts; "+
				"make a key with 'headcount keygen' and pass --gossip-key-file, or pass --insecure-gossip to accept the risk", c.bind)
		}
		c.insecureGossip = true
	}
	if c.readers, err = a.readers.resolve(); err != nil { // issue 12
		return nil, err
	}
	if c.webhook, err = a.webhook.resolve(); err != nil { // issue 13
		return nil, err
	}
	if c.auth, err = a.auth.resolve(a, c.jwtSecrets); err != nil { // issue 11
		return nil, err
	}
	return c, nil
}

// resolveAdvertise sets c.advertise from --advertise (an IP or a host name
// resolved now, with an optional port), or from --bind, picking an
// interface address when --bind is unspecified.
func (c *agentConfig) resolveAdvertise(flagValue string) error {
	c.advertise = c.bind
	if flagValue == "" {
		if c.bind.unspecified() {
			ip, err := advertiseIP()
			if err != nil {
				return fmt.Errorf("--bind %s: %w", c.bind, err)
			}
			c.advertise.host = ip
		}
		return nil
	}
	host, port := flagValue, c.bind.port
	if h, p, err := net.SplitHostPort(flagValue); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return usagef("--advertise %q: port must be a number from 1 to 65535", flagValue)
		}
		host, port = h, n
	}
	ip := net.ParseIP(host)
	if ip == nil {
		addrs, err := net.LookupIP(host)
		if err != nil || len(addrs) == 0 {
			return fmt.Errorf("--advertise %q: cannot resolve host: %v", flagValue, err)
		}
		ip = addrs[0]
	}
	if ip.IsUnspecified() {
		return usagef("--advertise %q: must be an address other nodes can reach, not every interface", flagValue)
	}
	c.advertise = hostPort{host: ip.String(), port: port}
	return nil
}

// httpAdvertise is the HTTP address put in this node's gossip metadata
// (shown by /v1/members): the listener's address, with the gossip advertise
// host when the listener binds every interface.
func (c *agentConfig) httpAdvertise(listen net.Addr) string {
	host, port, err := net.SplitHostPort(listen.String())
	if err != nil {
		return listen.String()
	}
	if ip := net.ParseIP(host); (ip != nil && ip.IsUnspecified()) || host == "" {
		host = c.advertise.host
	}
	return net.JoinHostPort(host, port)
}

// Webhooks (issue 13): the --webhook-* flags, resolved into a webhook.Config.
type webhookFlags struct {
	url        string
	secretFile string
	events     string
	debounce   time.Duration
	grace      time.Duration
	timeout    time.Duration
}

func (w *webhookFlags) register(fs *flagSet) {
	d := webhook.DefaultConfig()
	fs.StringVar(&w.url, "webhook-url", "", "POST occupancy events (JSON, signed) to this http(s) URL; one node sends each topic's events (off when empty)")
	fs.StringVar(&w.secretFile, "webhook-secret-file", "", "file holding the key of the X-Headcount-Signature HMAC-SHA256 (surrounding whitespace trimmed); required with --webhook-url")
	fs.StringVar(&w.events, "webhook-events", d.Events.String(), "events to send: occupied, vacated, counts (comma-separated)")
	fs.DurationVar(&w.debounce, "webhook-debounce", d.Debounce, "least time between two topic_counts events of one topic")
	fs.DurationVar(&w.grace, "webhook-vacate-grace", d.VacateGrace, "how long a topic stays empty before topic_vacated (a page reload inside it sends nothing)")
	fs.DurationVar(&w.timeout, "webhook-timeout", d.Timeout, "bound of one webhook POST; a takeover after a member appears waits about twice this")
}

// resolve returns nil without --webhook-url, else the config with the secret read. Its errors
// name the flag.
func (w *webhookFlags) resolve() (*webhook.Config, error) {
	if w.url == "" {
		if w.secretFile != "" {
			return nil, usagef("--webhook-secret-file needs --webhook-url")
		}
		return nil, nil
	}
	u, err := url.Parse(w.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--webhook-url %q: want an http:// or https:// URL with a host", w.url)
	}
	if w.secretFile == "" {
		return nil, usagef("--webhook-url needs --webhook-secret-file (the key receivers verify X-Headcount-Signature with)")
	}
	secret, err := os.ReadFile(w.secretFile)
	if err != nil {
		return nil, fmt.Errorf("--webhook-secret-file: %w", err)
	}
	if secret = bytes.TrimSpace(secret); len(secret) == 0 {
		return nil, fmt.Errorf("--webhook-secret-file %s: file is empty", w.secretFile)
	}
	c := webhook.DefaultConfig()
	c.URL, c.Secret = w.url, secret
	if c.Events, err = webhook.ParseEvents(w.events); err != nil {
		return nil, usagef("--webhook-events %q: want occupied, vacated and/or counts, comma-separated", w.events)
	}
	switch {
	case w.debounce <= 0:
		return nil, usagef("--webhook-debounce must be positive, got %s", w.debounce)
	case w.grace < 0:
		return nil, usagef("--webhook-vacate-grace must be 0 or more, got %s", w.grace)
	case w.timeout <= 0:
		return nil, usagef("--webhook-timeout must be positive, got %s", w.timeout)
	}
	c.Debounce, c.VacateGrace, c.Timeout = w.debounce, w.grace, w.timeout
	return &c, nil
}

// Identity and access (issue 11): the other --jwt-* flags, --jwks-* and
// --public-topics, resolved into an authConfig (keys read) that wires the
// gateway in one place (authConfig.apply) and reloads on SIGHUP.
type authFlags struct {
	publicKeyFiles listFlag
	jwksURL        string
	jwksFile       string
	issuer         string
	audience       string
	requireExp     bool
	leeway         time.Duration
	publicTopics   string
}

func (f *authFlags) register(fs *flagSet) {
	fs.Var(&f.publicKeyFiles, "jwt-public-key-file", "PEM file of public keys (RSA, ECDSA, Ed25519; certificates too) that verify RS/PS/ES/EdDSA tokens (repeatable; reloaded on SIGHUP)")
	fs.StringVar(&f.jwksURL, "jwks-url", "", "an identity provider's JSON Web Key Set (jwks_uri): fetched at start, every 10 minutes and for an unknown kid (at most every 30 s); the last good set is kept when it fails")
	fs.StringVar(&f.jwksFile, "jwks-file", "", "JSON Web Key Set file whose keys verify tokens (by kid; reloaded on SIGHUP)")
	fs.StringVar(&f.issuer, "jwt-issuer", "", "when set, tokens must have this iss")
	fs.StringVar(&f.audience, "jwt-audience", "", "when set, tokens must have this value in aud")
	fs.BoolVar(&f.requireExp, "jwt-require-exp", false, "refuse tokens without exp")
	fs.DurationVar(&f.leeway, "jwt-leeway", 0, "clock skew allowed for exp, nbf and iat; a socket is closed with 4001 at exp plus this")
	fs.StringVar(&f.publicTopics, "public-topics", "*", "topic patterns (comma-separated; exact, or a prefix ending in *) that connections without a topics claim may join and read; empty: none")
}

// authConfig is the resolved form of the identity and access flags.
type authConfig struct {
	secretFile     string   // --jwt-secret-file, re-read on SIGHUP
	envSecrets     [][]byte // keys of HEADCOUNT_JWT_SECRET (not reloaded)
	allowShort     bool     // --allow-short-jwt-secret
	publicKeyFiles []string // re-read on SIGHUP
	jwksFile       string   // re-read on SIGHUP
	keys           wsgateway.Keys
	jwksURL        string
	issuer         string
	audience       string
	requireExp     bool
	leeway         time.Duration
	publicTopics   []string
}

func (f *authFlags) resolve(a *agentFlags, secrets [][]byte) (authConfig, error) {
	c := authConfig{
		secretFile: a.jwtSecretFile, allowShort: a.allowShortJWTSecret,
		publicKeyFiles: f.publicKeyFiles.values, jwksFile: f.jwksFile, jwksURL: f.jwksURL,
		issuer: f.issuer, audience: f.audience, requireExp: f.requireExp, leeway: f.leeway,
		publicTopics: []string{},
	}
	if a.jwtSecretFile == "" {
		c.envSecrets = secrets
	}
	if f.leeway < 0 {
		return c, usagef("--jwt-leeway must be 0 or more, got %s", f.leeway)
	}
	if f.jwksURL != "" {
		u, err := url.Parse(f.jwksURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, usagef("--jwks-url %q: want an http:// or https:// URL with a host", f.jwksURL)
		}
	}
	for _, p := range strings.Split(f.publicTopics, ",") {
		if p = strings.TrimSpace(p); p != "" {
			c.publicTopics = append(c.publicTopics, p)
		}
	}
	var err error
	c.keys, err = c.loadKeys(secrets)
	return c, err
}

// loadKeys reads the key files (the HMAC keys are given: resolveSecrets
// read them at start).
func (c *authConfig) loadKeys(hmac [][]byte) (wsgateway.Keys, error) {
	k := wsgateway.Keys{HMAC: hmac}
	for _, p := range c.publicKeyFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			return k, fmt.Errorf("--jwt-public-key-file: %w", err)
		}
		pub, err := wsgateway.ParsePublicKeysPEM(b)
		if err != nil {
			return k, fmt.Errorf("--jwt-public-key-file %s: %w", p, err)
		}
		k.Public = append(k.Public, pub...)
	}
	if c.jwksFile != "" {
		b, err := os.ReadFile(c.jwksFile)
		if err != nil {
			return k, fmt.Errorf("--jwks-file: %w", err)
		}
		if k.JWKS, err = wsgateway.ParseJWKS(b); err != nil {
			return k, fmt.Errorf("--jwks-file %s: %w", c.jwksFile, err)
		}
	}
	return k, nil
}

// reload re-reads every key file (on SIGHUP). On error the keys in use
// stay as they were.
func (c *authConfig) reload() (wsgateway.Keys, error) {
	hmac := c.envSecrets
	if c.secretFile != "" {
		var err error
		if hmac, err = loadJWTSecret(c.secretFile); err != nil {
			return wsgateway.Keys{}, err
		}
		if err := checkJWTSecrets("--jwt-secret-file "+c.secretFile, hmac, c.allowShort); err != nil {
			return wsgateway.Keys{}, err
		}
	}
	return c.loadKeys(hmac)
}

// apply sets the gateway's identity and access fields.
func (c *authConfig) apply(w *wsgateway.Config) {
	w.JWTKeys = c.keys
	w.JWKSURL = c.jwksURL
	w.JWTIssuer = c.issuer
	w.JWTAudience = c.audience
	w.JWTRequireExp = c.requireExp
	w.JWTLeeway = c.leeway
	w.PublicTopics = c.publicTopics
}

// Readers (issue 12): observers' limits and CORS for the read endpoints.
type readerFlags struct {
	corsOrigins listFlag
	maxChannels int
	maxObserved int
	// Long-poll (i12b).
	longPollHold    time.Duration
	longPollTimeout time.Duration
}

func (r *readerFlags) register(fs *flagSet) {
	gw := wsgateway.DefaultConfig()
	fs.Var(&r.corsOrigins, "cors-origins", "browser origins allowed to read counts over HTTP (GET /v1/topics..., event streams) from another origin: exact (https://example.com), with one * (https://*.example.com), or * for any (repeatable or comma-separated; default: none)")
	fs.IntVar(&r.maxChannels, "max-channels", gw.MaxChannels, "tracked channels one socket may join")
	fs.IntVar(&r.maxObserved, "max-observed", gw.MaxObserved, "observer channels ({\"observe\": true}, counted by no one) one socket may join, besides its tracked ones")
	fs.DurationVar(&r.longPollHold, "longpoll-hold", gw.LongPollHold, "how long a /socket/longpoll poll waits for frames before it is answered \"no content\" (keep it below your proxies' request timeouts and the client's 20s)")
	fs.DurationVar(&r.longPollTimeout, "longpoll-session-timeout", gw.LongPollSessionTimeout, "a long-poll session with no request for this long is closed and its presences leave the counts")
}

func (r readerFlags) resolve() (readerFlags, error) {
	switch {
	case r.maxChannels <= 0:
		return r, usagef("--max-channels %d: want > 0", r.maxChannels)
	case r.maxObserved <= 0:
		return r, usagef("--max-observed %d: want > 0", r.maxObserved)
	case r.longPollHold <= 0:
		return r, usagef("--longpoll-hold %s: want > 0", r.longPollHold)
	case r.longPollTimeout <= 0:
		return r, usagef("--longpoll-session-timeout %s: want > 0", r.longPollTimeout)
	}
	return r, nil
}

// apply sets the gateway fields of the reader flags. Observer joins may come in a burst as
// large as the channels a page may observe, so a reconnecting page rejoins them all at once.
func (r readerFlags) apply(c *wsgateway.Config) {
	c.CORSOrigins = r.corsOrigins.values
	c.MaxChannels = r.maxChannels
	c.JoinBurst = max(c.JoinBurst, r.maxChannels)
	c.MaxObserved = r.maxObserved
	c.ObserveJoinBurst = max(c.ObserveJoinBurst, r.maxObserved)
	c.LongPollHold, c.LongPollSessionTimeout = r.longPollHold, r.longPollTimeout
}

// resolveHTTPGuard checks --admin-http and the plain-HTTP limits (issue 10).
func (a *agentFlags) resolveHTTPGuard(c *agentConfig) error {
	if a.adminHTTP != "" {
		if _, err := parseHostPort("admin-http", a.adminHTTP, defaultHost); err != nil {
			return usageError{err}
		}
		c.adminHTTP = a.adminHTTP
	}
	if a.maxHTTPConns < 0 || a.maxHTTPConnsPerIP < 0 {
		return usagef("--max-http-conns and --max-http-conns-per-ip must be 0 (no limit) or more")
	}
	if a.maxPresences < 0 || a.maxTopics < 0 {
		return usagef("--max-presences and --max-topics must be 0 (no limit) or more")
	}
	c.maxPresences, c.maxTopics = a.maxPresences, a.maxTopics
	for name, d := range map[string]time.Duration{
		"http-read-timeout": a.httpReadTimeout, "http-write-timeout": a.httpWriteTimeout, "http-idle-timeout": a.httpIdleTimeout,
	} {
		if d <= 0 {
			return usagef("--%s must be positive, got %s", name, d)
		}
	}
	g := httpguard.DefaultConfig()
	g.MaxConns, g.MaxConnsPerIP = a.maxHTTPConns, a.maxHTTPConnsPerIP
	g.ReadTimeout, g.WriteTimeout, g.IdleTimeout = a.httpReadTimeout, a.httpWriteTimeout, a.httpIdleTimeout
	g.ReadHeaderTimeout = min(g.ReadHeaderTimeout, g.ReadTimeout)
	c.httpGuard = g
	return nil
}

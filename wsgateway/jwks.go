package wsgateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"golang.org/x/time/rate"
)

// Defaults of JWTConfig's JWKS fields.
const (
	defaultJWKSRefresh    = 10 * time.Minute
	defaultJWKSMinRefresh = 30 * time.Second
	jwksFetchTimeout      = 10 * time.Second
	maxJWKSBytes          = 1 << 20 // real sets are a few kilobytes
)

// remoteJWKS is a JSON Web Key Set fetched from a URL, cached by jwkset: refreshed on an
// interval by jwkset's goroutine (stopped by close), and on demand for an unknown `kid` at
// most once per JWKSRefreshMinInterval. A failed fetch keeps the last good set.
type remoteJWKS struct {
	cache   jwkset.Storage // the set as last fetched; reads never fetch
	client  jwkset.Storage // reads of an unknown kid fetch again
	unknown *rate.Limiter  // admits the fetches for unknown kids
	ctx     context.Context
	cancel  context.CancelFunc
	once    sync.Once
}

func newRemoteJWKS(cfg JWTConfig) (*remoteJWKS, error) {
	u, err := url.Parse(cfg.JWKSURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%w: JWKS URL %q: want an http(s) URL", ErrInvalidConfig, cfg.JWKSURL)
	}
	every, minEvery := cfg.JWKSRefreshInterval, cfg.JWKSRefreshMinInterval
	if every == 0 {
		every = defaultJWKSRefresh
	}
	if minEvery == 0 {
		minEvery = defaultJWKSMinRefresh
	}
	client := cfg.JWKSClient
	if client == nil {
		client = &http.Client{Timeout: jwksFetchTimeout}
	}
	// However the client is made, a key set is small: a body past maxJWKSBytes fails the fetch
	// (the last good set stays) instead of growing without bound.
	limited := *client
	limited.Transport = limitBody{next: client.Transport, max: maxJWKSBytes}
	client = &limited
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r := &remoteJWKS{unknown: rate.NewLimiter(rate.Every(minEvery), 1)}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	onError := func(_ context.Context, err error) {
		log.Warn("JWKS fetch failed; keeping the last good key set", "url", cfg.JWKSURL, "err", err)
		if cfg.OnJWKSError != nil {
			cfg.OnJWKSError(err)
		}
	}
	r.cache, err = jwkset.NewStorageFromHTTP(cfg.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    client,
		Ctx:                       r.ctx,
		HTTPTimeout:               jwksFetchTimeout,
		NoErrorReturnFirstHTTPReq: true, // an identity provider that is down must not stop the node
		RefreshErrorHandler:       onError,
		RefreshInterval:           every,
	})
	if err != nil {
		r.cancel()
		return nil, fmt.Errorf("%w: JWKS URL %q: %w", ErrInvalidConfig, cfg.JWKSURL, err)
	}
	r.client, err = jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{cfg.JWKSURL: r.cache},
		RateLimitWaitMax:  jwksFetchTimeout,
		RefreshUnknownKID: rate.NewLimiter(rate.Inf, 1), // r.unknown decides, without waiting
	})
	if err != nil {
		r.cancel()
		return nil, fmt.Errorf("%w: JWKS URL %q: %w", ErrInvalidConfig, cfg.JWKSURL, err)
	}
	return r, nil
}

// keys returns the set's keys for kid ("" = every key). An unknown kid fetches the set again
// when the rate limit allows, so a rotated key verifies at once.
func (r *remoteJWKS) keys(ctx context.Context, kid string) []JWK {
	var found []jwkset.JWK
	if kid == "" {
		found, _ = r.cache.KeyReadAll(ctx)
	} else if j, err := r.cache.KeyRead(ctx, kid); err == nil {
		found = []jwkset.JWK{j}
	} else if errors.Is(err, jwkset.ErrKeyNotFound) && r.unknown.Allow() {
		ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
		defer cancel()
		if j, err := r.client.KeyRead(ctx, kid); err == nil {
			found = []jwkset.JWK{j}
		}
	}
	out := make([]JWK, 0, len(found))
	for _, j := range found {
		if k, ok := jwkOf(j); ok {
			out = append(out, k)
		}
	}
	return out
}

func (r *remoteJWKS) close() { r.once.Do(r.cancel) }

// limitBody is a RoundTripper whose response bodies fail after max bytes.
type limitBody struct {
	next http.RoundTripper // nil: http.DefaultTransport
	max  int64
}

func (l limitBody) RoundTrip(req *http.Request) (*http.Response, error) {
	next := l.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = http.MaxBytesReader(nil, resp.Body, l.max) // fails with *http.MaxBytesError
	return resp, nil
}

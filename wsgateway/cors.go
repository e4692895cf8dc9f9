package wsgateway

import (
	"net/http"
	"strings"
)

// CORS for the read endpoints (issue 12): a page of another origin may GET counts when its
// Origin matches Config.CORSOrigins. Preflight requests (OPTIONS with
// Access-Control-Request-Method) are answered 204 for an allowed origin and 403 otherwise.
// No credentials: tokens travel as ?token= or Authorization: Bearer, which preflight allows.

// corsAllowed reports whether origin matches one of Config.CORSOrigins.
func (g *Gateway) corsAllowed(origin string) bool {
	if origin == "" {
		return false
	}
	for _, p := range g.cfg.CORSOrigins {
		if originMatch(strings.TrimRight(p, "/"), origin) {
			return true
		}
	}
	return false
}

// originMatch matches origin against pattern: "*" is any origin; otherwise the pattern is
// compared case-insensitively, one "*" in it standing for any run of characters.
func originMatch(pattern, origin string) bool {
	if pattern == "*" {
		return true
	}
	pattern, origin = strings.ToLower(pattern), strings.ToLower(origin)
	before, after, wild := strings.Cut(pattern, "*")
	if !wild {
		return pattern == origin
	}
	return len(origin) >= len(before)+len(after) && strings.HasPrefix(origin, before) && strings.HasSuffix(origin, after)
}

// cors wraps a read endpoint: it adds the CORS headers for an allowed origin.
func (g *Gateway) cors(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin")
		if origin := r.Header.Get("Origin"); g.corsAllowed(origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
		}
		next(w, r)
	}
}

// servePreflight answers OPTIONS on the read endpoints.
func (g *Gateway) servePreflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	origin := r.Header.Get("Origin")
	if !g.corsAllowed(origin) {
		http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
		return
	}
	if m := r.Header.Get("Access-Control-Request-Method"); m != "" && m != http.MethodGet && m != http.MethodHead {
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Last-Event-ID, Cache-Control")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

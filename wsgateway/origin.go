package wsgateway

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// originAllowed implements Config.AllowedOrigins. The request's own Host header is never enough
// on its own: a DNS-rebinding page sends Origin and Host both naming the attacker's host, which
// resolves to this node. Same-origin without configuration is allowed only for loopback hosts,
// which no page on another host can be served from.
func (g *Gateway) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, o := range g.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(strings.TrimRight(o, "/"), origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && loopbackHost(u.Hostname()) && strings.EqualFold(u.Host, r.Host)
}

// loopbackHost reports whether host is localhost or a loopback IP literal.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// originLogEvery is the shortest interval between two log lines about refused origins.
const originLogEvery = 10 * time.Second

// originLog rate-limits the warning about refused origins, so a hostile page cannot flood the
// log: one line per originLogEvery, with the number of refusals not logged since.
type originLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow reports whether a line may be logged at now, and how many were suppressed before it.
func (l *originLog) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < originLogEvery {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}

func (g *Gateway) logRefusedOrigin(r *http.Request) {
	ok, suppressed := g.originLog.allow(time.Now())
	if !ok {
		return
	}
	origin := r.Header.Get("Origin")
	g.log.Warn("WebSocket refused: browser origin not allowed; if this page is yours, add it to --allowed-origins (Config.AllowedOrigins): "+origin,
		"origin", origin, "host", r.Host, "remote", r.RemoteAddr, "refused_since_last_line", suppressed)
}

package wsgateway

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// BenchmarkLongPollSessions: the server's memory per idle long-poll session joined to one
// topic (conn, transport, timer, the session's waiting goroutine), and the cost of one
// count change delivered to every session's outbox and taken by a poll.
func BenchmarkLongPollSessions(b *testing.B) {
	const sessions = 5000
	for i := 0; i < b.N; i++ {
		tg := startGateway(b, func(c *Config) {
			c.MaxConnsPerIP = 0
			c.LongPollSessionTimeout = time.Hour
			c.LongPollHold = time.Millisecond
		})
		before := serverMemory()
		clients := make([]*lpClient, sessions)
		for k := range clients {
			l := tg.longPoll(b, "vsn=2.0.0")
			l.open()
			l.send(`["1","1","bench:lp","phx_join",{"observe":true}]`)
			l.expect(`["1","1","bench:lp","phx_reply",`+okEmptyReply+`]`, stateFrame("1", "bench:lp", 0, 0))
			clients[k] = l
		}
		perSession := float64(serverMemory()-before) / sessions

		// One change reaches every session; each takes it with one poll.
		start := time.Now()
		other := tg.longPoll(b, "vsn=2.0.0")
		other.open()
		other.send(`["1","1","bench:lp","phx_join",{}]`)
		for _, l := range clients {
			if got := l.pollUntilFrame(); got == "" {
				b.Fatal("no diff")
			}
		}
		perDelivery := time.Since(start) / sessions
		b.ReportMetric(perSession, "server-B/idle-session")
		b.ReportMetric(float64(perDelivery.Nanoseconds()), "ns/session-diff")
		b.ReportMetric(sessions, "sessions")
	}
}

// pollUntilFrame polls until a frame comes and returns the first.
func (l *lpClient) pollUntilFrame() string {
	for i := 0; i < 1000; i++ {
		a := l.do(http.MethodGet, "")
		if a.Status != 200 && a.Status != 204 {
			panic(fmt.Sprintf("poll status %d", a.Status))
		}
		if len(a.Messages) > 0 {
			return a.Messages[0]
		}
	}
	return ""
}

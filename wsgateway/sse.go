package wsgateway

import (
	"bytes"
	"net/http"
	"time"
)

// Server-sent events (issue 12): GET /v1/topics/{topic}/events streams a topic's counts to
// an EventSource, for pages that cannot or need not open a socket. The stream is an observer
// channel on a conn of its own whose transport writes SSE: "event: presence_state" first,
// then "event: presence_diff", each with the same JSON data as on a channel; it counts no one.
// Comment lines every Config.SSEHeartbeat keep proxies from closing an idle stream. A
// reconnecting EventSource gets a fresh presence_state, so Last-Event-ID is not used.

// appendEvent appends one SSE event; replies and closes are not events (empty).
func appendEvent(dst []byte, event string, payload []byte) []byte {
	switch event {
	case "presence_state", "presence_diff":
	default:
		return dst
	}
	dst = append(dst, "event: "...)
	dst = append(dst, event...)
	dst = append(dst, "\ndata: "...)
	dst = append(dst, bytes.ReplaceAll(payload, []byte("\n"), nil)...) // our JSON has none
	return append(dst, "\n\n"...)
}

// sseHeartbeat is the comment line written to an idle stream.
var sseHeartbeat = []byte(": heartbeat\n\n")

// sseTransport writes a conn's frames to a streaming HTTP response. Writer goroutine only,
// but abort.
type sseTransport struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	writeTimeout time.Duration
}

var _ transport = (*sseTransport)(nil)

func (s *sseTransport) write(f *outFrame) error {
	data := f.data
	if f.shared != nil {
		data = f.shared.data
	}
	if len(data) == 0 {
		return nil
	}
	// Errors: a ResponseWriter without deadlines (a test recorder) still streams.
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	if _, err := s.w.Write(data); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *sseTransport) finish(int, string) {} // the handler returns and ends the response

func (s *sseTransport) abort() { _ = s.rc.SetWriteDeadline(time.Now().Add(time.Second)) }

// serveEvents is GET /v1/topics/{topic}/events.
func (g *Gateway) serveEvents(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if !g.validTopic(topic) || topic == topicPhx {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid topic"})
		return
	}
	id, ok := g.authorizeRead(w, r, topic)
	if !ok {
		return
	}
	if g.stopping.Load() {
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return
	}
	ip := remoteIP(r)
	if status := g.admit(ip); status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	defer g.wg.Done()
	defer g.release(ip)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	c := g.newConn(&sseTransport{w: w, rc: http.NewResponseController(w), writeTimeout: g.cfg.WriteTimeout}, id, vsnSSE, ip)
	stopping := g.register(c)
	defer g.unregister(c)
	if stopping {
		c.close(0, "")
	}
	stopExpiry := g.expireAt(c, id.Expires) // a stream read with a token ends when the token does
	defer stopExpiry()
	payload := []byte(`{"observe":true}`)
	if r.URL.Query().Get("partial") == "true" {
		payload = []byte(`{"observe":true,"partial":true}`)
	}
	c.handle(message{Ref: optString{S: "1", Valid: true}, Topic: topic, Event: evJoin, Payload: payload})
	joined := c.chans[topic] != nil
	if !joined {
		// Refused (too many roll-ups): nothing was written; say so.
		c.close(0, "")
	}
	heartbeat := time.NewTicker(g.cfg.SSEHeartbeat)
	defer heartbeat.Stop()
stream:
	for joined {
		select {
		case <-heartbeat.C:
			c.enqueue(sseHeartbeat)
		case <-r.Context().Done():
			break stream
		case <-c.done:
			break stream
		}
	}
	c.close(0, "")
	c.cleanup()
	<-c.writerDone
	if !joined {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "too many roll-ups"})
	}
}

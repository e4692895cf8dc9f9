package wsgateway

import (
	"encoding/json"
	"net/http"
	"time"
)

func (g *Gateway) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/socket/websocket", g.serveSocket)
	mux.HandleFunc("/socket/longpoll", g.serveLongPoll)
	// Readers (issue 12): CORS on every read of counts.
	mux.HandleFunc("GET /v1/topics/{topic...}", g.cors(g.serveTopic))
	mux.HandleFunc("GET /v1/topics/{topic}/events", g.cors(g.serveEvents))
	mux.HandleFunc("GET /v1/topics", g.cors(g.serveTopics))
	mux.HandleFunc("OPTIONS /v1/topics", g.servePreflight)
	mux.HandleFunc("OPTIONS /v1/topics/{topic...}", g.servePreflight)
	mux.HandleFunc("POST /v1/demo/token", g.serveDemoToken)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if g.ready.Load() && !g.stopping.Load() {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
	})
	files := http.FileServerFS(webFS())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		files.ServeHTTP(w, r)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type countPayload struct {
	Count int `json:"count"`
}

// topicPayload is GET /v1/topics/{topic}: the presence_state payload plus connections (and
// "partial": true while a member is suspect or down).
type topicPayload struct {
	Viewers     countPayload `json:"viewers"`
	Users       countPayload `json:"users"`
	Connections countPayload `json:"connections"`
	Partial     bool         `json:"partial,omitempty"`
}

func (g *Gateway) serveTopic(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	if !g.validTopic(topic) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid topic"})
		return
	}
	if _, ok := g.authorizeRead(w, r, topic); !ok {
		return
	}
	c, err := g.countOf(topic)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "too many roll-ups"})
		return
	}
	writeJSON(w, http.StatusOK, topicPayload{
		Viewers: countPayload{c.Viewers}, Users: countPayload{c.Users}, Connections: countPayload{c.Connections},
		Partial: g.isPartial(),
	})
}

// maxDemoUser bounds the user name of a demo token, in bytes.
const maxDemoUser = 64

func (g *Gateway) serveDemoToken(w http.ResponseWriter, r *http.Request) {
	if !g.cfg.DemoTokens {
		http.NotFound(w, r)
		return
	}
	user := r.URL.Query().Get("user")
	if user == "" || len(user) > maxDemoUser {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "user must be 1 to 64 bytes"})
		return
	}
	now := time.Now()
	tok, err := g.demo.mint(user, g.cfg.DemoTokenTTL, now)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "cannot sign"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"token": tok, "user": user, "expires_at": now.Add(g.cfg.DemoTokenTTL).UTC().Format(time.RFC3339),
	})
}

// Package webhooktest is a webhook receiver for tests: an HTTP server on a loopback ephemeral
// port that checks each delivery's signature, records every event, and can be told to fail.
// It must never be used in production (it keeps every event in memory).
package webhooktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"time"

	"github.com/headcount-io/headcount/webhook"
)

// Delivery is one POST the receiver accepted or refused.
type Delivery struct {
	Payload  webhook.Payload
	Body     []byte
	Verified bool      // the signature matched the receiver's secret
	Status   int       // what the receiver answered
	At       time.Time // when it arrived
}

// Receiver records deliveries. Its methods are safe for concurrent use.
type Receiver struct {
	srv    *httptest.Server
	secret []byte

	mu         sync.Mutex
	deliveries []Delivery
	fail       []int // statuses to answer next, in order
	changed    chan struct{}
}

// New starts a receiver that verifies signatures with secret. Close it when done.
func New(secret []byte) *Receiver {
	r := &Receiver{secret: secret, changed: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

// NewListener is New serving on ln (say, an address inside a network namespace the senders
// reach), which it closes with the receiver.
func NewListener(secret []byte, ln net.Listener) *Receiver {
	r := &Receiver{secret: secret, changed: make(chan struct{}, 1)}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	_ = r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.Start()
	return r
}

// URL is the address to POST to.
func (r *Receiver) URL() string { return r.srv.URL }

// Close stops the server.
func (r *Receiver) Close() { r.srv.Close() }

// FailNext makes the next len(statuses) deliveries get these statuses (recorded, not accepted).
func (r *Receiver) FailNext(statuses ...int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = append(r.fail, statuses...)
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 16<<20))
	if err != nil || req.Method != http.MethodPost {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	d := Delivery{Body: body, At: time.Now(), Status: http.StatusOK,
		Verified: webhook.Verify(r.secret, body, req.Header.Get(webhook.SignatureHeader))}
	if req.Header.Get("Content-Type") != "application/json" {
		d.Status = http.StatusUnsupportedMediaType
	}
	if err := json.Unmarshal(body, &d.Payload); err != nil {
		d.Status = http.StatusBadRequest
	}
	if !d.Verified {
		d.Status = http.StatusUnauthorized
	}
	r.mu.Lock()
	if d.Status == http.StatusOK && len(r.fail) > 0 {
		d.Status, r.fail = r.fail[0], r.fail[1:]
	}
	r.deliveries = append(r.deliveries, d)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	w.WriteHeader(d.Status)
}

// Deliveries returns every delivery so far, in arrival order.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...)
}

// Events returns the events of the accepted deliveries, in arrival order, each id once: a
// batch whose answer the sender did not get in time (a timeout) is sent again with the same ids,
// and a receiver must drop the repeat, as this one does.
func (r *Receiver) Events() []webhook.Event {
	var out []webhook.Event
	seen := map[string]bool{}
	for _, d := range r.Deliveries() {
		if d.Status/100 != 2 {
			continue
		}
		for _, e := range d.Payload.Events {
			if !seen[e.ID] {
				seen[e.ID] = true
				out = append(out, e)
			}
		}
	}
	return out
}

// Of returns the accepted events of topic, in arrival order.
func (r *Receiver) Of(topic string) []webhook.Event {
	var out []webhook.Event
	for _, e := range r.Events() {
		if e.Topic == topic {
			out = append(out, e)
		}
	}
	return out
}

// State is what the receiver believes about one topic after the events it accepted.
type State struct {
	Occupied bool
	// Viewers and Users are from the last topic_counts since the topic was last occupied (0
	// when none came).
	Viewers, Users int
}

// States returns each topic's state after the accepted events.
func (r *Receiver) States() map[string]State { return StatesOf(r.Events()) }

// StatesOf returns each topic's state after events, in order (a subset of Events, say one
// sender's).
func StatesOf(events []webhook.Event) map[string]State {
	out := map[string]State{}
	for _, e := range events {
		s := out[e.Topic]
		switch e.Name {
		case webhook.NameOccupied:
			if !s.Occupied {
				s = State{Occupied: true}
			}
		case webhook.NameVacated:
			s = State{}
		case webhook.NameCounts:
			s = State{Occupied: true, Viewers: e.Viewers, Users: e.Users}
		}
		out[e.Topic] = s
	}
	return out
}

// Changed receives a value (at most one outstanding) after each delivery.
func (r *Receiver) Changed() <-chan struct{} { return r.changed }

// Match compares the receiver's states with truth (topic -> occupied, with counts when
// withCounts) and returns nil, or an error naming the first topics that differ. Topics absent
// from truth must be vacated or never seen.
func (r *Receiver) Match(truth map[string]State, withCounts bool) error {
	got := r.States()
	var bad []string
	for topic, want := range truth {
		g := got[topic]
		if !withCounts {
			g.Viewers, g.Users, want.Viewers, want.Users = 0, 0, 0, 0
		}
		if g != want {
			bad = append(bad, fmt.Sprintf("%s: receiver %+v, truth %+v", topic, g, want))
		}
	}
	for topic, g := range got {
		if _, ok := truth[topic]; !ok && g.Occupied {
			bad = append(bad, fmt.Sprintf("%s: receiver %+v, truth vacated", topic, g))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	if len(bad) > 5 {
		bad = append(bad[:5], fmt.Sprintf("... and %d more", len(bad)-5))
	}
	return fmt.Errorf("webhooktest: %d topics differ: %v", len(bad), bad)
}

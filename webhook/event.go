package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Event names, as they appear in the "name" field.
const (
	NameOccupied = "topic_occupied"
	NameVacated  = "topic_vacated"
	NameCounts   = "topic_counts"
)

// SignatureHeader is the header carrying "sha256=" and the hex HMAC-SHA256 of the raw body.
const SignatureHeader = "X-Headcount-Signature"

// Event is one webhook event. Viewers and Users are the current counts of a topic_counts event
// and the peak counts of a topic_vacated event; OccupiedMS is how long a vacated topic was
// occupied, from its first presence to its last leave, in milliseconds.
type Event struct {
	ID         string
	Name       string
	Topic      string
	Viewers    int
	Users      int
	OccupiedMS int64

	created time.Time // when the state machine produced it, for the latency metric
}

type count struct {
	Count int `json:"count"`
}

type counts struct {
	Viewers count `json:"viewers"`
	Users   count `json:"users"`
}

type wireEvent struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	Topic      string  `json:"topic"`
	Peak       *counts `json:"peak,omitempty"`
	OccupiedMS *int64  `json:"occupied_ms,omitempty"`
	Viewers    *count  `json:"viewers,omitempty"`
	Users      *count  `json:"users,omitempty"`
}

// MarshalJSON encodes e in the shape its name requires.
func (e Event) MarshalJSON() ([]byte, error) {
	w := wireEvent{ID: e.ID, Name: e.Name, Topic: e.Topic}
	switch e.Name {
	case NameOccupied:
	case NameVacated:
		ms := e.OccupiedMS
		w.Peak, w.OccupiedMS = &counts{count{e.Viewers}, count{e.Users}}, &ms
	case NameCounts:
		w.Viewers, w.Users = &count{e.Viewers}, &count{e.Users}
	default:
		return nil, fmt.Errorf("%w: %q", ErrUnknownEvent, e.Name)
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes any of the three shapes (for receivers written in Go, and tests).
func (e *Event) UnmarshalJSON(b []byte) error {
	var w wireEvent
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = Event{ID: w.ID, Name: w.Name, Topic: w.Topic}
	switch w.Name {
	case NameOccupied:
	case NameVacated:
		if w.Peak != nil {
			e.Viewers, e.Users = w.Peak.Viewers.Count, w.Peak.Users.Count
		}
		if w.OccupiedMS != nil {
			e.OccupiedMS = *w.OccupiedMS
		}
	case NameCounts:
		if w.Viewers != nil {
			e.Viewers = w.Viewers.Count
		}
		if w.Users != nil {
			e.Users = w.Users.Count
		}
	default:
		return fmt.Errorf("%w: %q", ErrUnknownEvent, w.Name)
	}
	return nil
}

// Payload is the body of one delivery.
type Payload struct {
	// TimeMS is when the batch was formed, in Unix milliseconds; the same on every retry.
	TimeMS int64   `json:"time_ms"`
	Events []Event `json:"events"`
}

// Sign returns the X-Headcount-Signature value of body: "sha256=" and the hex HMAC-SHA256 of
// body keyed with secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is a valid X-Headcount-Signature of body under secret. It
// compares in constant time.
func Verify(secret, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// Errors.
var (
	// ErrUnknownEvent is returned when encoding or decoding an event with an unknown name.
	ErrUnknownEvent = errors.New("webhook: unknown event name")
	// ErrConfig is wrapped by every error New and NewCore return for a bad Config.
	ErrConfig = errors.New("webhook: invalid config")
	// ErrStatus is wrapped by the error of a delivery the receiver answered with a non-2xx status.
	ErrStatus = errors.New("webhook: receiver refused the delivery")
)

package wsgateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// protoVersion is the Phoenix serializer a socket negotiated with its vsn parameter.
type protoVersion uint8

const (
	// vsn1 frames are JSON objects {"topic","event","payload","ref","join_ref"}.
	vsn1 protoVersion = 1
	// vsn2 frames are JSON arrays [join_ref, ref, topic, event, payload].
	vsn2 protoVersion = 2
	// vsnSSE frames are server-sent events "event: E\ndata: PAYLOAD\n\n"; replies and
	// closes are empty (sse.go).
	vsnSSE protoVersion = 3
	// vsnCount sizes arrays indexed by protoVersion.
	vsnCount = 4
)

// parseVsn maps the vsn query parameter to a serializer, as Phoenix does ("~> 1.0" and
// "~> 2.0"): missing means 1.0.0.
func parseVsn(s string) (protoVersion, bool) {
	if s == "" {
		return vsn1, true
	}
	parts := strings.Split(s, ".")
	if len(parts) > 3 {
		return 0, false
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return 0, false
		}
	}
	switch parts[0] {
	case "1":
		return vsn1, true
	case "2":
		return vsn2, true
	}
	return 0, false
}

// optString is a nullable string: Phoenix refs and join refs are strings or null.
type optString struct {
	S     string
	Valid bool
}

func some(s string) optString { return optString{S: s, Valid: true} }

// message is one decoded client frame.
type message struct {
	JoinRef optString
	Ref     optString
	Topic   string
	Event   string
	Payload json.RawMessage // any JSON value; nil when absent (V1 only)
}

// errMalformed is wrapped by every frame decoding error.
var errMalformed = errors.New("wsgateway: malformed frame")

func malformed(why string) error { return errors.Join(errMalformed, errors.New(why)) }

// decodeFrame decodes one text frame of the given serializer. It never panics; every error
// wraps errMalformed.
func decodeFrame(v protoVersion, data []byte) (message, error) {
	if v == vsn2 {
		return decodeV2(data)
	}
	return decodeV1(data)
}

func decodeV2(data []byte) (message, error) {
	var m message
	var parts []json.RawMessage
	if err := json.Unmarshal(data, &parts); err != nil {
		return m, malformed("not a JSON array")
	}
	if len(parts) != 5 {
		return m, malformed("want 5 elements")
	}
	var err error
	if m.JoinRef, err = decodeRef(parts[0]); err != nil {
		return m, err
	}
	if m.Ref, err = decodeRef(parts[1]); err != nil {
		return m, err
	}
	if m.Topic, err = decodeString(parts[2], "topic"); err != nil {
		return m, err
	}
	if m.Event, err = decodeString(parts[3], "event"); err != nil {
		return m, err
	}
	m.Payload = parts[4]
	return m, nil
}

func decodeV1(data []byte) (message, error) {
	var m message
	var obj struct {
		Topic   json.RawMessage `json:"topic"`
		Event   json.RawMessage `json:"event"`
		Payload json.RawMessage `json:"payload"`
		Ref     json.RawMessage `json:"ref"`
		JoinRef json.RawMessage `json:"join_ref"`
	}
	if len(bytes.TrimSpace(data)) == 0 || bytes.TrimSpace(data)[0] != '{' {
		return m, malformed("not a JSON object")
	}
	if err := json.Unmarshal(data, &obj); err != nil {
		return m, malformed("not a JSON object")
	}
	var err error
	if m.JoinRef, err = decodeRef(obj.JoinRef); err != nil {
		return m, err
	}
	if m.Ref, err = decodeRef(obj.Ref); err != nil {
		return m, err
	}
	if m.Topic, err = decodeString(obj.Topic, "topic"); err != nil {
		return m, err
	}
	if m.Event, err = decodeString(obj.Event, "event"); err != nil {
		return m, err
	}
	m.Payload = obj.Payload
	return m, nil
}

func decodeRef(raw json.RawMessage) (optString, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return optString{}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return optString{}, malformed("ref is not a string or null")
	}
	return some(s), nil
}

func decodeString(raw json.RawMessage, what string) (string, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' {
		return "", malformed(what + " is not a string")
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", malformed(what + " is not a string")
	}
	return s, nil
}

// appendFrame appends the encoding of one server frame. payload must be valid JSON.
func appendFrame(dst []byte, v protoVersion, joinRef, ref optString, topic, event string, payload []byte) []byte {
	if v == vsnSSE {
		return appendEvent(dst, event, payload)
	}
	if v == vsn2 {
		dst = append(dst, '[')
		dst = appendOpt(dst, joinRef)
		dst = append(dst, ',')
		dst = appendOpt(dst, ref)
		dst = append(dst, ',')
		dst = appendString(dst, topic)
		dst = append(dst, ',')
		dst = appendString(dst, event)
		dst = append(dst, ',')
		dst = append(dst, payload...)
		return append(dst, ']')
	}
	dst = append(dst, `{"join_ref":`...)
	dst = appendOpt(dst, joinRef)
	dst = append(dst, `,"ref":`...)
	dst = appendOpt(dst, ref)
	dst = append(dst, `,"topic":`...)
	dst = appendString(dst, topic)
	dst = append(dst, `,"event":`...)
	dst = appendString(dst, event)
	dst = append(dst, `,"payload":`...)
	dst = append(dst, payload...)
	return append(dst, '}')
}

func appendOpt(dst []byte, s optString) []byte {
	if !s.Valid {
		return append(dst, "null"...)
	}
	return appendString(dst, s.S)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b == '"' || b == '\\':
				dst = append(dst, '\\', b)
			case b < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			default:
				dst = append(dst, b)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// replyOK and replyError build phx_reply payloads.
func replyOK(response []byte) []byte {
	if response == nil {
		response = []byte("{}")
	}
	b := append([]byte(`{"status":"ok","response":`), response...)
	return append(b, '}')
}

func replyError(reason string) []byte {
	b := []byte(`{"status":"error","response":{"reason":`)
	b = appendString(b, reason)
	return append(b, "}}"...)
}

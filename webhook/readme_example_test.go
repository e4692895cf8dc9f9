package webhook_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/headcount-io/headcount/webhook"
)

// verified is the README's Go verification, compiled and checked here.
func verified(secret []byte, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err != nil {
		return nil, false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	return body, hmac.Equal([]byte(r.Header.Get("X-Headcount-Signature")), []byte(want))
}

func TestREADMEVerification(t *testing.T) {
	body := []byte(`{"time_ms":1,"events":[{"id":"a-1","name":"topic_occupied","topic":"room"}]}`)
	for _, tc := range []struct {
		sig  string
		want bool
	}{
		{webhook.Sign(secret, body), true},
		{webhook.Sign([]byte("other"), body), false},
		{"", false},
	} {
		r := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
		r.Header.Set(webhook.SignatureHeader, tc.sig)
		if got, ok := verified(secret, r); ok != tc.want || (ok && !bytes.Equal(got, body)) {
			t.Fatalf("signature %q: verified %v, want %v", tc.sig, ok, tc.want)
		}
	}
}

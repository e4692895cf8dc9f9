package main

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestKeygenPrintsA32ByteBase64Key(t *testing.T) {
	r1, r2 := runCmd(t, nil, "keygen"), runCmd(t, nil, "keygen")
	for _, r := range []result{r1, r2} {
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.stdout))
		if err != nil || len(k) != 32 {
			t.Fatalf("key %q: %d bytes, %v", r.stdout, len(k), err)
		}
	}
	if r1.stdout == r2.stdout {
		t.Fatal("two keys are equal")
	}
}

func TestVersion(t *testing.T) {
	r := runCmd(t, nil, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "headcount ") || !strings.Contains(r.stdout, "go1") {
		t.Fatalf("got %+v", r)
	}
	if r := runCmd(t, nil, "version", "extra"); r.code != 2 {
		t.Fatalf("version extra: exit %d", r.code)
	}
}

package main

import (
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(&out); err != nil {
		t.Fatal(err)
	}
	want := `svc-b's setting: "maintenance at noon"
lobby on svc-a: 2 users, on svc-b: 2 users
svc-a's service meta as svc-b sees it: zone=eu-1
`
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

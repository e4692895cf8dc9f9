package main

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// --test-clock-offset (issue 9's clock-step fault in the e2e suite) exists only in a binary built
// with -tags headcount_testhooks: a release refuses it as an unknown flag; a test build moves the
// boot epoch. scripts/test runs this test both ways.
func TestTestClockOffsetOnlyInTestBuilds(t *testing.T) {
	a, err := parseAgent(t, nil, "--test-clock-offset", "-1h")
	if !testHooks {
		if err == nil || !strings.Contains(err.Error(), "flag provided but not defined: -test-clock-offset") {
			t.Fatalf("a release build took --test-clock-offset: err = %v", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := a.resolve()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	nc, err := nodeConfig(cfg, ln, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	epoch := time.Unix(0, int64(nc.Tracker.Epoch))
	if d := time.Since(epoch); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("boot epoch %v is %v before now, want about 1h", epoch, d)
	}
}

package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
)

// Regression: --allowed-origins example.com (no scheme) was accepted and
// then matched no browser, so every socket failed with no hint.
func TestAllowedOriginsAreValidatedAtStart(t *testing.T) {
	for _, bad := range []string{"example.com", "https://example.com/app", "//example.com", "https://example.com?x=1"} {
		r := runCmd(t, nil, "agent", "--allowed-origins", bad)
		if r.code != 2 || !strings.Contains(r.stderr, "--allowed-origins") || !strings.Contains(r.stderr, bad) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: exit %d stderr %q, want exit 2 and one line naming the flag and value", bad, r.code, r.stderr)
		}
	}
	for _, good := range []string{"*", "https://example.com", "http://localhost:3000,https://www.example.com/", "HTTPS://Example.COM"} {
		if _, err := resolveAgent(t, nil, "--allowed-origins", good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
}

// Regression: a --join aimed at another node's --http port stalled start-up
// for memberlist's stream timeout (5 s) and then retried silently forever.
// Now the HTTP port closes the gossip connection at its first byte and the
// joining node says what answered.
func TestJoinToAnHTTPPortSaysWhatAnswered(t *testing.T) {
	_, aErr, aSig, aExit := background(t, context.Background(), "agent", "--name", "a",
		"--bind", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-format", "json")
	aHTTP := strings.TrimPrefix(waitStarted(t, aErr, aExit).http, "http://")
	_, bErr, bSig, bExit := background(t, context.Background(), "agent", "--name", "b",
		"--bind", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-format", "json", "--join", aHTTP)
	waitStarted(t, bErr, bExit)
	waitFor(t, "b to name what answered", func() bool {
		return strings.Contains(bErr.String(), "--join "+aHTTP+" is an HTTP server, not a gossip port") &&
			strings.Contains(bErr.String(), "a Headcount node's --http port")
	})
	if !strings.Contains(aErr.String(), "closed a connection to the HTTP port that is not HTTP") {
		t.Errorf("a did not close the gossip connection at once:\n%s", aErr.String())
	}
	for _, s := range []chan os.Signal{bSig, aSig} {
		s <- syscall.SIGTERM
	}
	waitExit(t, "b", bExit, bErr)
	waitExit(t, "a", aExit, aErr)
}

func TestProbeHTTPIgnoresWhatIsNotHTTP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte{0x06, 0x00}) // binary, as a gossip port might
			c.Close()
		}
	}()
	if what := probeHTTP(context.Background(), ln.Addr().String()); what != "" {
		t.Fatalf("probe of a non-HTTP port = %q", what)
	}
	ln.Close()
	<-done
}

func TestNotGossipListenerLetsHTTPThrough(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	srv, served := serveHTTP(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") }),
		slog.New(slog.NewTextHandler(&logs, nil)))
	defer func() { _ = srv.Close(); <-served }()
	if code, body := httpGet(t, "http://"+ln.Addr().String()+"/"); code != 200 || body != "hi" {
		t.Fatalf("HTTP through the listener: %d %q", code, body)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte{0x06, 1, 2, 3, '\n'})
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("read: %v", err)
	} // closed with nothing written back
	if !strings.Contains(logs.String(), "first_byte=0x06") {
		t.Fatalf("logs: %s", logs.String())
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for a running command and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// background runs a long-running subcommand in-process and returns its
// output buffers, its signal channel and a channel with its exit status.
func background(t *testing.T, ctx context.Context, args ...string) (stdout, stderr *lockedBuffer, sig chan os.Signal, exit chan int) {
	t.Helper()
	stdout, stderr = &lockedBuffer{}, &lockedBuffer{}
	sig = make(chan os.Signal, 2)
	exit = make(chan int, 1)
	setEnv(t, nil)
	e := &env{stdout: stdout, stderr: stderr, signals: sig}
	go func() { exit <- run(ctx, e, args) }()
	return stdout, stderr, sig, exit
}

// waitFor polls cond until it holds, failing the test after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// agentURLs are the addresses an in-process agent logs at start.
type agentURLs struct {
	http  string // of "headcount agent started": http://host:port
	pprof string // of "pprof listening" (--pprof), "" without it
	admin string // of "admin endpoints listening" (--admin-http), "" without it
}

// waitStarted waits for the agent's "headcount agent started" JSON log line
// on stderr, failing the test if the agent exits first, and returns the
// addresses logged until then.
func waitStarted(t *testing.T, stderr *lockedBuffer, exit chan int) agentURLs {
	t.Helper()
	var u agentURLs
	waitFor(t, "the started log line", func() bool {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var rec struct{ Msg, HTTP, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil {
				switch rec.Msg {
				case "pprof listening":
					u.pprof = rec.Addr
				case "admin endpoints listening":
					u.admin = rec.Addr
				case "headcount agent started":
					u.http = rec.HTTP
					return true
				}
			}
		}
		select {
		case code := <-exit:
			t.Fatalf("agent exited with %d: %s", code, stderr.String())
		default:
		}
		return false
	})
	return u
}

// waitExit waits for a subcommand told to stop (what names it) to exit with
// status 0.
func waitExit(t *testing.T, what string, exit chan int, stderr *lockedBuffer) {
	t.Helper()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", what, code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop", what)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestAgentServesAndStopsOnSIGTERM(t *testing.T) {
	_, stderr, sig, exit := background(t, context.Background(), "agent", "--name", "solo",
		"--bind", "127.0.0.1:0", "--http", "127.0.0.1:0", "--profile", "local", "--log-format", "json",
		"--pprof", "127.0.0.1:0")
	u := waitStarted(t, stderr, exit)
	base, pprofURL := u.http, u.pprof
	if code, body := httpGet(t, base+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	code, body := httpGet(t, base+"/v1/members")
	if code != http.StatusOK || !strings.Contains(body, `"name":"solo"`) || !strings.Contains(body, `"self":true`) {
		t.Fatalf("/v1/members = %d %s", code, body)
	}
	if code, body := httpGet(t, base+"/v1/topics/lobby"); code != http.StatusOK || !strings.Contains(body, `"viewers":{"count":0}`) {
		t.Fatalf("/v1/topics/lobby = %d %s", code, body)
	}
	if code, _ := httpGet(t, base+"/"); code != http.StatusOK {
		t.Fatalf("demo page = %d", code)
	}
	if code, body := httpGet(t, pprofURL+"goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Errorf("pprof at %q: %d", pprofURL, code)
	}
	if code, _ := httpGet(t, base+"/debug/pprof/"); code == http.StatusOK {
		t.Errorf("pprof is exposed on the public HTTP address")
	}
	code, body = httpGet(t, base+"/metrics")
	for _, metric := range []string{`headcount_gossip_members{node="solo"} 1`, `headcount_tracker_presences{node="solo"} 0`, "go_goroutines", "process_resident_memory_bytes", "headcount_gateway_connections"} {
		if code != http.StatusOK || !strings.Contains(body, metric) {
			t.Errorf("/metrics (%d) lacks %s", code, metric)
		}
	}
	sig <- syscall.SIGTERM
	waitExit(t, "agent after SIGTERM", exit, stderr)
	if !strings.Contains(stderr.String(), `"msg":"stopped"`) {
		t.Fatalf("no stopped log line: %s", stderr.String())
	}
}

func TestAgentPortInUse(t *testing.T) {
	_, stderr, sig, exit := background(t, context.Background(), "agent", "--name", "first",
		"--bind", "127.0.0.1:0", "--http", "127.0.0.1:0", "--log-format", "json")
	addr := strings.TrimPrefix(waitStarted(t, stderr, exit).http, "http://")
	r := runCmd(t, nil, "agent", "--name", "second", "--bind", "127.0.0.1:0", "--http", addr)
	if r.code != 1 || r.stderr != fmt.Sprintf("headcount agent: --http %s: address already in use\n", addr) {
		t.Errorf("got exit %d %q", r.code, r.stderr)
	}
	sig <- syscall.SIGINT
	waitExit(t, "first agent", exit, stderr)
}

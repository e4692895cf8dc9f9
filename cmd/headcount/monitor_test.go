package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/headcount-io/headcount/testcluster"
	"github.com/headcount-io/headcount/tracker"
)

// monitorBackground runs 'headcount monitor' in-process until the test ends.
func monitorBackground(t *testing.T, args ...string) (stdout, stderr *lockedBuffer, exit chan int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr, _, exit = background(t, ctx, append([]string{"monitor"}, args...)...)
	t.Cleanup(func() {
		cancel()
		if code := <-exit; code != 0 {
			t.Errorf("monitor exit %d: %s", code, stderr.String())
		}
	})
	return stdout, stderr, exit
}

// Against a real gateway: a state first, then a line per change. With
// --transport auto it uses the event stream where the node has one and an
// observer join over WebSocket where it has not.
func TestMonitorFollowsCountsOfARealNode(t *testing.T) {
	for _, transport := range []string{"auto", "sse", "websocket"} {
		t.Run(transport, func(t *testing.T) {
			c, err := testcluster.New(testcluster.Options{Nodes: 1, Gateways: &testcluster.GatewayOptions{}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() }) // after the monitor's cleanup (LIFO)
			out, _, _ := monitorBackground(t, "lobby", "--addr", c.Node(0).URL(), "--transport", transport)
			waitFor(t, "the first counts", func() bool { return strings.Contains(out.String(), "lobby  viewers") })
			// The monitor observes: it is not counted itself.
			if !strings.HasSuffix(out.String(), "lobby  viewers 0  users 0\n") {
				t.Fatalf("first line: %q", out.String())
			}
			// An owner far from the ones the gateway mints (until owners come from one place).
			if _, err := c.Node(0).Tracker().Track(tracker.Owner(1<<40), "lobby", "u1", nil); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the change", func() bool { return strings.Contains(out.String(), "lobby  viewers 0  users 1\n") })
		})
	}
}

func TestMonitorReadsTheEventStream(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/topics/{topic}/events", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("topic") != "video:7" || r.URL.Query().Get("token") != "tok" {
			http.Error(w, "unexpected request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, ": heartbeat\n\n")
		fmt.Fprint(w, "event: presence_state\ndata: {\"viewers\":{\"count\":4},\"users\":{\"count\":2}}\n\n")
		fmt.Fprint(w, "event: presence_diff\ndata: {\"joins\":{\"viewers\":{\"count\":3},\"users\":{\"count\":0}},\"leaves\":{\"viewers\":{\"count\":1},\"users\":{\"count\":1}}}\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close) // after the monitor's cleanup (LIFO): Close waits for its stream
	out, _, _ := monitorBackground(t, "video:7", "--addr", srv.URL, "--token", "tok", "--json")
	waitFor(t, "two lines", func() bool { return strings.Count(out.String(), "\n") >= 2 })
	lines := strings.Split(out.String(), "\n")
	if !strings.Contains(lines[0], `"viewers":{"count":4}`) || !strings.Contains(lines[0], `"users":{"count":2}`) ||
		!strings.Contains(lines[1], `"viewers":{"count":6}`) || !strings.Contains(lines[1], `"users":{"count":1}`) ||
		!strings.Contains(lines[1], `"topic":"video:7"`) {
		t.Fatalf("lines: %q", lines)
	}
}

func TestMonitorStopsWhenRefused(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusForbidden)
	}))
	defer srv.Close()
	r := runCmd(t, nil, "monitor", "secret-room", "--addr", srv.URL, "--token", "bad")
	if r.code != 1 || !strings.Contains(r.stderr, "403") || strings.Contains(r.stderr, "bad") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("exit %d stderr %q, want exit 1, one line with the status and no token", r.code, r.stderr)
	}
}

func TestCountPrinterIgnoresADiffBeforeAState(t *testing.T) {
	var out strings.Builder
	p := &countPrinter{w: &out, topic: "t"}
	if err := p.event("presence_diff", []byte(`{"joins":{"viewers":{"count":1},"users":{"count":0}},"leaves":{"viewers":{"count":0},"users":{"count":0}}}`)); err != nil || out.Len() != 0 {
		t.Fatalf("diff before state: %q %v", out.String(), err)
	}
	if err := p.event("presence_state", []byte(`{"viewers":{"count":1},"users":{"count":0}}`)); err != nil || !strings.HasSuffix(out.String(), "t  viewers 1  users 0\n") {
		t.Fatalf("state: %q %v", out.String(), err)
	}
	if err := p.event("presence_state", []byte(`not json`)); err == nil {
		t.Fatal("bad state accepted")
	}
}

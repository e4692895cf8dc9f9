package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fakeNode serves canned answers of the HTTP API and records the paths asked.
func fakeNode(t *testing.T) (*httptest.Server, *[]string) {
	t.Helper()
	var paths []string
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/members", func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"name":"n1","addr":"127.0.0.1:7946","http":"127.0.0.1:4000","status":"alive","epoch":42,"self":true},` +
			`{"name":"n2","addr":"127.0.0.1:7947","http":"127.0.0.1:4001","status":"suspect","epoch":7,"self":false},` +
			`{"name":"n3","addr":"127.0.0.1:7948","http":"127.0.0.1:4002","status":"failed","epoch":9,"self":false,"since":"` +
			time.Now().Add(-90*time.Second).UTC().Format(time.RFC3339Nano) + `"}]`))
	})
	mux.HandleFunc("GET /v1/topics/{topic}", func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.URL.EscapedPath())
		if r.PathValue("topic") == "broken" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(`{"viewers":{"count":3},"users":{"count":2},"connections":{"count":6}}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, &paths
}

func TestMembersTable(t *testing.T) {
	srv, _ := fakeNode(t)
	r := runCmd(t, nil, "members", "--addr", srv.URL)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "SINCE") ||
		!strings.Contains(lines[3], "failed") || !strings.Contains(lines[3], "1m30s ago") || !strings.Contains(lines[1], " - ") ||
		!strings.Contains(lines[1], "n1 (self)") || !strings.Contains(lines[1], "alive") || !strings.Contains(lines[1], "42") ||
		!strings.Contains(lines[2], "n2") || !strings.Contains(lines[2], "suspect") || !strings.Contains(lines[2], "127.0.0.1:4001") {
		t.Fatalf("table:\n%s", r.stdout)
	}
}

func TestMembersJSONAndHostPortAddr(t *testing.T) {
	srv, _ := fakeNode(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	r := runCmd(t, map[string]string{"HEADCOUNT_ADDR": addr}, "members", "--json")
	if r.code != 0 || !strings.HasPrefix(r.stdout, `[{"name":"n1"`) {
		t.Fatalf("got %+v", r)
	}
}

func TestCount(t *testing.T) {
	srv, paths := fakeNode(t)
	r := runCmd(t, nil, "count", "--addr", srv.URL, "room/42")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"viewers      3", "users        2", "connections  6"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output %q lacks %q", r.stdout, want)
		}
	}
	if got := (*paths)[0]; got != "/v1/topics/room%2F42" {
		t.Errorf("path = %q, want the topic escaped as one segment", got)
	}
}

func TestCountErrors(t *testing.T) {
	srv, _ := fakeNode(t)
	if r := runCmd(t, nil, "count", "--addr", srv.URL); r.code != 2 || !strings.Contains(r.stderr, "TOPIC") {
		t.Errorf("no topic: %+v", r)
	}
	if r := runCmd(t, nil, "count", "--addr", srv.URL, "broken"); r.code != 1 || !strings.Contains(r.stderr, "500") {
		t.Errorf("server error: %+v", r)
	}
	srv.Close()
	if r := runCmd(t, nil, "count", "--addr", srv.URL, "x"); r.code != 1 || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("node down: %+v", r)
	}
	if r := runCmd(t, nil, "members", "--addr", "http://"); r.code != 2 {
		t.Errorf("bad addr: %+v", r)
	}
}

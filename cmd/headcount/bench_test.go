package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

// TestBenchSmallRuns runs every benchmark at a tiny size and checks the
// report's shape; the numbers themselves are not asserted (timing belongs to
// benchmarks, not unit tests).
func TestBenchSmallRuns(t *testing.T) {
	r := runCmd(t, nil, "bench", "--json", "--network", "mem", "--nodes", "2",
		"--samples", "3", "--profile", "local", "--rounds", "1", "--presences", "5",
		"--ws-clients", "5", "--ws-changes", "2", "--ws-churn", "100ms")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	wantSamples := map[string]int{
		"track visible on all 2 nodes":                3,
		"untrack visible on all 2 nodes":              3,
		"crashed node's presences gone everywhere":    1,
		"stopped node's presences gone everywhere":    1,
		"count change delivered, per socket":          10,
		"count change delivered to every socket":      2,
		"floor (write(2)): one frame to a socket":     10,
		"floor (write(2)): one frame to every socket": 2,
		"floor (io_uring): one frame to a socket":     10, // Linux only
		"floor (io_uring): one frame to every socket": 2,
		"fan-out / floor, every socket":               2,
		"fan-out / floor, CPU per frame":              1,
	}
	if runtime.GOOS != "linux" { // no io_uring floor elsewhere
		delete(wantSamples, "floor (io_uring): one frame to a socket")
		delete(wantSamples, "floor (io_uring): one frame to every socket")
	}
	if len(rep.Results) != len(wantSamples) {
		t.Fatalf("%d results, want %d: %+v", len(rep.Results), len(wantSamples), rep.Results)
	}
	for _, res := range rep.Results {
		if res.Name == "fan-out / floor, every socket" { // ratios of percentiles need not be ordered
			if res.Samples != wantSamples[res.Name] || res.P50 <= 0 || res.Max <= 0 {
				t.Errorf("ratio row %+v", res)
			}
			continue
		}
		if want, ok := wantSamples[res.Name]; !ok || res.Samples != want || res.P50 <= 0 || res.Max < res.P99 || res.P99 < res.P50 {
			t.Errorf("result %+v (want %d samples)", res, want)
		}
	}
	if !strings.HasPrefix(rep.Command, "headcount bench --json") {
		t.Errorf("command = %q", rep.Command)
	}
}

func TestBenchTable(t *testing.T) {
	r := runCmd(t, nil, "bench", "--only", "convergence", "--network", "mem", "--nodes", "2", "--samples", "2")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "p99 ms") || !strings.Contains(r.stdout, "track visible on all 2 nodes") {
		t.Fatalf("table:\n%s", r.stdout)
	}
}

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--only", "everything"},
		{"bench", "--nodes", "1"},
		{"bench", "--samples", "0"},
		{"bench", "--network", "wan"},
		{"bench", "--profile", "x"},
		{"bench", "--ws-churn", "-1s"},
	} {
		if r := runCmd(t, nil, args...); r.code != 2 || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q: got %+v", args, r)
		}
	}
}

// A fan-out that does not fit --timeout says so and names the flag, instead of a bare "timed
// out" from the load generator's last phase.
func TestBenchFanoutTimeoutNamesTheFlag(t *testing.T) {
	r := runCmd(t, nil, "bench", "--only", "fanout", "--ws-clients", "200", "--timeout", "1ms")
	if r.code != 1 || !strings.Contains(r.stderr, "did not finish within --timeout 1ms; raise it") {
		t.Fatalf("got %+v", r)
	}
}

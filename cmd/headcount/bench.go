package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/headcount-io/headcount/gossip"
	"github.com/headcount-io/headcount/testcluster"
	"github.com/headcount-io/headcount/tracker"
	"github.com/headcount-io/headcount/wsgateway/wsload"
)

// benchFlags are the flags of 'headcount bench'.
type benchFlags struct {
	nodes     listFlag
	samples   int
	network   string
	profile   string
	rounds    int
	presences int
	fanout    fanoutFlags
	only      listFlag
	json      bool
	timeout   time.Duration
}

// benchReport is the --json output.
type benchReport struct {
	Machine string        `json:"machine"`
	Command string        `json:"command"`
	Results []benchResult `json:"results"`
}

// runBench runs the chosen benchmarks and prints a table (or JSON).
func runBench(ctx context.Context, e *env, args []string) error {
	b := benchFlags{}
	fs := newFlagSet(e, "bench [flags]")
	fs.Var(&b.nodes, "nodes", "cluster sizes for the convergence runs (comma-separated; default 3,5)")
	fs.IntVar(&b.samples, "samples", 200, "tracks (and untracks) measured per cluster size")
	fs.StringVar(&b.network, "network", "loopback", "cluster network: loopback (real UDP/TCP on 127.0.0.1) or mem (in-memory)")
	fs.StringVar(&b.profile, "profile", "lan", "gossip timing profile of the failover runs: lan or local")
	fs.IntVar(&b.rounds, "rounds", 3, "crashes and graceful stops measured")
	fs.IntVar(&b.presences, "presences", 1000, "presences held by the node that fails")
	fs.IntVar(&b.fanout.clients, "ws-clients", 2000, "WebSocket sockets in the fan-out topic")
	fs.IntVar(&b.fanout.changes, "ws-changes", 20, "count changes measured in the fan-out run")
	fs.DurationVar(&b.fanout.churn, "ws-churn", 2*time.Second, "how long to churn the fan-out topic to measure frames/s (0 = skip)")
	fs.StringVar(&b.fanout.url, "ws-url", "", "fan-out against this gateway (ws://host:port/socket/websocket; run it with --max-conns-per-ip 0) instead of one in this process")
	fs.Var(&b.only, "only", "benchmarks to run: convergence, failover, fanout (comma-separated; default all)")
	fs.BoolVar(&b.json, "json", false, "print JSON instead of a table")
	fs.DurationVar(&b.timeout, "timeout", time.Minute, "longest wait for one outcome, and for the whole fan-out run")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	sizes, err := b.sizes()
	if err != nil {
		return err
	}
	run, err := b.selected()
	if err != nil {
		return err
	}
	if b.samples < 1 || b.rounds < 1 || b.presences < 1 || b.fanout.clients < 1 || b.fanout.changes < 1 || b.fanout.churn < 0 || b.timeout <= 0 {
		return usagef("--samples, --rounds, --presences, --ws-clients, --ws-changes and --timeout must be positive")
	}
	if b.network != "loopback" && b.network != "mem" {
		return usagef("--network %q: want loopback or mem", b.network)
	}
	if b.profile != "lan" && b.profile != "local" {
		return usagef("--profile %q: want lan or local", b.profile)
	}

	var results []benchResult
	progress := func(what string) {
		if !b.json {
			fmt.Fprintf(e.stderr, "running %s...\n", what)
		}
	}
	if run["convergence"] {
		for _, n := range sizes {
			progress(fmt.Sprintf("convergence, %d nodes", n))
			c, err := b.cluster(n, gossip.LocalConfig)
			if err != nil {
				return err
			}
			track, untrack, err := benchConvergence(ctx, c, b.samples, b.timeout)
			_ = c.Close()
			if err != nil {
				return fmt.Errorf("convergence, %d nodes: %w", n, err)
			}
			note := b.network + ", local profile"
			results = append(results,
				summarize(fmt.Sprintf("track visible on all %d nodes", n), track, note),
				summarize(fmt.Sprintf("untrack visible on all %d nodes", n), untrack, note))
		}
	}
	if run["failover"] {
		progress("failover")
		profile := gossip.DefaultConfig
		if b.profile == "local" {
			profile = gossip.LocalConfig
		}
		c, err := b.cluster(3, profile)
		if err != nil {
			return err
		}
		crash, graceful, err := benchFailover(ctx, c, b.rounds, b.presences, b.timeout)
		_ = c.Close()
		if err != nil {
			return fmt.Errorf("failover: %w", err)
		}
		note := fmt.Sprintf("3 nodes, %s, %s profile, %d presences", b.network, b.profile, b.presences)
		results = append(results,
			summarize("crashed node's presences gone everywhere", crash, note),
			summarize("stopped node's presences gone everywhere", graceful, note))
	}
	if run["fanout"] {
		progress(fmt.Sprintf("WebSocket fan-out, %d sockets", b.fanout.clients))
		rows, err := benchFanout(ctx, b.fanout, b.timeout)
		if timedOut(err) {
			// --timeout bounds the whole run (open, rounds, churn); thousands of sockets need more.
			return fmt.Errorf("fan-out: %w: %d sockets did not finish within --timeout %v; raise it", err, b.fanout.clients, b.timeout)
		}
		if err != nil {
			return fmt.Errorf("fan-out: %w", err)
		}
		results = append(results, rows...)
	}
	return b.print(e.stdout, "headcount bench "+strings.Join(args, " "), results)
}

// timedOut reports whether err comes from the run's deadline: a phase of the load generator
// out of time, or a dial or read cut short by it.
func timedOut(err error) bool {
	var ne net.Error
	return errors.Is(err, wsload.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// sizes returns the cluster sizes of --nodes.
func (b *benchFlags) sizes() ([]int, error) {
	if len(b.nodes.values) == 0 {
		return []int{3, 5}, nil
	}
	var out []int
	for _, v := range b.nodes.values {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 || n > 64 {
			return nil, usagef("--nodes %q: want cluster sizes from 2 to 64", v)
		}
		out = append(out, n)
	}
	return out, nil
}

// selected returns the benchmarks chosen with --only.
func (b *benchFlags) selected() (map[string]bool, error) {
	all := map[string]bool{"convergence": true, "failover": true, "fanout": true}
	if len(b.only.values) == 0 {
		return all, nil
	}
	run := map[string]bool{}
	for _, v := range b.only.values {
		if !all[v] {
			return nil, usagef("--only %q: want convergence, failover or fanout", v)
		}
		run[v] = true
	}
	return run, nil
}

// cluster starts an n-node testcluster with the given gossip profile.
func (b *benchFlags) cluster(n int, profile func() gossip.Config) (*testcluster.Cluster, error) {
	c, err := testcluster.New(testcluster.Options{
		Nodes:    n,
		Loopback: b.network == "loopback",
		Gossip:   func(int) gossip.Config { return profile() },
		Tracker:  func(int) tracker.Config { return tracker.LocalConfig() },
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	if err := waitMembers(ctx, c, n); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// waitMembers waits until every node of c sees n live members.
func waitMembers(ctx context.Context, c *testcluster.Cluster, n int) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := true
		for _, node := range c.Live() {
			if node.Gossip().NumMembers() != n {
				ok = false
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster of %d did not form: %w", n, ctx.Err())
		case <-tick.C:
		}
	}
}

func (b *benchFlags) print(w io.Writer, command string, results []benchResult) error {
	machine := fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	if b.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(benchReport{Machine: machine, Command: strings.TrimSpace(command), Results: results})
	}
	fmt.Fprintf(w, "%s\non %s\n\n", strings.TrimSpace(command), machine)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "what\tn\tp50 ms\tp90 ms\tp99 ms\tmax ms\tsetup\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n", r.Name, r.Samples, r.P50, r.P90, r.P99, r.Max, r.Note)
	}
	return tw.Flush()
}

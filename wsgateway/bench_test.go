package wsgateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/headcount-io/headcount/wsgateway/wsload"
)

// The benchmarks run the gateway in this process and the sockets' clients in a child process
// (this test binary again, in load generator mode), so that the memory per connection is the
// server's alone and each process stays within RLIMIT_NOFILE. Run them one at a time:
//
//	go test -run '^$' -bench 'Fanout20k|JoinStorm5k' -benchtime 1x -timeout 30m ./wsgateway/
//
// WSGATEWAY_BENCH_CONNS overrides the number of sockets of the fan-out benchmark.

const loadgenEnv = "WSGATEWAY_LOADGEN"

// loadgenSpec is what the benchmark asks its load generator child to do.
type loadgenSpec struct {
	Mode   string // "fanout" or "storm"
	Fanout wsload.Config
	Storm  wsload.StormConfig
}

// raiseNoFile lifts the soft RLIMIT_NOFILE to the hard limit and returns it.
func raiseNoFile() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 1024
	}
	lim.Cur = lim.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	return lim.Cur
}

// loadgenChild runs one wsload phase as told by the environment and prints its result as
// JSON. In fan-out mode it prints "JOINED" once every socket is joined and waits for a line
// on stdin before timing anything, so the parent can sample its memory.
func loadgenChild() int {
	raiseNoFile()
	if path := os.Getenv("WSLOAD_CPUPROFILE"); path != "" { // to see where the client's time goes
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	var spec loadgenSpec
	if err := json.Unmarshal([]byte(os.Getenv(loadgenEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 2
	}
	ctx := context.Background()
	var res any
	var err error
	switch spec.Mode {
	case "fanout":
		stdin := bufio.NewReader(os.Stdin)
		spec.Fanout.AfterJoin = func(context.Context) error {
			fmt.Println("JOINED")
			_, err := stdin.ReadString('\n')
			return err
		}
		res, err = wsload.Run(ctx, spec.Fanout)
	case "storm":
		res, err = wsload.Storm(ctx, spec.Storm)
	default:
		err = fmt.Errorf("unknown mode %q", spec.Mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		return 1
	}
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
	return 0
}

// benchGateway serves a gateway with limits opened for load on loopback.
func benchGateway(b *testing.B) (*Gateway, string) {
	tr := newTracker(b)
	cfg := DefaultConfig()
	cfg.Tracker = tr
	cfg.MaxConns, cfg.MaxConnsPerIP = 0, 0
	cfg.JoinRate, cfg.JoinBurst = 1e6, 1e6
	if s := os.Getenv("WSGATEWAY_BENCH_COALESCE"); s != "" { // e.g. 150ms: the window's trade-off
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatal(err)
		}
		cfg.CoalesceWindow = d
	}
	g, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			b.Error(err)
		}
		srv.Close()
	})
	return g, "ws" + strings.TrimPrefix(srv.URL, "http") + "/socket/websocket"
}

// startLoadgen launches the child; it returns its stdout lines and the command.
func startLoadgen(b *testing.B, spec loadgenSpec) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
	js, err := json.Marshal(spec)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), loadgenEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return cmd, bufio.NewScanner(out), in
}

func readResult(b *testing.B, lines *bufio.Scanner, cmd *exec.Cmd, into any) {
	for lines.Scan() {
		if js, ok := strings.CutPrefix(lines.Text(), "RESULT "); ok {
			if err := json.Unmarshal([]byte(js), into); err != nil {
				b.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				b.Fatal(err)
			}
			return
		}
	}
	_ = cmd.Wait()
	b.Fatal("load generator failed (see its stderr)")
}

func serverMemory() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkFanout20k: 20k sockets (fewer if RLIMIT_NOFILE is lower) in one topic on one
// node; the time from a count change to its presence_diff at every socket, the server's
// memory per idle socket, and the frames per second pushed under churn.
func BenchmarkFanout20k(b *testing.B) {
	limit := raiseNoFile()
	conns := min(20000, int(limit)-400) // the probes, churners and listener need fds too
	if s := os.Getenv("WSGATEWAY_BENCH_CONNS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		conns = n
	}
	for i := 0; i < b.N; i++ {
		g, url := benchGateway(b)
		cfg := wsload.DefaultConfig(url)
		cfg.Conns, cfg.Changes, cfg.ChurnDuration, cfg.Timeout = conns, 30, 3*time.Second, 20*time.Minute
		before := sampleProc(true)
		cmd, lines, stdin := startLoadgen(b, loadgenSpec{Mode: "fanout", Fanout: cfg})
		for lines.Scan() && lines.Text() != "JOINED" {
		}
		idle := g.Connections() // watchers and the probes, all open and idle
		joined := sampleProc(true)
		framesBefore := float64(g.metrics.framesOut.Load())
		if path := os.Getenv("WSGATEWAY_HEAPPROFILE"); path != "" {
			if f, err := os.Create(path); err == nil {
				_ = pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		fmt.Fprintln(stdin)
		var res wsload.Result
		readResult(b, lines, cmd, &res)
		end := sampleProc(false)
		b.Logf("%s", res)
		reportIdle(b, before, joined, idle)
		reportPerFrame(b, joined, end, float64(g.metrics.framesOut.Load())-framesBefore)
		b.ReportMetric(float64(res.Conns), "sockets")
		b.ReportMetric(ms(res.Delivery.P50), "delivery-p50-ms")
		b.ReportMetric(ms(res.Delivery.P99), "delivery-p99-ms")
		b.ReportMetric(ms(res.Everyone.P50), "all-sockets-p50-ms")
		b.ReportMetric(ms(res.Everyone.P99), "all-sockets-p99-ms")
		b.ReportMetric(res.BurstFramesPerSec, "burst-frames/s")
		b.ReportMetric(res.FramesPerSec, "churn-frames/s")
		b.ReportMetric(res.OpenRate, "opens/s")
		// What opening cost the server: every join is a count change pushed to the sockets
		// already in the topic, so a gateway that pushes sooner writes more frames per open.
		b.ReportMetric(framesBefore/float64(conns), "open-frames/socket")
		b.ReportMetric(float64(joined.cpu-before.cpu)/float64(time.Microsecond)/float64(conns), "open-cpu-us/socket")
	}
}

// BenchmarkJoinStorm5k: 5000 sockets arrive in one second (dial, upgrade, join).
func BenchmarkJoinStorm5k(b *testing.B) {
	raiseNoFile()
	for i := 0; i < b.N; i++ {
		_, url := benchGateway(b)
		cfg := wsload.DefaultStormConfig(url)
		cmd, lines, _ := startLoadgen(b, loadgenSpec{Mode: "storm", Storm: cfg})
		var res wsload.StormResult
		readResult(b, lines, cmd, &res)
		b.Logf("%s", res)
		b.ReportMetric(res.JoinsPerSec, "joins/s")
		b.ReportMetric(ms(res.Join.P50), "join-p50-ms")
		b.ReportMetric(ms(res.Join.P99), "join-p99-ms")
		b.ReportMetric(ms(res.Joined), "all-joined-ms")
		b.ReportMetric(ms(res.Settled), "all-counted-ms")
		b.ReportMetric(float64(res.Frames), "diff-frames")
	}
}

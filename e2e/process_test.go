package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Bounds for eventual outcomes; generous because CI machines are slow and loaded.
const (
	startBound    = 30 * time.Second // a process is ready
	convergeBound = 30 * time.Second // counts agree with the truth
	exitBound     = 20 * time.Second // a process exits after SIGTERM
)

// agentProc is one `headcount agent` child process.
type agentProc struct {
	name          string
	gossip, http  string // host:port
	args          []string
	cmd           *exec.Cmd
	exited        chan struct{}
	exitErr       error
	log           *syncBuffer
	restartsCount int
	netns         string // run inside this network namespace (netLab), "" = this one
}

// syncBuffer is a bytes.Buffer safe for the child's writer and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePort returns a loopback port that is free for both TCP and UDP (the
// gossip port needs both). It looks below Linux's ephemeral range (32768
// up), so outgoing connections on a busy machine cannot take the port
// between this check and the agent binding it.
func freePort(t *testing.T) int {
	t.Helper()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", addr)
		_ = ln.Close()
		if err == nil {
			_ = pc.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// newAgent prepares (but does not start) an agent with fresh loopback ports.
func newAgent(t *testing.T, name string, extra ...string) *agentProc {
	t.Helper()
	gossip := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	http := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	return newAgentAt(t, "", name, gossip, http, append([]string{"--profile", "local"}, extra...)...)
}

// newAgentAt prepares (but does not start) an agent in network namespace netns ("" = this one)
// with the given gossip and HTTP addresses. The cleanup kills it and checks its log for races.
func newAgentAt(t *testing.T, netns, name, gossip, http string, extra ...string) *agentProc {
	t.Helper()
	p := &agentProc{name: name, gossip: gossip, http: http, log: &syncBuffer{}, netns: netns}
	p.args = append([]string{"agent", "--name", name, "--bind", p.gossip, "--http", p.http,
		"--shutdown-timeout", "10s", "--log-level", "debug"}, extra...)
	t.Cleanup(func() {
		p.kill()
		if strings.Contains(p.log.String(), "WARNING: DATA RACE") {
			t.Errorf("the race detector found a data race in %s", p.name)
		}
		if t.Failed() {
			t.Logf("---- log of %s ----\n%s", p.name, p.log.String())
		}
	})
	return p
}

// start launches the process and waits until /readyz answers 200.
func (p *agentProc) start(t *testing.T, join ...string) {
	t.Helper()
	args := p.args
	for _, j := range join {
		args = append(args, "--join", j)
	}
	if p.netns != "" {
		p.cmd = exec.Command("ip", append([]string{"netns", "exec", p.netns, binary}, args...)...) // ip execs the agent: same pid
	} else {
		p.cmd = exec.Command(binary, args...)
	}
	p.cmd.Env = cleanEnv()
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	fmt.Fprintf(p.log, "==== start #%d: %v\n", p.restartsCount, args)
	p.restartsCount++
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) {
		p.exitErr = cmd.Wait()
		close(exited)
	}(p.cmd, p.exited)
	eventually(t, startBound, p.name+" ready", func() error {
		select {
		case <-p.exited:
			return errStop{fmt.Errorf("%s exited: %v", p.name, p.exitErr)}
		default:
		}
		code, _, err := get(p.http, "/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/readyz = %d", code)
		}
		return nil
	})
}

// cleanEnv is this process's environment without HEADCOUNT_* variables, so
// the agents see only the flags the test gives them.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HEADCOUNT_") {
			out = append(out, kv)
		}
	}
	return out
}

// signal sends sig to the process.
func (p *agentProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s to %s: %v", sig, p.name, err)
	}
}

// waitExit waits for the process to end and returns its exit code.
func (p *agentProc) waitExit(t *testing.T, bound time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(bound):
		t.Fatalf("%s did not exit within %s", p.name, bound)
	}
	var ee *exec.ExitError
	if errors.As(p.exitErr, &ee) {
		return ee.ExitCode()
	}
	if p.exitErr != nil {
		t.Fatalf("%s: %v", p.name, p.exitErr)
	}
	return 0
}

// kill ends the process with SIGKILL if it is still running and reaps it.
func (p *agentProc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// httpClient dials through nsDial, so it reaches agents inside a netLab's namespaces too; no
// keep-alives, so no connection outlives a test.
var httpClient = &http.Client{Transport: &http.Transport{DialContext: nsDial, DisableKeepAlives: true}}

// get fetches http://addr+path with a short timeout.
func get(addr, path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes(), err
}

// errStop ends an eventually loop at once.
type errStop struct{ error }

// eventually retries cond until it returns nil, failing the test with the
// last error after bound.
func eventually(t *testing.T, bound time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		err := cond()
		if err == nil {
			return
		}
		var stop errStop
		if errors.As(err, &stop) || time.Now().After(deadline) {
			t.Fatalf("%s: not true within %s: %v", what, bound, err)
		}
		time.Sleep(50 * time.Millisecond) // poll interval, not synchronisation
	}
}

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const topic = "room:e2e"

// expectCounts waits until every node in nodes reports want for topic.
func expectCounts(t *testing.T, step string, want [2]int, nodes ...*agentProc) {
	t.Helper()
	expectCountsWithin(t, convergeBound, step, want, nodes...)
}

// expectCountsWithin is expectCounts with another bound.
func expectCountsWithin(t *testing.T, bound time.Duration, step string, want [2]int, nodes ...*agentProc) {
	t.Helper()
	for _, n := range nodes {
		eventually(t, bound, fmt.Sprintf("%s: counts on %s", step, n.name), func() error {
			got, err := topicCounts(n.http, topic)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("viewers/users = %v, want %v", got, want)
			}
			return nil
		})
	}
}

// expectSeen waits until every client has been told want over its socket.
func expectSeen(t *testing.T, step string, want [2]int, clients ...*wsClient) {
	t.Helper()
	for i, c := range clients {
		eventually(t, convergeBound, fmt.Sprintf("%s: counts pushed to client %d", step, i), func() error {
			if got := c.seen(); got != want {
				return fmt.Errorf("client sees %v, want %v", got, want)
			}
			return nil
		})
	}
}

// expectAlive waits until node sees exactly the named members alive.
func expectAlive(t *testing.T, node *agentProc, names ...string) {
	t.Helper()
	eventually(t, convergeBound, "members of "+node.name, func() error {
		_, body, err := get(node.http, "/v1/members")
		if err != nil {
			return err
		}
		var view struct {
			Members []struct{ Name, Status string }
		}
		if err := json.Unmarshal(body, &view); err != nil {
			return err
		}
		var alive []string
		for _, m := range view.Members {
			if m.Status == "alive" {
				alive = append(alive, m.Name)
			}
		}
		if strings.Join(alive, ",") != strings.Join(names, ",") {
			return fmt.Errorf("alive = %v, want %v", alive, names)
		}
		return nil
	})
}

// TestClusterCrashRestartAndGracefulStop runs three agents and checks the
// counts on the survivors after kill -9, a restart and a SIGTERM.
func TestClusterCrashRestartAndGracefulStop(t *testing.T) {
	secret := []byte("e2e-secret-" + t.Name())
	secretFile := filepath.Join(t.TempDir(), "jwt")
	if err := os.WriteFile(secretFile, append([]byte("  "), append(secret, '\n')...), 0o600); err != nil {
		t.Fatal(err)
	}
	a := newAgent(t, "a", "--jwt-secret-file", secretFile)
	b := newAgent(t, "b", "--jwt-secret-file", secretFile)
	c := newAgent(t, "c", "--jwt-secret-file", secretFile)
	a.start(t, b.gossip, c.gossip) // seeds not up yet: retried until they answer
	b.start(t, a.gossip)
	// A DNS name works as a seed, mixed with an address in one comma-separated value.
	_, aPort, _ := net.SplitHostPort(a.gossip)
	c.start(t, "localhost:"+aPort+","+b.gossip)
	for _, n := range []*agentProc{a, b, c} {
		expectAlive(t, n, "a", "b", "c")
	}

	alice, bob := token(t, secret, "alice"), token(t, secret, "bob")
	// a: 2 viewers + alice; b: 3 viewers + alice (same user, counts once); c: 1 viewer + bob.
	var onA, onB, onC []*wsClient
	for range 2 {
		onA = append(onA, dial(t, a.http, topic, ""))
	}
	onA = append(onA, dial(t, a.http, topic, alice))
	for range 3 {
		onB = append(onB, dial(t, b.http, topic, ""))
	}
	onB = append(onB, dial(t, b.http, topic, alice))
	onC = append(onC, dial(t, c.http, topic, ""), dial(t, c.http, topic, bob))
	expectCounts(t, "all up", [2]int{6, 2}, a, b, c)
	expectSeen(t, "all up", [2]int{6, 2}, append(append(onA, onB...), onC...)...)

	// kill -9 c: its presences leave every survivor's counts.
	c.signal(t, syscall.SIGKILL)
	c.waitExit(t, exitBound)
	expectCounts(t, "c crashed", [2]int{5, 1}, a, b)
	expectSeen(t, "c crashed", [2]int{5, 1}, append(onA, onB...)...)
	// headcount members lists the crashed node as failed, with since when (issue 14).
	eventually(t, convergeBound, "c listed as failed by headcount members", func() error {
		out, err := exec.Command(binary, "members", "--addr", a.http).CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); err == nil && len(f) > 3 && f[0] == "c" && f[1] == "failed" && f[3] == "ago" {
				return nil
			}
		}
		return fmt.Errorf("headcount members: %v\n%s", err, out)
	})

	// restart c with the same name and ports: a new incarnation, no ghosts.
	c.start(t, a.gossip, b.gossip)
	expectAlive(t, a, "a", "b", "c")
	expectCounts(t, "c restarted, no clients yet", [2]int{5, 1}, a, b, c)
	onC = []*wsClient{dial(t, c.http, topic, ""), dial(t, c.http, topic, bob)}
	expectCounts(t, "c restarted", [2]int{6, 2}, a, b, c)
	expectSeen(t, "c restarted", [2]int{6, 2}, append(append(onA, onB...), onC...)...)

	// SIGTERM b: it exits 0, closes its sockets with 1001 (going away, so
	// clients reconnect elsewhere), and the survivors drop its presences.
	b.signal(t, syscall.SIGTERM)
	for i, cl := range onB {
		if code := cl.closedWith(t, exitBound); code != websocket.CloseGoingAway {
			t.Errorf("client %d of b: close code %d, want %d", i, code, websocket.CloseGoingAway)
		}
	}
	if code := b.waitExit(t, exitBound); code != 0 {
		t.Errorf("b exit code %d after SIGTERM, want 0", code)
	}
	expectCounts(t, "b stopped", [2]int{3, 2}, a, c)
	expectSeen(t, "b stopped", [2]int{3, 2}, append(onA, onC...)...)
	expectAlive(t, a, "a", "c")

	// The client subcommands read the same numbers.
	out, err := exec.Command(binary, "count", "--addr", c.http, topic).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "viewers      3") || !strings.Contains(string(out), "users        2") {
		t.Errorf("headcount count: %v\n%s", err, out)
	}
	out, err = exec.Command(binary, "members", "--addr", a.http).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "a (self)") || !strings.Contains(string(out), "c ") {
		t.Errorf("headcount members: %v\n%s", err, out)
	}

	for _, n := range []*agentProc{a, c} {
		n.signal(t, syscall.SIGTERM)
	}
	for _, n := range []*agentProc{a, c} {
		if code := n.waitExit(t, exitBound); code != 0 {
			t.Errorf("%s exit code %d after SIGTERM, want 0", n.name, code)
		}
	}
}

// TestAgentStartupErrors checks the one-line errors and exit codes of a
// misconfigured agent.
func TestAgentStartupErrors(t *testing.T) {
	busy := newAgent(t, "busy")
	busy.start(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"http port in use", []string{"agent", "--name", "x", "--bind", "127.0.0.1:0", "--http", busy.http}, 1, "address already in use"},
		{"gossip port in use", []string{"agent", "--name", "x", "--bind", busy.gossip, "--http", "127.0.0.1:0"}, 1, "--bind"},
		{"unknown flag", []string{"agent", "--nmae", "x"}, 2, "-nmae"},
		{"missing key file", []string{"agent", "--gossip-key-file", "/nonexistent/key"}, 1, "--gossip-key-file"},
		// Issue 10: gossip without a key is open to anyone who can reach the port.
		{"open gossip on every interface", []string{"agent", "--name", "x", "--bind", "0.0.0.0:0", "--advertise", "10.1.2.3", "--http", "127.0.0.1:0"}, 1, "--insecure-gossip"},
		{"open gossip on an interface", []string{"agent", "--name", "x", "--bind", "10.1.2.3:0", "--http", "127.0.0.1:0"}, 1, "--gossip-key-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary, tc.args...)
			cmd.Env = cleanEnv()
			out, err := runBounded(cmd, exitBound)
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			last := lines[len(lines)-1]
			if code != tc.code || !strings.Contains(last, tc.want) || !strings.HasPrefix(last, "headcount agent: ") {
				t.Errorf("exit %d, last line %q; want exit %d and a line with %q\n%s", code, last, tc.code, tc.want, out)
			}
		})
	}
}

// runBounded runs cmd, killing it after bound.
func runBounded(cmd *exec.Cmd, bound time.Duration) ([]byte, error) {
	var buf syncBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	timer := time.AfterFunc(bound, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	err := cmd.Wait()
	return []byte(buf.String()), err
}

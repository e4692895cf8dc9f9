package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// keygen runs `headcount keygen`.
func keygen(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(binary, "keygen").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// TestEncryptedClusterRotatesKeysOnSIGHUP forms an encrypted cluster, rotates
// its key in the three documented steps with SIGHUP, and shows the new key is
// the one in use: a node that knows only the new key joins.
func TestEncryptedClusterRotatesKeysOnSIGHUP(t *testing.T) {
	oldKey, newKey := keygen(t), keygen(t)
	dir := t.TempDir()
	keyFile := func(name string, keys ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(keys, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shared := keyFile("cluster.key", oldKey)
	a := newAgent(t, "a", "--gossip-key-file", shared)
	b := newAgent(t, "b", "--gossip-key-file", shared)
	a.start(t)
	b.start(t, a.gossip)
	expectAlive(t, a, "a", "b")

	for step, keys := range [][]string{{oldKey, newKey}, {newKey, oldKey}, {newKey}} {
		keyFile("cluster.key", keys...)
		for _, n := range []*agentProc{a, b} {
			before := strings.Count(n.log.String(), "gossip keys reloaded")
			n.signal(t, syscall.SIGHUP)
			eventually(t, startBound, fmt.Sprintf("step %d: %s reloads its keys", step+1, n.name), func() error {
				if strings.Count(n.log.String(), "gossip keys reloaded") == before {
					return fmt.Errorf("no reload logged")
				}
				return nil
			})
		}
	}
	c := newAgent(t, "c", "--gossip-key-file", keyFile("new-only.key", newKey))
	c.start(t, a.gossip)
	expectAlive(t, a, "a", "b", "c")
	expectAlive(t, c, "a", "b", "c")
}

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// A netLab is a small network of Linux network namespaces made for one test: a hub namespace
// with a bridge, and one namespace per host with a veth pair into the bridge and an address
// 10.213.S.H/24 (S unique per lab). Agents run inside a host's namespace (`ip netns exec`), so
// each has its own IP stack and iptables, and faults are injected with iptables there. The test
// process stays in its own namespace; it reaches the agents' HTTP ports by dials made from inside
// the hosts' namespaces (nsDial). Everything is removed by t.Cleanup, on failure too.
//
// It needs root, ip (iproute2) and iptables; .ci/run installs them.
type netLab struct {
	t      *testing.T
	prefix string // namespace and interface name prefix, unique per lab
	subnet int    // S of 10.213.S.0/24
	hub    string
	hosts  int
}

var labSeq atomic.Uint32

// newNetLab creates the hub; add hosts with host.
func newNetLab(t *testing.T) *netLab {
	t.Helper()
	k := labSeq.Add(1)
	l := &netLab{t: t, subnet: int((uint32(os.Getpid())*7 + k) % 250)}
	l.prefix = fmt.Sprintf("hc%d%d", os.Getpid()%10000, k)
	l.hub = l.prefix + "hub"
	l.run("ip", "netns", "add", l.hub)
	t.Cleanup(func() { l.runQuiet("ip", "netns", "del", l.hub) })
	l.inNS(l.hub, "ip", "link", "add", "br0", "type", "bridge")
	l.inNS(l.hub, "ip", "link", "set", "br0", "up")
	return l
}

// host creates host i's namespace (i from 1) and returns its name and IP.
func (l *netLab) host(i int) (ns, ip string) {
	l.t.Helper()
	ns = fmt.Sprintf("%sh%d", l.prefix, i)
	ip = fmt.Sprintf("10.213.%d.%d", l.subnet, i)
	l.run("ip", "netns", "add", ns)
	l.t.Cleanup(func() { l.runQuiet("ip", "netns", "del", ns) })
	veth := fmt.Sprintf("%sv%d", l.prefix, i) // at most 15 bytes
	l.inNS(ns, "ip", "link", "set", "lo", "up")
	l.inNS(ns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", veth)
	l.inNS(ns, "ip", "link", "set", veth, "netns", l.hub)
	l.inNS(l.hub, "ip", "link", "set", veth, "master", "br0", "up")
	l.inNS(ns, "ip", "addr", "add", ip+"/24", "dev", "eth0")
	l.inNS(ns, "ip", "link", "set", "eth0", "up")
	nsDirectory.Store(ip, ns)
	l.t.Cleanup(func() { nsDirectory.Delete(ip) })
	l.hosts++
	return ns, ip
}

// iptables runs iptables in ns.
func (l *netLab) iptables(ns string, args ...string) {
	l.t.Helper()
	l.inNS(ns, append([]string{"iptables", "-w"}, args...)...)
}

func (l *netLab) inNS(ns string, args ...string) {
	l.t.Helper()
	l.run(append([]string{"ip", "netns", "exec", ns}, args...)...)
}

func (l *netLab) run(args ...string) {
	l.t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (l *netLab) runQuiet(args ...string) {
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		l.t.Logf("cleanup: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// nsDirectory maps a lab host's IP to its namespace, for nsDial.
var nsDirectory sync.Map

// nsDial dials addr from inside the namespace of the lab host that owns its IP (inNetns), or
// from this process's namespace for any other address.
func nsDial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	v, ok := nsDirectory.Load(host)
	if !ok {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	var c net.Conn
	err = inNetns(v.(string), func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// listen listens on TCP addr (an IP of host namespace ns) from inside ns: a server in this process, such as a webhook receiver, that the agents reach
// over the lab's network. It is closed by t.Cleanup.
func (l *netLab) listen(ns, addr string) net.Listener {
	l.t.Helper()
	var ln net.Listener
	err := inNetns(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		l.t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	l.t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// inNetns runs fn on an OS thread moved into network namespace ns and back; a socket fn creates
// keeps the namespace it was created in. If the thread cannot be moved back it dies with its
// goroutine, never reused in the wrong namespace.
func inNetns(ns string, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		restored, err := runInNS(ns, fn)
		if restored {
			runtime.UnlockOSThread()
		}
		ch <- err
	}()
	return <-ch
}

// runInNS runs on a locked OS thread: enter ns, run fn, return to the original namespace.
func runInNS(ns string, fn func() error) (restored bool, err error) {
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return true, err
	}
	defer orig.Close()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return true, err
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		return true, fmt.Errorf("setns %s: %w", ns, err)
	}
	err = fn()
	if e := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); e != nil {
		return false, err
	}
	return true, err
}

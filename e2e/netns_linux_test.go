package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/weft-mesh/weft/internal/citest"
)

// podNet is a bridge in the root network namespace with network
// namespaces ("pods") attached by veth pairs, all in one random /24 of
// 10.249.0.0/16 so that concurrent runs do not clash. The root namespace
// (Consul, the control plane, the test) is at hostIP.
type podNet struct {
	id     string
	bridge string
	prefix string // "10.249.N."
	hostIP string
	pods   map[string]string // namespace name by pod name
	ips    map[string]string // pod IP by pod name
}

// requireNetns skips the test unless it can create network namespaces
// and run iptables in them.
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		citest.Missing(t, "transparent proxying needs root: network namespaces and iptables")
	}
	for _, tool := range []string{"ip", "iptables", "iptables-restore", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			citest.Missing(t, fmt.Sprintf("transparent proxying needs %s: %v", tool, err))
		}
	}
}

// newPodNet creates the bridge, deleted (with every pod) when the test
// ends, even when it fails.
func newPodNet(t *testing.T) *podNet {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	n := &podNet{id: id, bridge: "wbr" + id, prefix: fmt.Sprintf("10.249.%d.", b[0]), pods: map[string]string{}, ips: map[string]string{}}
	n.hostIP = n.prefix + "1"
	if out, err := exec.Command("ip", "link", "add", n.bridge, "type", "bridge").CombinedOutput(); err != nil {
		citest.Missing(t, fmt.Sprintf("cannot create a bridge here: %v: %s", err, out))
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", n.bridge).Run() })
	mustRun(t, "ip", "addr", "add", n.hostIP+"/24", "dev", n.bridge)
	mustRun(t, "ip", "link", "set", n.bridge, "up")
	// Bridged traffic passes the root namespace's FORWARD chain when
	// br_netfilter is loaded; let this bridge's through whatever the policy.
	rule := []string{"FORWARD", "-i", n.bridge, "-o", n.bridge, "-j", "ACCEPT"}
	mustRun(t, "iptables", append([]string{"-I"}, rule...)...)
	t.Cleanup(func() { exec.Command("iptables", append([]string{"-D"}, rule...)...).Run() })
	return n
}

// addPod creates namespace "weft-<id>-<name>" at the next address, joined
// to the bridge, with a default route through the host.
func (n *podNet) addPod(t *testing.T, name string) (ns, ip string) {
	t.Helper()
	ns = "weft-" + n.id + "-" + name
	ip = n.prefix + fmt.Sprint(len(n.pods)+2)
	mustRun(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	host, pod := fmt.Sprintf("wh%s%d", n.id, len(n.pods)), fmt.Sprintf("wp%s%d", n.id, len(n.pods))
	mustRun(t, "ip", "link", "add", host, "type", "veth", "peer", "name", pod, "netns", ns)
	t.Cleanup(func() { exec.Command("ip", "link", "del", host).Run() })
	mustRun(t, "ip", "link", "set", host, "master", n.bridge)
	mustRun(t, "ip", "link", "set", host, "up")
	mustRun(t, "ip", "-n", ns, "addr", "add", ip+"/24", "dev", pod)
	mustRun(t, "ip", "-n", ns, "link", "set", pod, "up")
	mustRun(t, "ip", "-n", ns, "link", "set", "lo", "up")
	mustRun(t, "ip", "-n", ns, "route", "add", "default", "via", n.hostIP)
	n.pods[name], n.ips[name] = ns, ip
	return ns, ip
}

// inNetns runs fn on an OS thread switched into namespace ns. The thread
// is never switched back: it ends with fn's goroutine, which stays locked
// to it. Sockets fn creates belong to ns for their whole life.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread enters ns for fn and goes back to the process's own
		// namespace before it is unlocked, so that no other goroutine
		// ever runs in ns on it.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		own, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			errc <- err
			return
		}
		defer own.Close()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		err = fn()
		if back := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); back != nil {
			// The thread cannot be trusted: exit it still locked.
			runtime.LockOSThread()
			err = errors.Join(err, fmt.Errorf("setns back from %s: %w", ns, back))
		}
		errc <- err
	}()
	return <-errc
}

// listenIn listens on addr inside namespace ns.
func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := inNetns(ns, func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialerIn dials from inside namespace ns, as an application there does:
// its connections are subject to the namespace's iptables rules.
func dialerIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := inNetns(ns, func() (err error) {
			conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

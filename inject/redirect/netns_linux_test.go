package redirect

import (
	"bufio"
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
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weft-mesh/weft/internal/citest"
)

// netPair is two network namespaces joined by a veth pair: a "pod", where
// the rules are installed, at podIP, and a "peer" at peerIP.
type netPair struct {
	pod, peer     string
	podIP, peerIP string
}

// newNetPair creates the namespaces, deleted when the test ends. It skips
// the test when this machine cannot create them (not root, no netns).
func newNetPair(t *testing.T) *netPair {
	t.Helper()
	if os.Geteuid() != 0 {
		citest.Missing(t, "needs root to create network namespaces")
	}
	id := randomID(t)
	n := &netPair{pod: "weft-" + id + "-pod", peer: "weft-" + id + "-peer", podIP: "10.248.0.2", peerIP: "10.248.0.1"}
	if out, err := exec.Command("ip", "netns", "add", n.pod).CombinedOutput(); err != nil {
		citest.Missing(t, fmt.Sprintf("no network namespaces here: ip netns add: %v: %s", err, out))
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.pod).Run() })
	mustRun(t, "ip", "netns", "add", n.peer)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.peer).Run() })
	mustRun(t, "ip", "link", "add", "wp"+id, "netns", n.pod, "type", "veth", "peer", "name", "wq"+id, "netns", n.peer)
	for _, side := range []struct{ ns, dev, ip string }{{n.pod, "wp" + id, n.podIP}, {n.peer, "wq" + id, n.peerIP}} {
		mustRun(t, "ip", "-n", side.ns, "addr", "add", side.ip+"/24", "dev", side.dev)
		mustRun(t, "ip", "-n", side.ns, "link", "set", side.dev, "up")
		mustRun(t, "ip", "-n", side.ns, "link", "set", "lo", "up")
	}
	return n
}

// inNetns runs fn on an OS thread switched into namespace ns (as user uid
// for new sockets when uid > 0). The thread is never switched back: it
// ends with fn's goroutine, which stays locked to it.
func inNetns(ns string, uid int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
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
		if uid > 0 {
			unix.Setfsuid(uid) // sockets created by this thread belong to uid
		}
		errc <- fn()
	}()
	return <-errc
}

// listen starts a listener in ns that answers every connection with
// "<name> <original destination>" and closes it. A connection that was
// not redirected has no NAT entry; its destination is its local address.
func listen(t *testing.T, ns, addr, name string) {
	t.Helper()
	var ln net.Listener
	err := inNetns(ns, 0, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			dst, err := originalDst(conn.(*net.TCPConn))
			if errors.Is(err, syscall.ENOENT) { // not NATed: no conntrack entry
				dst = conn.LocalAddr().String()
			} else if err != nil {
				dst = "error: " + err.Error()
			}
			fmt.Fprintf(conn, "%s %s\n", name, dst)
			conn.Close()
		}
	}()
}

// originalDst reads where the client was headed before NAT, as the
// sidecar does: getsockopt(SOL_IP, SO_ORIGINAL_DST) fills a sockaddr_in,
// which fits in the 20 bytes of an IPv6Mreq.
func originalDst(conn *net.TCPConn) (string, error) {
	const soOriginalDst = 80
	raw, err := conn.SyscallConn()
	if err != nil {
		return "", err
	}
	var mreq *syscall.IPv6Mreq
	var sockErr error
	err = raw.Control(func(fd uintptr) {
		mreq, sockErr = syscall.GetsockoptIPv6Mreq(int(fd), syscall.SOL_IP, soOriginalDst)
	})
	if err = errors.Join(err, sockErr); err != nil {
		return "", err
	}
	a := mreq.Multiaddr // sa_family (2 bytes), port (big endian), IPv4 address
	port := int(a[2])<<8 | int(a[3])
	return net.JoinHostPort(net.IP(a[4:8]).String(), fmt.Sprint(port)), nil
}

// dial connects from ns, as uid, to addr and returns the line it reads.
func dial(ns string, uid int, addr string) (string, error) {
	var conn net.Conn
	err := inNetns(ns, uid, func() (err error) {
		conn, err = net.DialTimeout("tcp4", addr, 3*time.Second)
		return err
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line), err
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.CommandContext(context.Background(), name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func randomID(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

package listener

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy/config"
)

func TestTCPEchoTenMiB(t *testing.T) {
	e := newEnv(t, time.Second)
	e.mustApply(runtime(map[string]*config.Cluster{"echo": staticCluster("echo", echoServer(t))},
		tcpListener("l", "127.0.0.1:0", "echo")))
	c := dial(t, e.addr("l"))

	payload := make([]byte, 10<<20)
	rand.Read(payload)
	go func() {
		c.Write(payload)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("echoed %d bytes, want the %d bytes sent, byte for byte", len(got), len(payload))
	}
}

func TestTCPClosesWithoutUpstream(t *testing.T) {
	tests := []struct {
		name    string
		cluster *config.Cluster
	}{
		{"unknown cluster", nil},
		{"no healthy endpoint", &config.Cluster{Name: "c", ConnectTimeout: time.Second, Endpoints: []config.Endpoint{{Address: "127.0.0.1:1", Weight: 1}}}},
		{"connect failure", staticCluster("c", testnet.ClosedPort(t))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, time.Second)
			clusters := map[string]*config.Cluster{}
			if tt.cluster != nil {
				clusters["c"] = tt.cluster
			}
			e.mustApply(runtime(clusters, tcpListener("l", "127.0.0.1:0", "c")))
			if got := readAll(t, dial(t, e.addr("l"))); got != "" {
				t.Errorf("read %q, want the connection closed", got)
			}
		})
	}
}

func TestConfigSwapKeepsOpenConnections(t *testing.T) {
	e := newEnv(t, time.Second)
	echo := echoServer(t)
	e.mustApply(runtime(map[string]*config.Cluster{"echo": staticCluster("echo", echo)},
		tcpListener("l", "127.0.0.1:0", "echo")))
	old := dial(t, e.addr("l"))
	// Wait for the echo so the connection is proxied, not just queued in
	// the kernel's accept backlog, before the config changes.
	io.WriteString(old, "before ")
	buf := make([]byte, len("before "))
	if _, err := io.ReadFull(old, buf); err != nil {
		t.Fatalf("echo before the swap: %v", err)
	}

	// A new config without the old listener: the new one serves new
	// connections while the old connection finishes on the old config.
	e.mustApply(runtime(map[string]*config.Cluster{"echo": staticCluster("echo", echo), "tag": staticCluster("tag", tagServer(t, "new"))},
		tcpListener("renamed", "127.0.0.1:0", "tag")))
	if got := readAll(t, dial(t, e.addr("renamed"))); got != "new" {
		t.Errorf("new connection got %q, want the new cluster's %q", got, "new")
	}
	io.WriteString(old, "after")
	old.(*net.TCPConn).CloseWrite()
	if got := readAll(t, old); got != "after" {
		t.Errorf("connection opened before the swap got %q, want its echo %q", got, "after")
	}
}

func TestRemovedListenerDrains(t *testing.T) {
	e := newEnv(t, wait)
	e.mustApply(runtime(map[string]*config.Cluster{"echo": staticCluster("echo", echoServer(t))},
		tcpListener("l", "127.0.0.1:0", "echo")))
	addr := e.addr("l")
	inflight := dial(t, addr)
	io.WriteString(inflight, "ping ")
	buf := make([]byte, 5)
	if _, err := io.ReadFull(inflight, buf); err != nil {
		t.Fatalf("echo before removal: %v", err)
	}

	e.mustApply(runtime(nil))
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial removed listener: err = %v, want connection refused", err)
	}
	io.WriteString(inflight, "still there")
	inflight.(*net.TCPConn).CloseWrite()
	if got := readAll(t, inflight); got != "still there" {
		t.Errorf("in-flight connection after removal got %q, want its echo", got)
	}
}

func TestDrainTimeoutClosesConnections(t *testing.T) {
	e := newEnv(t, 50*time.Millisecond)
	e.mustApply(runtime(map[string]*config.Cluster{"echo": staticCluster("echo", echoServer(t))},
		tcpListener("l", "127.0.0.1:0", "echo")))
	c := dial(t, e.addr("l"))
	io.WriteString(c, "x")
	io.ReadFull(c, make([]byte, 1))
	e.m.Close() // returns only once the connection is closed
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("connection still open after the drain timeout")
	}
}

func TestBindFailureIsReportedAndChangesNothing(t *testing.T) {
	e := newEnv(t, time.Second)
	clusters := map[string]*config.Cluster{"tag": staticCluster("tag", tagServer(t, "ok"))}
	e.mustApply(runtime(clusters, tcpListener("running", "127.0.0.1:0", "tag")))
	running := e.addr("running")

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	err = e.apply(runtime(clusters,
		tcpListener("fresh", "127.0.0.1:0", "tag"),
		tcpListener("clash", taken.Addr().String(), "tag")))
	if err == nil || !strings.Contains(err.Error(), `listener "clash"`) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("apply error = %v, want it to name listener \"clash\" and the bind error", err)
	}
	got := e.m.Listeners()
	if len(got) != 1 || got[0].Name != "running" {
		t.Errorf("listeners after failed apply = %+v, want only \"running\"", got)
	}
	if got := readAll(t, dial(t, running)); got != "ok" {
		t.Errorf("running listener got %q, want it still serving", got)
	}
}

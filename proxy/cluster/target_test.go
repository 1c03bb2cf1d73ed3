package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/localreply"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
)

// TestTargetMetricsFollowTheConfiguration: a cluster holds the handle of
// its target's gateway metrics from the configuration that names it,
// takes the new target's when it changes, and lets go of it when removed.
func TestTargetMetricsFollowTheConfiguration(t *testing.T) {
	reg := prometheus.NewRegistry()
	mx := metrics.New(reg)
	var acquired []config.Target
	m := NewManager(Options{Target: func(t config.Target) *metrics.Target {
		acquired = append(acquired, t)
		return mx.Target(t.Service, t.Datacenter, t.Peer)
	}})
	api := config.Target{Service: "api", Peer: "dc2"}
	cfg := func(name string, target config.Target) *config.Cluster {
		return &config.Cluster{Name: name, Target: target, Endpoints: []config.Endpoint{{Address: "10.0.0.1:8443", Healthy: true, Weight: 1}}}
	}
	m.Update(map[string]*config.Cluster{"peer": cfg("peer", api), "local": cfg("local", config.Target{})})
	if m.Get("local").TargetMetrics() != nil {
		t.Error("a cluster without a target holds target metrics")
	}
	held := m.Get("peer").TargetMetrics()
	if held == nil {
		t.Fatal("the peer cluster holds no target metrics")
	}
	held.Gateway("mesh-gateway").Connected()
	m.Update(map[string]*config.Cluster{"peer": cfg("peer", api), "local": cfg("local", config.Target{})}) // same target, new config
	if m.Get("peer").TargetMetrics() != held {
		t.Error("an update naming the same target took a new handle")
	}
	m.Update(map[string]*config.Cluster{"peer": cfg("peer", config.Target{Service: "api", Peer: "dc3"})})
	if m.Get("peer").TargetMetrics() == held {
		t.Error("the cluster kept the handle of its previous target")
	}
	if n := seriesOf(t, reg, "weft_proxy_gateway_connections_total"); n != 0 {
		t.Errorf("%d connection series after the target changed, want the old target's gone", n)
	}
	m.Get("peer").TargetMetrics().Gateway("mesh-gateway").Connected()
	m.Update(map[string]*config.Cluster{})
	if n := seriesOf(t, reg, "weft_proxy_gateway_connections_total"); n != 0 {
		t.Errorf("%d connection series after the cluster was removed, want none", n)
	}
	m.Close()
	want := []config.Target{api, {Service: "api", Peer: "dc3"}}
	if len(acquired) != len(want) || acquired[0] != want[0] || acquired[1] != want[1] {
		t.Errorf("acquired %+v, want %+v", acquired, want)
	}
}

func seriesOf(t *testing.T, reg prometheus.Gatherer, family string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == family {
			return len(mf.GetMetric())
		}
	}
	return 0
}

// alertServer answers every ClientHello with a fatal unrecognized_name
// alert, as Weft's mesh gateway answers a server name it routes nowhere.
func alertServer(t *testing.T) string {
	t.Helper()
	return testnet.Serve(t, func(c net.Conn) {
		c.Read(make([]byte, 4096)) // the ClientHello
		c.Write([]byte{21, 3, 3, 0, 2, 2, 112})
		io.Copy(io.Discard, c)
	})
}

// dialErr connects to addr as a cluster with a TLS context does: a dial,
// then the handshake, whose failure is a dial error too.
func dialErr(t *testing.T, addr string) error {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	conn, err := handshake(context.Background(), raw, &tls.Config{ServerName: "api.default.default.dc1.external.dc2.example", InsecureSkipVerify: true}, time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("handshake with %s succeeded", addr)
	}
	return err
}

func TestConnectFailureReason(t *testing.T) {
	refused, alerted := dialErr(t, testnet.ClosedPort(t)), dialErr(t, alertServer(t))
	tests := []struct {
		name   string
		target config.Target
		err    error
		want   localreply.Reason
	}{
		{"local service, refused", config.Target{Service: "api", Datacenter: "dc1"}, refused, localreply.ConnectFailure},
		{"no target, unrecognized_name", config.Target{}, alerted, localreply.ConnectFailure},
		{"a mesh gateway's chain to a local service", config.Target{Service: "api", Datacenter: "dc1", Peer: "dc2"}, refused, localreply.ConnectFailure},
		{"peer's service, refused", config.Target{Service: "api", Peer: "dc2"}, refused, localreply.PeerUnreachable},
		{"peer's service, unrecognized_name", config.Target{Service: "api", Peer: "dc2"}, alerted, localreply.NoExportedService},
		{"peer's service, unrecognized_name in a joined error", config.Target{Service: "api", Peer: "dc2"}, errors.Join(errors.New("first"), alerted), localreply.NoExportedService},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(&config.Cluster{Name: "c", Target: tt.target}, Options{})
			if got := c.ConnectFailureReason(tt.err); got != tt.want {
				t.Errorf("ConnectFailureReason(%v) = %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}

// TestTargetMetricsOnTheRequestPath: reading a cluster's target metrics
// and counting through them allocates nothing once the gateway kind has
// been seen.
func TestTargetMetricsOnTheRequestPath(t *testing.T) {
	mx := metrics.New(prometheus.NewRegistry())
	c := newCluster(&config.Cluster{Name: "peer", Target: config.Target{Service: "api", Peer: "dc2"}},
		Options{Target: func(t config.Target) *metrics.Target { return mx.Target(t.Service, t.Datacenter, t.Peer) }})
	c.TargetMetrics().Gateway("mesh-gateway").Connected()
	if n := testing.AllocsPerRun(1000, func() {
		g := c.TargetMetrics().Gateway("mesh-gateway")
		g.Connected()
		g.Transferred(1, 2)
	}); n != 0 {
		t.Errorf("counting through a cluster's target allocates %v times, want 0", n)
	}
}

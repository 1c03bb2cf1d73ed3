package proxy_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

const (
	echoListener = "echo:127.0.0.1:0"
	apiListener  = "api:127.0.0.1:0"
	echoCluster  = "echo.default.dc1"
	apiCluster   = "api.default.dc1"
)

// mesh describes one control-plane snapshot for the proxy.
type mesh struct {
	echo     []string // echo endpoints; no echo listener when nil
	api      []string // api endpoints
	badStuff bool     // add a cluster and a listener weft-proxy must reject
}

func (m mesh) resources() map[resourcev3.Type][]types.Resource {
	r := map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.HTTPListenerRDS(apiListener, "127.0.0.1:0", "api")},
		resourcev3.RouteType:    {xdstest.RouteConfig("api", apiCluster)},
		resourcev3.ClusterType:  {xdstest.EDSCluster(apiCluster)},
		resourcev3.EndpointType: {loadAssignment(apiCluster, m.api)},
	}
	if m.echo != nil {
		r[resourcev3.ListenerType] = append(r[resourcev3.ListenerType], xdstest.TCPListener(echoListener, "127.0.0.1:0", echoCluster))
		r[resourcev3.ClusterType] = append(r[resourcev3.ClusterType], xdstest.EDSCluster(echoCluster))
		r[resourcev3.EndpointType] = append(r[resourcev3.EndpointType], loadAssignment(echoCluster, m.echo))
	}
	if m.badStuff {
		bad := xdstest.StaticCluster("bad.default.dc1", xdstest.Endpoint("127.0.0.1:1"))
		bad.LbPolicy = clusterv3.Cluster_CLUSTER_PROVIDED
		r[resourcev3.ClusterType] = append(r[resourcev3.ClusterType], bad)
		r[resourcev3.ListenerType] = append(r[resourcev3.ListenerType], xdstest.Listener("bad:127.0.0.1:0", "127.0.0.1:0",
			&listenerv3.Filter{Name: "envoy.filters.network.foo", ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: xdstest.Any(&wrapperspb.StringValue{})}}))
	}
	return r
}

func loadAssignment(name string, addrs []string) types.Resource {
	cla := xdstest.LoadAssignment(name)
	for _, a := range addrs {
		cla.Endpoints[0].LbEndpoints = append(cla.Endpoints[0].LbEndpoints, xdstest.Endpoint(a))
	}
	return cla
}

// TestProxyAgainstGoControlPlane runs weft-proxy against a real
// go-control-plane ADS server through a sequence of configuration changes.
func TestProxyAgainstGoControlPlane(t *testing.T) {
	top := t
	tl := newTestLog(t)
	echo := echoServer(t)
	b1, b2, b3 := namedBackend(t, "b1"), namedBackend(t, "b2"), namedBackend(t, "b3")
	cp := startControlPlane(t, tl, "127.0.0.1:0")
	cp.set("v1", mesh{echo: []string{echo}, api: []string{b1, b2}}.resources())
	p := startProxy(t, tl, cp.addr)
	p.waitReady()
	echoAddr, apiAddr := p.listenerAddr(echoListener), p.listenerAddr(apiListener)

	t.Run("tcp echo", func(t *testing.T) {
		if got := echoRoundTrip(t, echoAddr, []byte("hello")); string(got) != "hello" {
			t.Errorf("echo = %q, want hello", got)
		}
	})
	t.Run("10 MiB tcp transfer is byte-exact", func(t *testing.T) {
		payload := make([]byte, 10<<20)
		rand.Read(payload)
		if got := echoRoundTrip(t, echoAddr, payload); !bytes.Equal(got, payload) {
			t.Errorf("echoed %d bytes, want the %d sent byte for byte", len(got), len(payload))
		}
	})
	t.Run("http round robin across two backends", func(t *testing.T) {
		got := hits(t, apiAddr, 100)
		if got["b1"] < 30 || got["b2"] < 30 || got["b1"]+got["b2"] != 100 {
			t.Errorf("hits = %v, want each backend >= 30 of 100", got)
		}
	})
	t.Run("endpoint update moves traffic", func(t *testing.T) {
		cp.set("v2", mesh{echo: []string{echo}, api: []string{b3}}.resources())
		poll.UntilTrue(t, wait, "traffic on b3", func() bool { return hits(t, apiAddr, 1)["b3"] == 1 })
		if got := hits(t, apiAddr, 20); got["b3"] != 20 {
			t.Errorf("hits after the update = %v, want all 20 on b3", got)
		}
	})
	t.Run("bad resources are NACKed and the previous config keeps serving", func(t *testing.T) {
		cp.set("v3", mesh{echo: []string{echo}, api: []string{b3}, badStuff: true}.resources())
		cds := cp.waitRequest("CDS NACK", nackOf(resourcev3.ClusterType))
		if msg := cds.GetErrorDetail().GetMessage(); !strings.Contains(msg, `cluster "bad.default.dc1": lb_policy CLUSTER_PROVIDED is not supported`) || cds.GetVersionInfo() != "v2" {
			t.Errorf("CDS NACK version %q error %q, want version v2 and an error naming the cluster", cds.GetVersionInfo(), msg)
		}
		lds := cp.waitRequest("LDS NACK", nackOf(resourcev3.ListenerType))
		if msg := lds.GetErrorDetail().GetMessage(); !strings.Contains(msg, `listener "bad:127.0.0.1:0": filter chain 0: unsupported network filter "envoy.filters.network.foo"`) || lds.GetVersionInfo() != "v2" {
			t.Errorf("LDS NACK version %q error %q, want version v2 and an error naming the listener", lds.GetVersionInfo(), msg)
		}
		// RELIABILITY #4: the NACK is sent as soon as the response is
		// compiled; nothing on that path waits on a timer.
		for _, typeURL := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
			if d, ok := cp.nackLatency(typeURL, "v3"); !ok || d >= time.Second {
				t.Errorf("%s NACK of v3 arrived %v (found: %v) after the response was sent, want within 1s", typeURL, d, ok)
			} else {
				t.Logf("%s NACK of v3 arrived %v after the response was sent", typeURL, d)
			}
		}
		if got := hits(t, apiAddr, 20); got["b3"] != 20 {
			t.Errorf("hits after the NACK = %v, want all 20 on b3", got)
		}
		if got := echoRoundTrip(t, echoAddr, []byte("still")); string(got) != "still" {
			t.Errorf("echo after the NACK = %q", got)
		}
		if nack := p.xdsStatus().Types[resourcev3.ClusterType].LastNack; nack == nil || nack.Version != "v3" {
			t.Errorf("config_dump last CDS NACK = %+v, want version v3", nack)
		}
	})
	t.Run("a fixed snapshot is ACKed", func(t *testing.T) {
		cp.set("v4", mesh{echo: []string{echo}, api: []string{b3}}.resources())
		cp.waitRequest("CDS ACK of v4", ackOf(resourcev3.ClusterType, "v4"))
		cp.waitRequest("LDS ACK of v4", ackOf(resourcev3.ListenerType, "v4"))
	})
	t.Run("control plane down: traffic continues", func(t *testing.T) {
		cp.stop()
		poll.UntilTrue(t, wait, "xDS disconnected", func() bool { return !p.xdsStatus().Connected })
		if got := hits(t, apiAddr, 20); got["b3"] != 20 {
			t.Errorf("hits without a control plane = %v, want all 20 on b3", got)
		}
		if got := echoRoundTrip(t, echoAddr, []byte("alone")); string(got) != "alone" {
			t.Errorf("echo without a control plane = %q", got)
		}
		if code, body := p.adminGet("/ready"); code != http.StatusOK {
			t.Errorf("/ready without a control plane = %d %s, want 200", code, body)
		}
	})
	t.Run("control plane back: reconnects with its versions and applies a new snapshot", func(t *testing.T) {
		cp = startControlPlane(top, tl, cp.addr) // outlives this subtest
		cp.set("v5", mesh{echo: []string{echo}, api: []string{b1}}.resources())
		first := cp.waitRequest("first CDS request", func(r *discoveryv3.DiscoveryRequest) bool { return r.GetTypeUrl() == resourcev3.ClusterType })
		if first.GetVersionInfo() != "v4" || first.GetNode().GetId() != nodeID {
			t.Errorf("first CDS request after reconnect: version %q node %q, want v4 and %s", first.GetVersionInfo(), first.GetNode().GetId(), nodeID)
		}
		poll.UntilTrue(t, wait, "traffic on b1", func() bool { return hits(t, apiAddr, 1)["b1"] == 1 })
		if got := hits(t, apiAddr, 20); got["b1"] != 20 {
			t.Errorf("hits after reconnect = %v, want all 20 on b1", got)
		}
		if !p.xdsStatus().Connected {
			t.Error("xDS status not connected after reconnect")
		}
	})
	t.Run("listener removal drains an in-flight connection", func(t *testing.T) {
		conn := dialWithDeadline(t, echoAddr)
		io.WriteString(conn, "ping ")
		if _, err := io.ReadFull(conn, make([]byte, 5)); err != nil {
			t.Fatalf("echo before removal: %v", err)
		}
		cp.set("v6", mesh{api: []string{b1}}.resources())
		poll.UntilTrue(t, wait, "echo listener closed", func() bool {
			c, err := net.Dial("tcp", echoAddr)
			if err == nil {
				c.Close()
			}
			return errors.Is(err, syscall.ECONNREFUSED)
		})
		io.WriteString(conn, "still here")
		conn.(*net.TCPConn).CloseWrite()
		if got, _ := io.ReadAll(conn); string(got) != "still here" {
			t.Errorf("in-flight connection after removal echoed %q, want %q", got, "still here")
		}
	})
}

func nackOf(typeURL string) func(*discoveryv3.DiscoveryRequest) bool {
	return func(r *discoveryv3.DiscoveryRequest) bool {
		return r.GetTypeUrl() == typeURL && r.GetErrorDetail().GetMessage() != ""
	}
}

func ackOf(typeURL, version string) func(*discoveryv3.DiscoveryRequest) bool {
	return func(r *discoveryv3.DiscoveryRequest) bool {
		return r.GetTypeUrl() == typeURL && r.GetVersionInfo() == version && r.GetErrorDetail() == nil && r.GetResponseNonce() != ""
	}
}

func echoServer(t *testing.T) string {
	t.Helper()
	return testnet.Serve(t, func(c net.Conn) {
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	})
}

func namedBackend(t *testing.T, name string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func dialWithDeadline(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c.SetDeadline(time.Now().Add(wait))
	t.Cleanup(func() { c.Close() })
	return c
}

// echoRoundTrip sends payload, half-closes and reads the echo to EOF.
func echoRoundTrip(t *testing.T, addr string, payload []byte) []byte {
	t.Helper()
	c := dialWithDeadline(t, addr)
	go func() {
		c.Write(payload)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("echo via %s: %v", addr, err)
	}
	return got
}

// hits sends n requests and counts the responding backends.
func hits(t *testing.T, addr string, n int) map[string]int {
	t.Helper()
	client := &http.Client{Timeout: wait}
	got := make(map[string]int)
	for range n {
		resp, err := client.Get("http://" + addr + "/")
		if err != nil {
			t.Fatalf("GET via proxy: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET via proxy: %d %s (x-weft-error %q)", resp.StatusCode, body, resp.Header.Get("x-weft-error"))
		}
		got[string(body)]++
	}
	return got
}

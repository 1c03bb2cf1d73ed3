package telemetry

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/router"
	"github.com/weft-mesh/weft/proxy/telemetry/metrics"
)

// TestTCPGatewayCountsTheTarget: a gateway listener's connection counts
// in the gateway metrics of the target it reached, bytes each way; a
// sidecar's does not.
func TestTCPGatewayCountsTheTarget(t *testing.T) {
	e := newEnv(t)
	api := e.tel.Metrics.Target("api", "dc1", "dc2")
	e.tel.TCP(metrics.Inbound, "mesh_gateway", "mesh-gateway").ConnOpened().Connected(api).Closed(100, 2000)
	e.tel.TCP(metrics.Outbound, "api", "").ConnOpened().Connected(api).Closed(1, 1)
	e.tel.TCP(metrics.Inbound, "mesh_gateway", "mesh-gateway").ConnOpened().Connected(nil).Closed(1, 1) // a cluster without target
	labels := map[string]string{"gateway": "mesh-gateway", "service": "api", "datacenter": "dc1", "peer": "dc2"}
	if got := e.counter(t, "weft_proxy_gateway_connections_total", nil); got != 1 {
		t.Errorf("gateway connections = %v, want 1", got)
	}
	for flow, want := range map[string]float64{"received": 100, "sent": 2000} {
		labels["flow"] = flow
		if got := e.counter(t, "weft_proxy_gateway_bytes_total", labels); got != want {
			t.Errorf("gateway bytes %s = %v, want %v", flow, got, want)
		}
	}
}

// TestHTTPGatewayCountsRequestsByTarget: an ingress gateway's request
// counts, by status, in the target of the cluster of its last attempt
// (Observe); one that reached no host does not.
func TestHTTPGatewayCountsRequestsByTarget(t *testing.T) {
	e := newEnv(t)
	clusters := cluster.NewManager(cluster.Options{Target: func(t config.Target) *metrics.Target {
		return e.tel.Metrics.Target(t.Service, t.Datacenter, t.Peer)
	}})
	t.Cleanup(clusters.Close)
	clusters.Update(map[string]*config.Cluster{
		"web.default.dc1": {Name: "web.default.dc1", Target: config.Target{Service: "web", Datacenter: "dc1"}},
	})
	h := e.tel.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/nowhere" {
			http.Error(w, "no route", http.StatusNotFound)
			return
		}
		io.Copy(io.Discard, r.Body)
		Observe(r.Context(), router.Event{Kind: router.AttemptEnded, Attempt: 1, Cluster: clusters.Get("web.default.dc1"), Status: 200, GRPCStatus: -1})
		io.WriteString(w, "hello")
	}), Listener{Direction: metrics.Outbound, Service: "ingress", Peer: "ingress:8080", Gateway: "ingress-gateway"})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "http://web.ingress.example/", strings.NewReader("ping")))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "http://web.ingress.example/nowhere", nil))

	web := map[string]string{"gateway": "ingress-gateway", "service": "web", "datacenter": "dc1", "peer": ""}
	if got := e.counter(t, "weft_proxy_gateway_requests_total", map[string]string{"code": "200", "service": "web"}); got != 1 {
		t.Errorf("gateway requests{code=200} = %v, want 1", got)
	}
	if got := e.counter(t, "weft_proxy_gateway_requests_total", nil); got != 1 {
		t.Errorf("gateway requests = %v, want 1: a request that reached no host counts nowhere", got)
	}
	for flow, want := range map[string]float64{"received": 4, "sent": 5} {
		web["flow"] = flow
		if got := e.counter(t, "weft_proxy_gateway_bytes_total", web); got != want {
			t.Errorf("gateway bytes %s = %v, want %v", flow, got, want)
		}
	}
}

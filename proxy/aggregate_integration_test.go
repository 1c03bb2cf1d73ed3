package proxy_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/proxy/cluster"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

// failover is one weft-proxy whose HTTP route ("api") and TCP proxy both
// name the aggregate cluster "api" over two EDS clusters, the local
// service's then a peer's, as the control plane sends them for failover
// to a cluster peer.
type failover struct {
	t        *testing.T
	cp       *controlPlane
	p        *runningProxy
	version  int
	http     string // the HTTP listener's address
	tcp      string // the TCP listener's address
	peerAddr string
}

const (
	failoverHTTP = "api:127.0.0.1:0"
	failoverTCP  = "api-tcp:127.0.0.1:0"
	localChild   = "failover-target~0~api"
	peerChild    = "failover-target~1~api"
)

func startFailover(t *testing.T, primary *endpointv3.ClusterLoadAssignment) *failover {
	t.Helper()
	tl := newTestLog(t)
	f := &failover{t: t, cp: startControlPlane(t, tl, "127.0.0.1:0"), peerAddr: namedBackend(t, "peer")}
	f.publish(primary)
	f.p = startProxy(t, tl, f.cp.addr)
	f.p.waitReady()
	f.http, f.tcp = f.p.listenerAddr(failoverHTTP), f.p.listenerAddr(failoverTCP)
	return f
}

// publish sends a configuration whose local child has the load
// assignment primary, and waits until the proxy applied it.
func (f *failover) publish(primary *endpointv3.ClusterLoadAssignment) {
	f.t.Helper()
	f.version++
	version := fmt.Sprintf("v%d", f.version)
	f.cp.set(version, map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.HTTPListenerRDS(failoverHTTP, "127.0.0.1:0", "api"), xdstest.TCPListener(failoverTCP, "127.0.0.1:0", "api")},
		resourcev3.RouteType:    {xdstest.RouteConfig("api", "api")},
		resourcev3.ClusterType:  {xdstest.AggregateCluster("api", localChild, peerChild), retryBudget(eds(localChild)), retryBudget(eds(peerChild))},
		resourcev3.EndpointType: {primary, xdstest.LoadAssignment(peerChild, xdstest.Endpoint(f.peerAddr))},
	})
	if f.p != nil {
		f.cp.waitRequest("EDS ACK of "+version, ackOf(resourcev3.EndpointType, version)) // sent once applied
	}
}

// httpGet sends a GET through the HTTP listener: the backend's name, or
// the status and x-weft-error of a failure.
func (f *failover) httpGet() string {
	resp, err := l7Client.Get("http://" + f.http + "/")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("x-weft-error"))
	}
	return string(body)
}

// tcpGet sends an HTTP/1.0 request over a connection through the TCP
// listener and returns the body of the response (the backend's name).
func (f *failover) tcpGet() string {
	c := dialWithDeadline(f.t, f.tcp)
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.0\r\nHost: api\r\n\r\n")
	raw, err := io.ReadAll(c)
	if err != nil {
		return err.Error()
	}
	_, body, _ := strings.Cut(string(raw), "\r\n\r\n")
	return body
}

// served counts who answered n requests of each kind.
func (f *failover) served(n int) map[string]int {
	got := map[string]int{}
	for range n {
		got["http "+f.httpGet()]++
		got["tcp "+f.tcpGet()]++
	}
	return got
}

// aggregate is the aggregate cluster as /clusters shows it.
func (f *failover) aggregate() *cluster.AggregateInfo {
	f.t.Helper()
	_, body := f.p.adminGet("/clusters")
	var cs []cluster.Info
	if err := json.Unmarshal(body, &cs); err != nil {
		f.t.Fatalf("/clusters: %v: %s", err, body)
	}
	for _, c := range cs {
		if c.Name == "api" {
			return c.Aggregate
		}
	}
	f.t.Fatalf("/clusters has no cluster api: %s", body)
	return nil
}

// load sends GETs from 4 goroutines, each with one answered once load
// returns, until stop is called, which returns the answers that were not a
// backend's name.
func (f *failover) load() (stop func() map[string]int) {
	var wg, started sync.WaitGroup
	var mu sync.Mutex
	failed := map[string]int{}
	done := make(chan struct{})
	for range 4 {
		started.Add(1)
		wg.Go(func() {
			for first := true; ; first = false {
				if got := f.httpGet(); got != "primary" && got != "peer" {
					mu.Lock()
					failed[got]++
					mu.Unlock()
				}
				if first {
					started.Done()
				}
				select {
				case <-done:
					return
				default:
				}
			}
		})
	}
	started.Wait()
	return func() map[string]int {
		close(done)
		wg.Wait()
		return failed
	}
}

func childShares(primary, peer int) []cluster.ChildInfo {
	return []cluster.ChildInfo{{Name: localChild, Share: primary}, {Name: peerChild, Share: peer}}
}

// TestAggregateClusterFailsOverToThePeer: an HTTP route and a TCP proxy
// naming an aggregate cluster send everything to its first child while
// that has healthy hosts, to the peer's child when its endpoints turn
// UNHEALTHY in EDS, or are removed, and back once they are healthy again;
// /clusters shows which child takes new requests. GETs sent meanwhile
// never fail: while the local backend is gone and EDS does not say so
// yet, the connect failure is retried on the peer.
func TestAggregateClusterFailsOverToThePeer(t *testing.T) {
	primaryAddr := namedBackend(t, "primary")
	healthy := xdstest.LoadAssignment(localChild, xdstest.Endpoint(primaryAddr))
	f := startFailover(t, healthy)
	onPrimary := map[string]int{"http primary": 10, "tcp primary": 10}
	onPeer := map[string]int{"http peer": 10, "tcp peer": 10}
	if diff := cmp.Diff(onPrimary, f.served(10)); diff != "" {
		t.Fatalf("with a healthy local cluster (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&cluster.AggregateInfo{Children: childShares(100, 0), Active: localChild}, f.aggregate()); diff != "" {
		t.Errorf("/clusters (-want +got):\n%s", diff)
	}

	steps := []struct {
		name    string
		primary *endpointv3.ClusterLoadAssignment
		want    map[string]int
		active  string
		shares  []cluster.ChildInfo
	}{
		{"local endpoints UNHEALTHY", xdstest.PriorityLoadAssignment(localChild, []*endpointv3.LbEndpoint{xdstest.Unhealthy(primaryAddr)}),
			onPeer, peerChild, childShares(0, 100)},
		{"healthy again", healthy, onPrimary, localChild, childShares(100, 0)},
		{"local endpoints removed", xdstest.LoadAssignment(localChild), onPeer, peerChild, childShares(0, 100)},
		{"restored", healthy, onPrimary, localChild, childShares(100, 0)},
	}
	for _, step := range steps {
		stop := f.load()
		f.publish(step.primary)
		if failed := stop(); len(failed) > 0 {
			t.Errorf("%s: GETs failed while the update was applied: %v", step.name, failed)
		}
		if diff := cmp.Diff(step.want, f.served(10)); diff != "" {
			t.Errorf("%s: served by (-want +got):\n%s", step.name, diff)
		}
		if diff := cmp.Diff(&cluster.AggregateInfo{Children: step.shares, Active: step.active}, f.aggregate()); diff != "" {
			t.Errorf("%s: /clusters (-want +got):\n%s", step.name, diff)
		}
	}
}

// TestAggregateRetriesOnThePeerWhileTheLocalBackendIsGone: a local
// backend that stops before EDS says so costs every GET a retry, which
// lands on the peer's child, so none fails; the retry counts in
// weft_proxy_retries_total of the child whose attempt failed. Removing
// the endpoint ends the retries; a new local backend takes the traffic
// back.
func TestAggregateRetriesOnThePeerWhileTheLocalBackendIsGone(t *testing.T) {
	local := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "primary") }))
	t.Cleanup(local.Close)
	f := startFailover(t, xdstest.LoadAssignment(localChild, xdstest.Endpoint(local.Listener.Addr().String())))
	if got := f.httpGet(); got != "primary" {
		t.Fatalf("before the local backend stops: %q", got)
	}
	local.Close()
	for i := range 10 {
		if got := f.httpGet(); got != "peer" {
			t.Fatalf("GET %d with the local backend gone: %q, want the peer's answer", i, got)
		}
	}
	if got := sum(f.p.metricsOf(), "weft_proxy_retries_total", map[string]string{"cluster": localChild}); got != 10 {
		t.Errorf("weft_proxy_retries_total{cluster=%q} = %v, want 10", localChild, got)
	}
	f.publish(xdstest.LoadAssignment(localChild))
	if diff := cmp.Diff(map[string]int{"http peer": 5, "tcp peer": 5}, f.served(5)); diff != "" {
		t.Errorf("after the endpoint's removal (-want +got):\n%s", diff)
	}
	if got := sum(f.p.metricsOf(), "weft_proxy_retries_total", nil); got != 10 {
		t.Errorf("weft_proxy_retries_total = %v after the removal, want still 10", got)
	}
	f.publish(xdstest.LoadAssignment(localChild, xdstest.Endpoint(namedBackend(t, "primary"))))
	if diff := cmp.Diff(map[string]int{"http primary": 5, "tcp primary": 5}, f.served(5)); diff != "" {
		t.Errorf("with a new local backend (-want +got):\n%s", diff)
	}
}

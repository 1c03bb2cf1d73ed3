package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

// startFourAPIMesh runs web → api ×4 (http), each behind its sidecar.
func startFourAPIMesh(t *testing.T) *mesh {
	t.Helper()
	m := newMesh(t)
	m.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"})
	ids := []string{"api-1", "api-2", "api-3", "api-4"}
	for _, id := range ids {
		m.hits[id] = &atomic.Int64{}
		m.register(t, id, "api", startNameServer(t, id, m.hits[id]), nil)
	}
	m.register(t, "web-1", "web", freePort(t), []api.Upstream{{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: m.apiPort}})
	for _, id := range append(ids, "web-1") {
		m.startProxy(t, id+"-sidecar-proxy")
	}
	consultest.WaitForPassing(t, m.consul.Client(), "api", 4)
	return m
}

// TestSidecarPanicMode (issue 14, the endpoint panic guard's sidecar
// half): 3 of 4 api instances turning critical in Consul apply at once —
// no removal is held, their checks back the change — and reach web's
// sidecar as UNHEALTHY endpoints, not removed ones. With 1 of 4 hosts
// healthy, below the default healthy_panic_threshold (50 %), the sidecar
// enters panic mode, shown in /clusters and weft_proxy_cluster_panic, and
// keeps spreading requests over all 4 instances, none failing. One
// instance passing again (2 of 4) ends panic mode.
func TestSidecarPanicMode(t *testing.T) {
	m := startFourAPIMesh(t)
	const web = "web-1-sidecar-proxy"
	all := []string{"api-1", "api-2", "api-3", "api-4"}
	c := newCaller(t, m.apiPort)
	m.waitEndpoints(t, web, 4)
	c.waitServedBy(30*time.Second, 8, true, all...)
	wantSpread(t, "all passing", c.tally(200), all, 30)

	for _, id := range all[1:] {
		m.setHealth(t, id, false)
	}
	m.waitEndpoints(t, web, 1)
	if eps := m.endpointsIn(t, web); eps["api"].total != 4 {
		t.Fatalf("web's api endpoints with 3 critical: %+v, want all 4 listed", eps["api"])
	}
	apiCluster := m.waitPanic(t, web, "api", true)
	if err := m.gauge(web, `weft_proxy_cluster_panic{cluster="`+apiCluster+`"}`, 1); err != nil {
		t.Error(err)
	}
	wantSpread(t, "in panic mode", c.tally(200), all, 25)
	if err := m.cpMetric("weft_cp_consul_removals_held_total", 0); err != nil {
		t.Errorf("failing checks must not be held: %v", err)
	}

	m.setHealth(t, "api-2", true)
	m.waitPanic(t, web, "api", false)
	c.waitServedBy(10*time.Second, 20, false, "api-1", "api-2")
	if err := m.gauge(web, `weft_proxy_cluster_panic{cluster="`+apiCluster+`"}`, 0); err != nil {
		t.Error(err)
	}
}

// wantSpread fails the test unless every instance in want answered at
// least min of the requests and no other did.
func wantSpread(t *testing.T, when string, seen map[string]int, want []string, min int) {
	t.Helper()
	total := 0
	for _, id := range want {
		total += seen[id]
		if seen[id] < min {
			t.Errorf("%s: requests went to %v; want each of %v ≥ %d", when, seen, want, min)
			return
		}
	}
	if n := sumCounts(seen); total != n {
		t.Errorf("%s: requests went to %v; want only %v", when, seen, want)
	}
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// sidecarCluster is a cluster in a sidecar's /clusters.
type sidecarCluster struct {
	Name  string `json:"name"`
	Panic bool   `json:"panic"`
	Hosts []struct {
		Address string `json:"address"`
		Healthy bool   `json:"healthy"`
	} `json:"hosts"`
}

// waitPanic waits until proxyID's cluster of service (the one whose name
// starts with "<service>.") is in panic mode or not, and returns its name.
func (m *mesh) waitPanic(t *testing.T, proxyID, service string, panic bool) string {
	t.Helper()
	var name string
	poll.Until(t, 30*time.Second, fmt.Sprintf("%s: cluster %s panic=%v in /clusters", proxyID, service, panic), func() error {
		code, body, err := httpGet(context.Background(), http.DefaultClient, "http://"+m.proxyAdmin[proxyID]+"/clusters")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("/clusters: %d %v", code, err)
		}
		var clusters []sidecarCluster
		if err := json.Unmarshal([]byte(body), &clusters); err != nil {
			return err
		}
		for _, c := range clusters {
			if strings.HasPrefix(c.Name, service+".") {
				name = c.Name
				if c.Panic != panic {
					return fmt.Errorf("%s: panic=%v with %d hosts", c.Name, c.Panic, len(c.Hosts))
				}
				return nil
			}
		}
		return fmt.Errorf("no cluster of %s in %s", service, body)
	})
	return name
}

// cpMetric is nil when the control plane's /metrics has the unlabelled
// metric at want.
func (m *mesh) cpMetric(name string, want float64) error {
	code, body, err := httpGet(context.Background(), http.DefaultClient, "http://"+m.cpAdmin+"/metrics")
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("control plane /metrics: %d %v", code, err)
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			if v != fmt.Sprint(want) {
				return fmt.Errorf("%s = %s, want %v", name, v, want)
			}
			return nil
		}
	}
	return fmt.Errorf("%s not in the control plane's /metrics", name)
}

// endpointCount is one load assignment's endpoints in a sidecar's
// /config_dump.
type endpointCount struct{ total, healthy int }

// endpointsIn returns proxyID's load assignments from its /config_dump,
// by service: the part of the name before the first dot.
func (m *mesh) endpointsIn(t *testing.T, proxyID string) map[string]endpointCount {
	t.Helper()
	eps, err := m.readEndpoints(proxyID)
	if err != nil {
		t.Fatal(err)
	}
	return eps
}

func (m *mesh) readEndpoints(proxyID string) (map[string]endpointCount, error) {
	code, body, err := httpGet(context.Background(), http.DefaultClient, "http://"+m.proxyAdmin[proxyID]+"/config_dump")
	if err != nil || code != http.StatusOK {
		return nil, fmt.Errorf("%s /config_dump: %d %v", proxyID, code, err)
	}
	var dump struct {
		Resources map[string]struct {
			Items map[string]struct {
				Endpoints []struct {
					LBEndpoints []struct {
						HealthStatus string `json:"healthStatus"`
					} `json:"lbEndpoints"`
				} `json:"endpoints"`
			} `json:"items"`
		} `json:"resources"`
	}
	if err := json.Unmarshal([]byte(body), &dump); err != nil {
		return nil, fmt.Errorf("%s /config_dump: %w", proxyID, err)
	}
	out := map[string]endpointCount{}
	for name, cla := range dump.Resources["endpoints"].Items {
		service, _, _ := strings.Cut(name, ".")
		var n endpointCount
		for _, loc := range cla.Endpoints {
			for _, ep := range loc.LBEndpoints {
				n.total++
				if ep.HealthStatus == "HEALTHY" {
					n.healthy++
				}
			}
		}
		out[service] = n
	}
	return out, nil
}

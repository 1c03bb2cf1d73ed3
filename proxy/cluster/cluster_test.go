package cluster

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/http1client"
	"github.com/weft-mesh/weft/proxy/balancer"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/outlier"
)

func picks(t *testing.T, c *Cluster, n int) map[string]int {
	t.Helper()
	got := make(map[string]int)
	for range n {
		att, err := c.Pick(balancer.PickInfo{}, nil, 0)
		if err != nil {
			t.Fatalf("Pick: %v", err)
		}
		att.Release()
		got[att.Host.Address()]++
	}
	return got
}

func TestPickerHonoursHealthAndPriority(t *testing.T) {
	tests := []struct {
		name      string
		endpoints []config.Endpoint
		want      map[string]int // picks out of 120; nil means ErrNoEndpoint
	}{
		{
			name: "unhealthy endpoints are skipped",
			endpoints: []config.Endpoint{
				{Address: "a:1", Healthy: true, Weight: 1},
				{Address: "b:1", Healthy: false, Weight: 1},
				{Address: "c:1", Healthy: true, Weight: 1},
			},
			want: map[string]int{"a:1": 60, "c:1": 60},
		},
		{
			name: "weights",
			endpoints: []config.Endpoint{
				{Address: "a:1", Healthy: true, Weight: 2},
				{Address: "b:1", Healthy: true, Weight: 1},
			},
			want: map[string]int{"a:1": 80, "b:1": 40},
		},
		{
			name: "lower priority only when the higher has no healthy endpoint",
			endpoints: []config.Endpoint{
				{Address: "p0:1", Healthy: false, Weight: 1, Priority: 0},
				{Address: "p1:1", Healthy: true, Weight: 1, Priority: 1},
				{Address: "p2:1", Healthy: true, Weight: 1, Priority: 2},
			},
			want: map[string]int{"p1:1": 120},
		},
		{
			name:      "all unhealthy",
			endpoints: []config.Endpoint{{Address: "a:1", Healthy: false, Weight: 1}},
		},
		{name: "no endpoints"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(&config.Cluster{Name: "c", Endpoints: tt.endpoints}, Options{Credentials: mtls.Credentials{}, Clock: outlier.SystemClock{}})
			if tt.want == nil {
				if _, err := c.Pick(balancer.PickInfo{}, nil, 0); !errors.Is(err, ErrNoHealthyUpstream) {
					t.Fatalf("Pick err = %v, want ErrNoHealthyUpstream", err)
				}
				return
			}
			if diff := cmp.Diff(tt.want, picks(t, c, 120)); diff != "" {
				t.Errorf("picks (-want +got):\n%s", diff)
			}
		})
	}
}

func TestManagerUpdate(t *testing.T) {
	m := NewManager(Options{})
	ep := func(addr string) []config.Endpoint {
		return []config.Endpoint{{Address: addr, Healthy: true, Weight: 1}}
	}
	m.Update(map[string]*config.Cluster{
		"a": {Name: "a", ConnectTimeout: time.Second, Endpoints: ep("a1:1")},
		"b": {Name: "b", ConnectTimeout: time.Second, Endpoints: ep("b1:1")},
	})
	a := m.Get("a")
	transport := a.Transport(false)

	// Same settings, new endpoints: same Cluster and transport, new picker.
	m.Update(map[string]*config.Cluster{"a": {Name: "a", ConnectTimeout: time.Second, Endpoints: ep("a2:1")}})
	if m.Get("a") != a {
		t.Error("cluster a was replaced; want it updated in place")
	}
	if got := a.Transport(false); got != transport {
		t.Error("transport replaced although its settings did not change")
	}
	if diff := cmp.Diff(map[string]int{"a2:1": 3}, picks(t, a, 3)); diff != "" {
		t.Errorf("picks after endpoint update (-want +got):\n%s", diff)
	}
	if m.Get("b") != nil {
		t.Error("removed cluster b is still returned")
	}

	// A new connect timeout needs a new transport.
	m.Update(map[string]*config.Cluster{"a": {Name: "a", ConnectTimeout: 2 * time.Second, Endpoints: ep("a2:1")}})
	if a.Transport(false) == transport {
		t.Error("transport kept although the connect timeout changed")
	}
	if got := a.ConnectTimeout(); got != 2*time.Second {
		t.Errorf("ConnectTimeout = %v, want 2s", got)
	}
}

// TestManagerLeavesUnchangedClusters: a cluster given the *config.Cluster
// it already has is not updated (its state, picker and hosts stay as they
// are); one given a new one is, and the cluster set is replaced only when
// names come or go.
func TestManagerLeavesUnchangedClusters(t *testing.T) {
	m := NewManager(Options{})
	ep := func(addr string, healthy bool) []config.Endpoint {
		return []config.Endpoint{{Address: "x:1", Healthy: true, Weight: 1}, {Address: addr, Healthy: healthy, Weight: 1}}
	}
	a := &config.Cluster{Name: "a", ConnectTimeout: time.Second, Endpoints: ep("a1:1", true)}
	b := &config.Cluster{Name: "b", ConnectTimeout: time.Second, Endpoints: ep("b1:1", true)}
	m.Update(map[string]*config.Cluster{"a": a, "b": b})
	set, stateA, stateB := m.clusters.Load(), m.Get("a").state.Load(), m.Get("b").state.Load()

	flipped := &config.Cluster{Name: "b", ConnectTimeout: time.Second, Endpoints: ep("b1:1", false)}
	m.Update(map[string]*config.Cluster{"a": a, "b": flipped})
	if m.Get("a").state.Load() != stateA {
		t.Error("cluster a was updated although its configuration is the same pointer")
	}
	if st := m.Get("b").state.Load(); st == stateB || st.cfg != flipped {
		t.Error("cluster b was not updated to its new configuration")
	}
	if diff := cmp.Diff(map[string]int{"x:1": 3}, picks(t, m.Get("b"), 3)); diff != "" {
		t.Errorf("picks of b after its endpoint turned unhealthy (-want +got):\n%s", diff)
	}
	if m.clusters.Load() != set {
		t.Error("the cluster set was replaced although no cluster came or went")
	}
	m.Update(map[string]*config.Cluster{"a": a})
	if m.Get("b") != nil || m.Get("a").state.Load() != stateA {
		t.Error("removing b: b still returned, or a updated")
	}
}

// TestManagerReportsRemovals: OnHostRemoved hears of every host that
// leaves (endpoint removed, outlier settings replaced, cluster removed),
// OnClusterRemoved of every removed cluster, and neither of what stays.
func TestManagerReportsRemovals(t *testing.T) {
	var removed []string
	m := NewManager(Options{
		OnHostRemoved:    func(cluster, addr string) { removed = append(removed, "host "+cluster+"/"+addr) },
		OnClusterRemoved: func(cluster string) { removed = append(removed, "cluster "+cluster) },
	})
	eps := func(addrs ...string) []config.Endpoint {
		var out []config.Endpoint
		for _, a := range addrs {
			out = append(out, config.Endpoint{Address: a, Healthy: true, Weight: 1})
		}
		return out
	}
	od := outlier.Defaults()
	steps := []struct {
		name     string
		clusters map[string]*config.Cluster
		want     []string
	}{
		{"first configuration", map[string]*config.Cluster{
			"a": {Name: "a", Endpoints: eps("a1:1", "a2:1"), Outlier: &od},
			"b": {Name: "b", Endpoints: eps("b1:1")},
		}, nil},
		{"an endpoint removed", map[string]*config.Cluster{
			"a": {Name: "a", Endpoints: eps("a1:1"), Outlier: &od},
			"b": {Name: "b", Endpoints: eps("b1:1")},
		}, []string{"host a/a2:1"}},
		{"outlier settings changed: new hosts", map[string]*config.Cluster{
			"a": {Name: "a", Endpoints: eps("a1:1"), Outlier: &outlier.Settings{Consecutive5xx: 1}},
			"b": {Name: "b", Endpoints: eps("b1:1")},
		}, []string{"host a/a1:1"}},
		{"a cluster removed", map[string]*config.Cluster{
			"a": {Name: "a", Endpoints: eps("a1:1"), Outlier: &outlier.Settings{Consecutive5xx: 1}},
		}, []string{"host b/b1:1", "cluster b"}},
		{"nothing removed", map[string]*config.Cluster{
			"a": {Name: "a", Endpoints: eps("a1:1", "a3:1"), Outlier: &outlier.Settings{Consecutive5xx: 1}},
		}, nil},
	}
	for _, step := range steps {
		removed = nil
		m.Update(step.clusters)
		if diff := cmp.Diff(step.want, removed); diff != "" {
			t.Errorf("%s: removals reported (-want +got):\n%s", step.name, diff)
		}
	}
}

func TestTransportProtocols(t *testing.T) {
	c1 := newCluster(&config.Cluster{Name: "h1"}, Options{Credentials: mtls.Credentials{}, Clock: outlier.SystemClock{}})
	if _, ok := c1.Transport(false).(*http1client.Client); !ok {
		t.Fatal("an HTTP/1 cluster's transport is not the lean HTTP/1.1 client")
	}
	h1 := c1.state.Load().upstream.http1Fallback() // what the lean client hands requests it does not take
	lean2, ok := newCluster(&config.Cluster{Name: "h2", Protocol: config.HTTP2}, Options{Credentials: mtls.Credentials{}, Clock: outlier.SystemClock{}}).Transport(false).(*http2Client)
	if !ok {
		t.Fatal("an HTTP/2 cluster's transport is not the lean HTTP/2 client")
	}
	h2 := lean2.fallback().(*http.Transport)
	std := newCluster(&config.Cluster{Name: "h2", Protocol: config.HTTP2}, Options{Credentials: mtls.Credentials{}, Clock: outlier.SystemClock{}, StandardHTTP2Client: true}).Transport(false)
	if _, ok := std.(*http.Transport); !ok {
		t.Errorf("with StandardHTTP2Client, an HTTP/2 cluster's transport is %T, want *http.Transport", std)
	}
	if !h1.Protocols.HTTP1() || h1.Protocols.UnencryptedHTTP2() {
		t.Errorf("HTTP/1 cluster protocols = %v", h1.Protocols)
	}
	if h2.Protocols.HTTP1() || !h2.Protocols.UnencryptedHTTP2() {
		t.Errorf("HTTP/2 cluster protocols = %v", h2.Protocols)
	}
	if !h1.DisableCompression || h1.Proxy != nil {
		t.Error("proxy transport must not compress or use an environment proxy")
	}
}

// TestHostsKnowTheirInstance: a host names the Consul instance EDS gave
// it; another instance at the same address is a new host, with a fresh
// breaker; Ejected counts the hosts outlier detection holds out.
func TestHostsKnowTheirInstance(t *testing.T) {
	od := outlier.Settings{Consecutive5xx: 1, Enforcing5xx: 100, BaseEjectionTime: time.Hour, MaxEjectionPercent: 100}
	eps := func(instance string) []config.Endpoint {
		return []config.Endpoint{{Address: "a:1", Healthy: true, Weight: 1, InstanceID: instance}, {Address: "b:1", Healthy: true, Weight: 1, InstanceID: "b-1"}}
	}
	c := newCluster(&config.Cluster{Name: "c", Endpoints: eps("a-1"), Outlier: &od}, Options{})
	byAddr := func() map[string]*Host {
		out := map[string]*Host{}
		for _, e := range c.state.Load().hosts {
			out[e.host.Address()] = e.host
		}
		return out
	}
	if got := byAddr()["a:1"].InstanceID(); got != "a-1" {
		t.Fatalf("InstanceID = %q, want a-1", got)
	}
	if c.Ejected() != 0 {
		t.Fatalf("Ejected = %d before any failure", c.Ejected())
	}
	eject(t, c, "a:1")
	if c.Ejected() != 1 {
		t.Fatalf("Ejected = %d after ejecting a:1, want 1", c.Ejected())
	}
	before := byAddr()
	c.update(&config.Cluster{Name: "c", Endpoints: eps("a-2"), Outlier: &od})
	after := byAddr()
	if after["a:1"] == before["a:1"] || after["a:1"].InstanceID() != "a-2" || !after["a:1"].outlier.Available() {
		t.Errorf("a new instance at a:1 kept the old host (same %v, instance %q, available %v); want a fresh one",
			after["a:1"] == before["a:1"], after["a:1"].InstanceID(), after["a:1"].outlier.Available())
	}
	if after["b:1"] != before["b:1"] {
		t.Error("b:1's host was replaced although its instance did not change")
	}
	if c.Ejected() != 0 {
		t.Errorf("Ejected = %d once the ejected instance left, want 0", c.Ejected())
	}
}

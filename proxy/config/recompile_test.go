package config

import (
	"crypto/x509"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/xds"
)

// cmpWhole compares whole Runtimes, transparent listeners and trust
// bundles included.
var cmpWhole = cmp.Options{
	cmpRuntime,
	cmpopts.IgnoreUnexported(Transparent{}, mtls.Bundle{}),
	cmp.Comparer(func(a, b *x509.Certificate) bool { return a.Equal(b) }),
}

// recompileBase is a sidecar with an RDS HTTP listener (routes-a), a TCP
// listener (to c) and a transparent listener whose chains go to d, over
// RDS to routes-b, and by default through the ORIGINAL_DST cluster; EDS
// clusters a to d with their load assignments, a STATIC cluster and a
// trust bundle.
func recompileBase(t *testing.T) xds.State {
	roots := xdstest.RootsSecretOf(pkitest.Bundle(pkitest.NewCA(t, "root")))
	web := &listenerv3.FilterChain{Name: "web", Filters: xdstest.HTTPListenerRDS("x", "127.0.0.1:1", "routes-b").GetFilterChains()[0].GetFilters()}
	web.FilterChainMatch = chainTo("", "", 0, "240.0.0.5/32").GetFilterChainMatch()
	msgs := []proto.Message{
		xdstest.HTTPListenerRDS("http", "127.0.0.1:8080", "routes-a"),
		xdstest.TCPListener("tcp", "127.0.0.1:9090", "c"),
		outboundListener(chainTo("d", "d", 0, "240.0.0.4/32"), web),
		regexRoutes("routes-a", "a", "/a/[0-9]+"),
		regexRoutes("routes-b", "b", "/b/[0-9]+"),
		originalDstCluster(),
		xdstest.StaticCluster("static", xdstest.Endpoint("127.0.0.1:7000")),
		roots,
	}
	for i, name := range []string{"a", "b", "c", "d"} {
		msgs = append(msgs, xdstest.EDSCluster(name), xdstest.LoadAssignment(name, xdstest.Endpoint(fmt.Sprintf("10.0.0.%d:80", i+1))))
	}
	return state(msgs...)
}

func regexRoutes(name, cluster, regex string) *routev3.RouteConfiguration {
	rc := xdstest.RouteConfig(name, cluster)
	rc.VirtualHosts[0].Routes[0].Match = &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: regex}}}
	return rc
}

// with returns a copy of s in which msgs replace the resources of their
// names (or are added), as new messages.
func with(s xds.State, msgs ...proto.Message) xds.State {
	next := cloneState(s)
	for _, m := range msgs {
		r, name := resourcesOf(&next, m)
		r.Items[name] = m
	}
	return next
}

// without returns a copy of s without the resource named name of m's type.
func without(s xds.State, m proto.Message) xds.State {
	next := cloneState(s)
	r, name := resourcesOf(&next, m)
	delete(r.Items, name)
	return next
}

func cloneState(s xds.State) xds.State {
	for _, r := range []*xds.Resources{&s.Listeners, &s.Clusters, &s.Routes, &s.Endpoints, &s.Secrets} {
		r.Items = maps.Clone(r.Items)
	}
	return s
}

func resourcesOf(s *xds.State, m proto.Message) (*xds.Resources, string) {
	switch m := m.(type) {
	case *listenerv3.Listener:
		return &s.Listeners, m.GetName()
	case *clusterv3.Cluster:
		return &s.Clusters, m.GetName()
	case *routev3.RouteConfiguration:
		return &s.Routes, m.GetName()
	case *endpointv3.ClusterLoadAssignment:
		return &s.Endpoints, m.GetClusterName()
	case *tlsv3.Secret:
		return &s.Secrets, m.GetName()
	}
	panic(fmt.Sprintf("unexpected %T", m))
}

// edit returns a changed copy of the resource named name of s.
func edit[M proto.Message](s xds.State, sample M, name string, change func(M)) M {
	r, _ := resourcesOf(&s, sample)
	m := proto.Clone(r.Items[name]).(M)
	change(m)
	return m
}

// recompiled names the listeners, clusters and secrets of got that are
// not the pointers of the same name in prev.
func recompiled(prev, got *Runtime) string {
	var out []string
	was := map[string]*Listener{}
	for _, l := range prev.Listeners {
		was[l.Name] = l
	}
	for _, l := range got.Listeners {
		if was[l.Name] != l {
			out = append(out, "listener "+l.Name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got.Clusters)) {
		if prev.Clusters[name] != got.Clusters[name] {
			out = append(out, "cluster "+name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got.Secrets)) {
		if prev.Secrets[name] != got.Secrets[name] {
			out = append(out, "secret "+name)
		}
	}
	return strings.Join(out, ", ")
}

func TestRecompileReusesWhatDidNotChange(t *testing.T) {
	base := recompileBase(t)
	flip := func(h corev3.HealthStatus) func(*endpointv3.ClusterLoadAssignment) {
		return func(cla *endpointv3.ClusterLoadAssignment) { cla.Endpoints[0].LbEndpoints[0].HealthStatus = h }
	}
	timeout := func(d time.Duration) func(*clusterv3.Cluster) {
		return func(c *clusterv3.Cluster) { c.ConnectTimeout = durationpb.New(d) }
	}
	cla, cluster, rc := &endpointv3.ClusterLoadAssignment{}, &clusterv3.Cluster{}, &routev3.RouteConfiguration{}
	tests := []struct {
		name string
		next xds.State
		want string // what is compiled anew
	}{
		{"nothing", cloneState(base), ""},
		{"an endpoint's health", with(base, edit(base, cla, "a", flip(corev3.HealthStatus_UNHEALTHY))), "cluster a"},
		{"a load assignment removed", without(base, &endpointv3.ClusterLoadAssignment{ClusterName: "a"}), "cluster a"},
		{"a cluster's settings", with(base, edit(base, cluster, "b", timeout(time.Second))), "cluster b"},
		{"a route configuration", with(base, regexRoutes("routes-a", "b", "/a/[0-9]+")), "listener http"},
		{"a transparent chain's routes", with(base, regexRoutes("routes-b", "a", "/b/.*")), "listener " + outboundName},
		{"a listener", with(base, xdstest.TCPListener("tcp", "127.0.0.1:9090", "a")), "listener tcp"},
		{"the passthrough cluster's connect timeout", with(base, edit(base, cluster, "original-destination", timeout(time.Second))),
			"listener " + outboundName + ", cluster original-destination"},
		{"a chain's cluster becomes ORIGINAL_DST", with(base, withName(originalDstCluster(), "d")), "listener " + outboundName + ", cluster d"},
		{"the trust bundle", with(base, xdstest.RootsSecretOf(pkitest.Bundle(pkitest.NewCA(t, "other")))), "secret " + xdstest.RootsSecret},
		{"a route configuration's message, content the same", with(base, edit(base, rc, "routes-a", func(*routev3.RouteConfiguration) {})), "listener http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev, err := Compile(base)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Recompile(prev, tt.next)
			if err != nil {
				t.Fatal(err)
			}
			if r := recompiled(prev, got); r != tt.want {
				t.Errorf("compiled anew: %q, want %q", r, tt.want)
			}
			wantRuntime(t, got, tt.next)
			wantRuntime(t, prev, base)
		})
	}
}

func withName(c *clusterv3.Cluster, name string) *clusterv3.Cluster {
	c.Name = name
	return c
}

// wantRuntime fails unless rt is what Compile(s) returns.
func wantRuntime(t *testing.T, rt *Runtime, s xds.State) {
	t.Helper()
	want, err := Compile(s)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if diff := cmp.Diff(want, rt, cmpWhole); diff != "" {
		t.Errorf("runtime differs from Compile's (-want +got):\n%s", diff)
	}
}

// TestRecompileAgreesWithCompile applies random sequences of changes, some
// of which are rejected, each compiled from the runtime last accepted:
// Recompile must return what Compile does, the same errors included, and
// leave the runtime it starts from as it was.
func TestRecompileAgreesWithCompile(t *testing.T) {
	base := recompileBase(t)
	rejected := 0
	for seed := range uint64(10) {
		rng := rand.New(rand.NewPCG(seed, 0))
		s, prev := base, mustCompile(t, base)
		for step := range 30 {
			what, next := randomChange(rng, s)
			got, err := Recompile(prev, next)
			want, wantErr := Compile(next)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) {
				t.Fatalf("seed %d step %d (%s): Recompile error %v, Compile error %v", seed, step, what, err, wantErr)
			}
			if err != nil {
				rejected++
				continue
			}
			if diff := cmp.Diff(want, got, cmpWhole); diff != "" {
				t.Fatalf("seed %d step %d (%s): Recompile differs from Compile (-want +got):\n%s", seed, step, what, diff)
			}
			wantRuntime(t, prev, s)
			s, prev = next, got
		}
	}
	t.Logf("%d of 300 changes rejected", rejected)
}

func mustCompile(t *testing.T, s xds.State) *Runtime {
	t.Helper()
	rt, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// randomChange returns a random change of s, and what it is.
func randomChange(rng *rand.Rand, s xds.State) (string, xds.State) {
	cla, cluster := &endpointv3.ClusterLoadAssignment{}, &clusterv3.Cluster{}
	name := []string{"a", "b", "c", "d"}[rng.IntN(4)]
	routes := []string{"routes-a", "routes-b"}[rng.IntN(2)]
	switch rng.IntN(9) {
	case 0:
		if s.Endpoints.Items[name] == nil {
			return "load assignment " + name + " back", with(s, xdstest.LoadAssignment(name, xdstest.Endpoint("10.0.1.1:80")))
		}
		return "endpoint health of " + name, with(s, edit(s, cla, name, func(cla *endpointv3.ClusterLoadAssignment) {
			e := cla.Endpoints[0].LbEndpoints[0]
			e.HealthStatus = corev3.HealthStatus(1 + (int(e.HealthStatus) % 2)) // HEALTHY ⇄ UNHEALTHY
		}))
	case 1:
		return "load assignment " + name + " removed", without(s, &endpointv3.ClusterLoadAssignment{ClusterName: name})
	case 2:
		return "routes " + routes, with(s, regexRoutes(routes, name, fmt.Sprintf("/%s/[0-9]{%d}", name, rng.IntN(3)+1)))
	case 3:
		if s.Routes.Items[routes] == nil {
			return "routes " + routes + " back", with(s, regexRoutes(routes, name, "/.*"))
		}
		return "routes " + routes + " removed", without(s, &routev3.RouteConfiguration{Name: routes})
	case 4:
		target := []string{"a", "b", "c", "d", "original-destination"}[rng.IntN(5)]
		if s.Clusters.Items[target] == nil {
			return "cluster " + target + " back", with(s, xdstest.EDSCluster(target))
		}
		switch rng.IntN(3) {
		case 0:
			return "cluster " + target + " removed", without(s, &clusterv3.Cluster{Name: target})
		case 1:
			if c := s.Clusters.Items[target].(*clusterv3.Cluster); c.GetType() == clusterv3.Cluster_EDS {
				return "EDS service name of " + target, with(s, edit(s, cluster, target, func(c *clusterv3.Cluster) {
					c.EdsClusterConfig.ServiceName = []string{"", "a", "b"}[rng.IntN(3)]
				}))
			}
		}
		return "connect timeout of " + target, with(s, edit(s, cluster, target, func(c *clusterv3.Cluster) {
			c.ConnectTimeout = durationpb.New(time.Duration(rng.IntN(5)+1) * time.Second)
		}))
	case 5:
		// d is a transparent chain's cluster; c the TCP listener's, which
		// must not be ORIGINAL_DST: the check across resources rejects it.
		target := []string{"c", "d"}[rng.IntN(2)]
		if c, _ := s.Clusters.Items[target].(*clusterv3.Cluster); c.GetType() == clusterv3.Cluster_ORIGINAL_DST {
			return target + " EDS", with(s, xdstest.EDSCluster(target))
		}
		return target + " ORIGINAL_DST", with(s, withName(originalDstCluster(), target))
	case 6:
		return "http listener to " + routes, with(s, xdstest.HTTPListenerRDS("http", "127.0.0.1:8080", routes))
	case 7:
		return "tcp listener on http's address", with(s, xdstest.TCPListener("tcp", "127.0.0.1:8080", name))
	default:
		return "tcp listener to " + name, with(s, xdstest.TCPListener("tcp", "127.0.0.1:9090", name))
	}
}

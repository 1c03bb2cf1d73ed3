package listener

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	origdstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/xds"
)

// transparentRuntime compiles a transparent listener on 127.0.0.1:0 whose
// chains match 127.0.0.1 (where connections in these tests, not
// redirected, are headed) with the given filters, and the clusters.
func transparentRuntime(t *testing.T, match *listenerv3.FilterChainMatch, filters []*listenerv3.Filter, passthrough bool, clusters ...proto.Message) *config.Runtime {
	t.Helper()
	l := &listenerv3.Listener{
		Name:    "outbound_listener:127.0.0.1:0",
		Address: xdstest.SocketAddress("127.0.0.1:0"),
		ListenerFilters: []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.original_dst",
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: xdstest.Any(&origdstv3.OriginalDst{})}}},
	}
	if filters != nil {
		l.FilterChains = []*listenerv3.FilterChain{{Name: "local", FilterChainMatch: match, Filters: filters}}
	}
	if passthrough {
		l.DefaultFilterChain = &listenerv3.FilterChain{Filters: []*listenerv3.Filter{xdstest.TCPProxy("original-destination")}}
		clusters = append(clusters, &clusterv3.Cluster{Name: "original-destination",
			ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST}, LbPolicy: clusterv3.Cluster_CLUSTER_PROVIDED})
	}
	s := xds.State{}
	put := func(r *xds.Resources, name string, m proto.Message) {
		if r.Items == nil {
			r.Items = map[string]proto.Message{}
		}
		r.Items[name], r.Received = m, true
	}
	put(&s.Listeners, l.Name, l)
	for _, c := range clusters {
		put(&s.Clusters, c.(*clusterv3.Cluster).Name, c)
	}
	rt, err := config.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func localhostMatch(port uint32) *listenerv3.FilterChainMatch {
	m := &listenerv3.FilterChainMatch{PrefixRanges: []*corev3.CidrRange{{AddressPrefix: "127.0.0.1", PrefixLen: wrapperspb.UInt32(32)}}}
	if port != 0 {
		m.DestinationPort = wrapperspb.UInt32(port)
	}
	return m
}

func TestTransparentPicksChainByDestination(t *testing.T) {
	tag := tagServer(t, "tcp chain")
	static := func(name, addr string) proto.Message {
		return xdstest.StaticCluster(name, xdstest.Endpoint(addr))
	}
	tests := []struct {
		name  string
		match *listenerv3.FilterChainMatch
		want  string
	}{
		{"destination address matches", localhostMatch(0), "tcp chain"},
		{"another destination port: no chain, no default", localhostMatch(1), ""},
		{"another address: no chain, no default", &listenerv3.FilterChainMatch{PrefixRanges: []*corev3.CidrRange{{AddressPrefix: "10.0.0.0", PrefixLen: wrapperspb.UInt32(8)}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, time.Second)
			rt := transparentRuntime(t, tt.match, []*listenerv3.Filter{xdstest.TCPProxy("tag")}, false, static("tag", tag))
			e.mustApply(rt)
			if got := readAll(t, dial(t, e.addr(rt.Listeners[0].Name))); got != tt.want {
				t.Errorf("read %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTransparentPassthroughToItselfCloses checks that a connection made
// to the transparent listener directly, whose original destination is the
// listener itself, is closed rather than passed through in a loop.
func TestTransparentPassthroughToItselfCloses(t *testing.T) {
	e := newEnv(t, time.Second)
	rt := transparentRuntime(t, nil, nil, true)
	e.mustApply(rt)
	if got := readAll(t, dial(t, e.addr(rt.Listeners[0].Name))); got != "" {
		t.Errorf("read %q, want the connection closed", got)
	}
	if info := e.m.Listeners(); info[0].Mode != "transparent" {
		t.Errorf("listener mode %q, want transparent", info[0].Mode)
	}
}

func TestTransparentHTTPChain(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("app " + r.URL.Path)) }))
	t.Cleanup(app.Close)
	appAddr := app.Listener.Addr().String()
	e := newEnv(t, time.Second)
	hcm := xdstest.HTTPListenerInline("x", "127.0.0.1:1", xdstest.RouteConfig("routes", "app")).FilterChains[0].Filters
	rt := transparentRuntime(t, localhostMatch(0), hcm, false, xdstest.StaticCluster("app", xdstest.Endpoint(appAddr)))
	e.mustApply(rt)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.addr(rt.Listeners[0].Name)+"/hello", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := make([]byte, 64)
	n, _ := resp.Body.Read(body)
	if resp.StatusCode != http.StatusOK || string(body[:n]) != "app /hello" {
		t.Errorf("got %d %q, want 200 \"app /hello\"", resp.StatusCode, body[:n])
	}
}

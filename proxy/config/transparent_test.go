package config

import (
	"net/netip"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	origdstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

const outboundName = "outbound_listener:127.0.0.1:15001"

func originalDstFilter() *listenerv3.ListenerFilter {
	return &listenerv3.ListenerFilter{Name: originalDstFilterName,
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: xdstest.Any(&origdstv3.OriginalDst{})}}
}

// chainTo is a tcp_proxy filter chain to cluster matching prefixes
// ("ip/len") and port (0: any).
func chainTo(name, cluster string, port uint32, prefixes ...string) *listenerv3.FilterChain {
	fc := &listenerv3.FilterChain{Name: name, Filters: []*listenerv3.Filter{xdstest.TCPProxy(cluster)}}
	m := &listenerv3.FilterChainMatch{}
	for _, p := range prefixes {
		pfx := netip.MustParsePrefix(p)
		m.PrefixRanges = append(m.PrefixRanges, &corev3.CidrRange{AddressPrefix: pfx.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(pfx.Bits()))})
	}
	if port != 0 {
		m.DestinationPort = wrapperspb.UInt32(port)
	}
	if len(m.PrefixRanges) > 0 || port != 0 {
		fc.FilterChainMatch = m
	}
	return fc
}

// outboundListener is a transparent proxy's listener as Consul (and Weft's
// control plane) shape it, with a passthrough default chain.
func outboundListener(chains ...*listenerv3.FilterChain) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:               outboundName,
		Address:            xdstest.SocketAddress("127.0.0.1:15001"),
		ListenerFilters:    []*listenerv3.ListenerFilter{originalDstFilter()},
		FilterChains:       chains,
		DefaultFilterChain: &listenerv3.FilterChain{Filters: []*listenerv3.Filter{xdstest.TCPProxy("original-destination")}},
	}
}

func originalDstCluster() *clusterv3.Cluster {
	return &clusterv3.Cluster{Name: "original-destination",
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_ORIGINAL_DST},
		LbPolicy:             clusterv3.Cluster_CLUSTER_PROVIDED, ConnectTimeout: durationpb.New(2e9)}
}

func TestTransparentMatch(t *testing.T) {
	l := outboundListener(
		chainTo("api", "api", 0, "240.0.0.2/32"),
		chainTo("db", "db", 0, "240.0.0.3/32", "10.9.0.7/32"),
		chainTo("ten", "ten", 0, "10.0.0.0/8"),
		chainTo("ten-one", "ten-one", 0, "10.1.0.0/16"),
		chainTo("tls-port", "tls", 8443, "10.1.0.0/16"),
		chainTo("metrics-port", "metrics", 9102),
	)
	rt, err := Compile(state(l, xdstest.EDSCluster("api"), originalDstCluster()))
	if err != nil {
		t.Fatal(err)
	}
	got := rt.Listeners[0]
	if got.Mode != ModeTransparent || got.Address != "127.0.0.1:15001" {
		t.Fatalf("listener mode %v address %s, want transparent on 127.0.0.1:15001", got.Mode, got.Address)
	}
	tests := []struct {
		dst      string
		want     string // chain name; "" for none
		wantMode Mode
	}{
		{"240.0.0.2:8080", "api", ModeTCP},
		{"240.0.0.2:1", "api", ModeTCP},
		{"240.0.0.3:5432", "db", ModeTCP},
		{"10.9.0.7:80", "db", ModeTCP},      // an exact address beats 10/8
		{"10.1.2.3:80", "ten-one", ModeTCP}, // the longest prefix wins
		{"10.200.0.1:80", "ten", ModeTCP},
		{"[::ffff:10.200.0.1]:80", "ten", ModeTCP},
		{"10.1.2.3:8443", "tls-port", ModeTCP},                     // the port decides first
		{"10.2.0.1:8443", "default_filter_chain", ModeOriginalDst}, // its port's chains do not match: no fallback to port-less chains
		{"192.168.1.1:9102", "metrics-port", ModeTCP},
		{"192.168.1.1:80", "default_filter_chain", ModeOriginalDst},
		{"240.0.0.9:8080", "default_filter_chain", ModeOriginalDst},
	}
	for _, tt := range tests {
		t.Run(tt.dst, func(t *testing.T) {
			c := got.Transparent.Match(netip.MustParseAddrPort(tt.dst))
			if c == nil || c.Name != tt.want || c.Mode != tt.wantMode {
				t.Fatalf("Match(%s) = %+v, want chain %q (%v)", tt.dst, c, tt.want, tt.wantMode)
			}
		})
	}
	if c := got.Transparent.Match(netip.MustParseAddrPort("240.0.0.9:1")); c.ConnectTimeout != 2e9 {
		t.Errorf("passthrough connect timeout %v, want the cluster's 2s", c.ConnectTimeout)
	}

	// Without a default chain, unmatched destinations get no chain: the
	// connection is closed (mesh destinations only).
	l.DefaultFilterChain = nil
	rt, err = Compile(state(l, xdstest.EDSCluster("api")))
	if err != nil {
		t.Fatal(err)
	}
	if c := rt.Listeners[0].Transparent.Match(netip.MustParseAddrPort("192.168.1.1:80")); c != nil {
		t.Errorf("Match without default chain = %q, want nil", c.Name)
	}
}

func TestTransparentSubscribesToChainRoutes(t *testing.T) {
	fc := &listenerv3.FilterChain{Name: "api", Filters: xdstest.HTTPListenerRDS("x", "127.0.0.1:1", "api").FilterChains[0].Filters,
		FilterChainMatch: chainTo("", "", 0, "240.0.0.2/32").FilterChainMatch}
	rt, err := Compile(state(outboundListener(fc), originalDstCluster()))
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.Subscriptions.Routes; len(got) != 1 || got[0] != "api" {
		t.Errorf("route subscriptions %v, want [api]", got)
	}
}

func TestTransparentRejects(t *testing.T) {
	modify := func(f func(l *listenerv3.Listener)) *listenerv3.Listener {
		l := outboundListener(chainTo("api", "api", 0, "240.0.0.2/32"))
		f(l)
		return l
	}
	tlsInspector := &listenerv3.ListenerFilter{Name: "envoy.filters.listener.tls_inspector",
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: xdstest.Any(&tlsinspectorv3.TlsInspector{})}}
	httpInspector := &listenerv3.ListenerFilter{Name: "envoy.filters.listener.http_inspector"}
	tests := []struct {
		name    string
		in      []proto.Message
		wantErr string
	}{
		{
			name:    "other listener filter",
			in:      []proto.Message{modify(func(l *listenerv3.Listener) { l.ListenerFilters = []*listenerv3.ListenerFilter{httpInspector} })},
			wantErr: `listener "` + outboundName + `": listener filter "envoy.filters.listener.http_inspector" is not supported here; only envoy.filters.listener.original_dst is`,
		},
		{
			// tls_inspector makes a mesh gateway's listener (sni.go), whose
			// chains match on server_names only.
			name:    "tls_inspector with destination matches",
			in:      []proto.Message{modify(func(l *listenerv3.Listener) { l.ListenerFilters = []*listenerv3.ListenerFilter{tlsInspector} })},
			wantErr: `filter_chain_match: prefix_ranges is not supported`,
		},
		{
			name: "two listener filters",
			in: []proto.Message{modify(func(l *listenerv3.Listener) {
				l.ListenerFilters = append(l.ListenerFilters, tlsInspector)
			})},
			wantErr: `has 2 listener filters; only one, envoy.filters.listener.original_dst, is supported`,
		},
		{
			name:    "use_original_dst",
			in:      []proto.Message{modify(func(l *listenerv3.Listener) { l.UseOriginalDst = wrapperspb.Bool(true) })},
			wantErr: `use_original_dst is not supported; use the envoy.filters.listener.original_dst listener filter`,
		},
		{
			name: "server_names match",
			in: []proto.Message{modify(func(l *listenerv3.Listener) {
				l.FilterChains[0].FilterChainMatch.ServerNames = []string{"api"}
			})},
			wantErr: `filter chain "api": filter_chain_match: server_names is not supported`,
		},
		{
			name: "same match twice",
			in: []proto.Message{modify(func(l *listenerv3.Listener) {
				l.FilterChains = append(l.FilterChains, chainTo("api-again", "api", 0, "240.0.0.2/32"))
			})},
			wantErr: `filter chain "api-again": filter_chain_match: prefix_ranges 240.0.0.2/32: also matched by filter chain "api"`,
		},
		{
			name: "bad prefix",
			in: []proto.Message{modify(func(l *listenerv3.Listener) {
				l.FilterChains[0].FilterChainMatch.PrefixRanges[0].PrefixLen = wrapperspb.UInt32(33)
			})},
			wantErr: `prefix_ranges[0]: prefix_len 33`,
		},
		{
			name: "TLS on a chain",
			in: []proto.Message{modify(func(l *listenerv3.Listener) {
				l.FilterChains[0].TransportSocket = xdstest.DownstreamTLS("weft.local")
			})},
			wantErr: `filter_chains[0] ("api"): transport_socket is not supported on a listener with the envoy.filters.listener.original_dst filter`,
		},
		{
			name:    "default chain without original_dst",
			in:      []proto.Message{modify(func(l *listenerv3.Listener) { l.ListenerFilters = nil })},
			wantErr: `default_filter_chain is supported only with the envoy.filters.listener.original_dst listener filter`,
		},
		{
			name: "ORIGINAL_DST cluster with another lb_policy",
			in: []proto.Message{func() proto.Message {
				c := originalDstCluster()
				c.LbPolicy = clusterv3.Cluster_ROUND_ROBIN
				return c
			}()},
			wantErr: `cluster "original-destination": ORIGINAL_DST cluster: lb_policy ROUND_ROBIN, want CLUSTER_PROVIDED`,
		},
		{
			name: "ORIGINAL_DST cluster with endpoints",
			in: []proto.Message{func() proto.Message {
				c := originalDstCluster()
				c.LoadAssignment = xdstest.LoadAssignment("original-destination", xdstest.Endpoint("10.0.0.1:1"))
				return c
			}()},
			wantErr: `ORIGINAL_DST cluster: load_assignment is not supported`,
		},
		{
			name:    "ORIGINAL_DST cluster on a plain listener",
			in:      []proto.Message{originalDstCluster(), xdstest.TCPListener("plain", "127.0.0.1:9191", "original-destination")},
			wantErr: `listener "plain": tcp_proxy: ORIGINAL_DST cluster "original-destination" needs the envoy.filters.listener.original_dst listener filter`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := Compile(state(tt.in...))
			if err == nil {
				t.Fatalf("Compile succeeded with %+v, want error %q", rt, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Compile error:\n  %v\nwant it to contain:\n  %s", err, tt.wantErr)
			}
		})
	}
}

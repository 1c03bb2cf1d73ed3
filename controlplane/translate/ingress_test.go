package translate

import (
	"maps"
	"slices"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/weft-mesh/weft/catalog"
)

// ingressCases are the golden cases of ingress gateways.
func ingressCases() []goldenCase {
	gw := &catalog.Proxy{ID: "ingress-1", Name: "ingress", Node: "node-1", Kind: catalog.KindIngressGateway, Address: "127.0.0.1", Port: 8443}
	eps := apiEndpoints()
	eps["web"] = []catalog.Endpoint{{ProxyID: "web-1-sidecar-proxy", Node: "node-1", Address: "127.0.0.1", Port: 21000, Health: catalog.HealthPassing, WeightPassing: 1, WeightWarning: 1}}
	eps["db"] = eps["web"]
	return []goldenCase{{
		name: "ingress_gateway",
		snap: &catalog.Snapshot{
			Datacenter: "dc1",
			Proxies:    map[string]*catalog.Proxy{gw.ID: gw},
			Endpoints:  eps,
			ServiceDefaults: map[string]*catalog.ServiceDefaults{
				"api": {Name: "api", Protocol: "http"}, "web": {Name: "web", Protocol: "http"},
			},
			ServiceRouters: map[string]*catalog.ServiceRouter{"web": {Name: "web", Routes: []catalog.ServiceRoute{{
				Match:       &catalog.RouteHTTPMatch{PathPrefix: "/api"},
				Destination: &catalog.RouteDestination{Service: "api"},
			}}}},
			IngressGateways: map[string]*catalog.IngressGateway{"ingress": {Name: "ingress", Listeners: []catalog.IngressListener{
				{Port: 8080, Protocol: "http", Services: []catalog.IngressService{
					{Name: "api", Hosts: []string{"api.example.com"}},
					{Name: "web", Hosts: []string{"web.example.com", "api.example.com"}},
					{Name: "*"},
				}},
				{Port: 9000, Protocol: "tcp", Services: []catalog.IngressService{{Name: "db"}}},
				{Port: 9000, Protocol: "tcp", Services: []catalog.IngressService{{Name: "db"}}},
			}}},
		},
		mesh: testMesh,
	}, {
		// TLS on for every listener, the grpc one's versions and cipher
		// suites its own; the leaf's names cover the hosts of all.
		name: "ingress_gateway_tls",
		snap: &catalog.Snapshot{
			Datacenter: "dc1",
			Proxies:    map[string]*catalog.Proxy{gw.ID: gw},
			Endpoints:  eps,
			ServiceDefaults: map[string]*catalog.ServiceDefaults{
				"api": {Name: "api", Protocol: "http"}, "web": {Name: "web", Protocol: "grpc"},
			},
			IngressGateways: map[string]*catalog.IngressGateway{"ingress": {Name: "ingress",
				TLS: catalog.IngressTLS{Enabled: true, MinVersion: "TLSv1_2", CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}},
				Listeners: []catalog.IngressListener{
					{Port: 8080, Protocol: "http", Services: []catalog.IngressService{{Name: "api", Hosts: []string{"api.example.com"}}}},
					{Port: 8443, Protocol: "grpc", TLS: &catalog.IngressTLS{MaxVersion: "TLSv1_3", CipherSuites: []string{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}},
						Services: []catalog.IngressService{{Name: "web", Hosts: []string{"web.example.com"}}}},
					{Port: 9000, Protocol: "tcp", Services: []catalog.IngressService{{Name: "db"}}},
				}}},
		},
		mesh: testMesh,
	}}
}

// TestIngressListenerTLS: which listeners terminate TLS, with what, and
// what a bad TLS setting does to its listener.
func TestIngressListenerTLS(t *testing.T) {
	gw := &catalog.Proxy{ID: "ingress-1", Name: "ingress", Node: "node-1", Kind: catalog.KindIngressGateway, Address: "127.0.0.1", Port: 8443}
	eps := apiEndpoints()
	eps["db"] = eps["api"]
	listeners := func(l0, l1 *catalog.IngressTLS) []catalog.IngressListener {
		return []catalog.IngressListener{
			{Port: 8080, Protocol: "http", TLS: l0, Services: []catalog.IngressService{{Name: "api", Hosts: []string{"api.example.com"}}}},
			{Port: 9000, TLS: l1, Services: []catalog.IngressService{{Name: "db"}}},
		}
	}
	allNames := []string{"*.ingress.consul", "*.ingress.dc1.consul", "api.example.com"}
	type want struct {
		alpn     []string
		min, max tlsv3.TlsParameters_TlsProtocol
		suites   []string
	}
	tests := []struct {
		name    string
		entry   *catalog.IngressGateway
		want    map[string]*want // by listener name; nil: plaintext
		problem string
	}{
		{name: "no TLS", entry: &catalog.IngressGateway{Listeners: listeners(nil, nil)},
			want: map[string]*want{"ingress:127.0.0.1:8080": nil, "ingress:127.0.0.1:9000": nil}},
		{name: "one listener's TLS", entry: &catalog.IngressGateway{Listeners: listeners(&catalog.IngressTLS{Enabled: true}, nil)},
			want: map[string]*want{"ingress:127.0.0.1:8080": {alpn: []string{"h2", "http/1.1"}, suites: []string{}}, "ingress:127.0.0.1:9000": nil}},
		{name: "the gateway's TLS, a listener's versions", entry: &catalog.IngressGateway{TLS: catalog.IngressTLS{Enabled: true, MinVersion: "TLSv1_1", CipherSuites: []string{"ECDHE-RSA-AES128-GCM-SHA256"}},
			Listeners: listeners(nil, &catalog.IngressTLS{MinVersion: "TLSv1_2", MaxVersion: "TLSv1_3"})},
			want: map[string]*want{
				"ingress:127.0.0.1:8080": {alpn: []string{"h2", "http/1.1"}, min: tlsv3.TlsParameters_TLSv1_1, suites: []string{"ECDHE-RSA-AES128-GCM-SHA256"}},
				"ingress:127.0.0.1:9000": {min: tlsv3.TlsParameters_TLSv1_2, max: tlsv3.TlsParameters_TLSv1_3, suites: []string{"ECDHE-RSA-AES128-GCM-SHA256"}},
			}},
		{name: "unknown version", entry: &catalog.IngressGateway{TLS: catalog.IngressTLS{Enabled: true, MinVersion: "TLSv1.2"}, Listeners: listeners(nil, nil)},
			want:    map[string]*want{},
			problem: `ingress gateway "ingress-1": Listeners[0] (port 8080): TLS.TLSMinVersion "TLSv1.2" is not one of TLSv1_0 … TLSv1_3; the listener is left out`},
		{name: "maximum below minimum", entry: &catalog.IngressGateway{Listeners: listeners(nil, &catalog.IngressTLS{Enabled: true, MinVersion: "TLSv1_3", MaxVersion: "TLSv1_2"})},
			want:    map[string]*want{"ingress:127.0.0.1:8080": nil},
			problem: `ingress gateway "ingress-1": Listeners[1] (port 9000): TLS.TLSMaxVersion "TLSv1_2" is below TLS.TLSMinVersion "TLSv1_3"; the listener is left out`},
		{name: "cipher suites with TLS 1.3", entry: &catalog.IngressGateway{Listeners: listeners(&catalog.IngressTLS{Enabled: true, MinVersion: "TLSv1_3", CipherSuites: []string{"TLS_RSA_WITH_AES_128_GCM_SHA256"}}, nil)},
			want:    map[string]*want{"ingress:127.0.0.1:9000": nil},
			problem: `ingress gateway "ingress-1": Listeners[0] (port 8080): TLS.CipherSuites apply only to TLS 1.2 and earlier, and TLS.TLSMinVersion is "TLSv1_3"; the listener is left out`},
		{name: "unknown cipher suite", entry: &catalog.IngressGateway{Listeners: listeners(&catalog.IngressTLS{Enabled: true, CipherSuites: []string{"TLS_NULL"}}, nil)},
			want:    map[string]*want{"ingress:127.0.0.1:9000": nil},
			problem: `ingress gateway "ingress-1": Listeners[0] (port 8080): TLS.CipherSuites[0]: "TLS_NULL" is not a cipher suite weft-proxy offers; the listener is left out`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.entry.Name = "ingress"
			snap := &catalog.Snapshot{Datacenter: "dc1", Proxies: map[string]*catalog.Proxy{gw.ID: gw}, Endpoints: eps,
				ServiceDefaults: map[string]*catalog.ServiceDefaults{"api": {Name: "api", Protocol: "http"}},
				IngressGateways: map[string]*catalog.IngressGateway{"ingress": tt.entry}}
			r := Translate(snap, testMesh)
			var problems []string
			for _, p := range r.Problems[gw.ID] {
				problems = append(problems, p.Error())
			}
			if tt.problem != "" && !slices.Contains(problems, tt.problem) || tt.problem == "" && len(problems) > 0 {
				t.Errorf("problems %q, want %q", problems, tt.problem)
			}
			got := map[string]*listenerv3.Listener{}
			for _, l := range r.Proxies[gw.ID].Listeners {
				got[l.Name] = l
			}
			if len(got) != len(tt.want) {
				t.Fatalf("listeners %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(tt.want)))
			}
			for name, w := range tt.want {
				l := got[name]
				if l == nil {
					t.Fatalf("no listener %s", name)
				}
				ts := l.FilterChains[0].TransportSocket
				names := l.GetMetadata().GetFilterMetadata()["weft"].GetFields()[IngressDNSNamesField]
				if w == nil {
					if ts != nil || names != nil {
						t.Errorf("%s: transport socket %v, DNS names %v; want plaintext", name, ts, names)
					}
					continue
				}
				var ctx tlsv3.DownstreamTlsContext
				if err := ts.GetTypedConfig().UnmarshalTo(&ctx); err != nil {
					t.Fatal(err)
				}
				wantCtx := &tlsv3.DownstreamTlsContext{RequireClientCertificate: wrapBool(false), CommonTlsContext: &tlsv3.CommonTlsContext{
					TlsParams:                      &tlsv3.TlsParameters{TlsMinimumProtocolVersion: w.min, TlsMaximumProtocolVersion: w.max, CipherSuites: w.suites},
					TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: IngressLeafSecret}},
					AlpnProtocols:                  w.alpn,
				}}
				if diff := cmp.Diff(wantCtx, &ctx, protocmp.Transform()); diff != "" {
					t.Errorf("%s: DownstreamTlsContext (-want +got):\n%s", name, diff)
				}
				var gotNames []string
				for _, v := range names.GetListValue().GetValues() {
					gotNames = append(gotNames, v.GetStringValue())
				}
				if !slices.Equal(gotNames, allNames) {
					t.Errorf("%s: %s %q, want %q", name, IngressDNSNamesField, gotNames, allNames)
				}
				if kind := l.GetMetadata().GetFilterMetadata()["weft"].GetFields()[gatewayField].GetStringValue(); kind != catalog.KindIngressGateway {
					t.Errorf("%s: gateway kind %q, want %q", name, kind, catalog.KindIngressGateway)
				}
			}
		})
	}
}

func TestIngressGatewayWithoutEntry(t *testing.T) {
	gw := &catalog.Proxy{ID: "ingress-1", Name: "ingress", Kind: catalog.KindIngressGateway, Port: 8443}
	r := Translate(&catalog.Snapshot{Datacenter: "dc1", Proxies: map[string]*catalog.Proxy{gw.ID: gw}}, testMesh)
	if n := len(r.Proxies[gw.ID].Listeners); n != 0 {
		t.Errorf("%d listeners without an ingress-gateway entry, want none", n)
	}
	if len(r.Problems[gw.ID]) != 1 {
		t.Errorf("problems %v, want one naming the missing entry", r.Problems[gw.ID])
	}
}

// TestIngressGatewayReportsBadListeners: what of an ingress-gateway entry
// cannot be served is named, with the listener's port and the service,
// and the entry's other listeners and routes are kept. Consul v1.14
// refuses on write an entry with two listeners on one port ("port 9000
// declared on two listeners") or a port out of range, so those cases
// reach Weft only from a Consul that does not check; an unknown service
// it accepts on a tcp listener, and on an http one when service-defaults
// or proxy-defaults make its protocol http (it checks protocols, not
// instances): the service may be registered later, and its route then
// reaches it.
func TestIngressGatewayReportsBadListeners(t *testing.T) {
	gw := &catalog.Proxy{ID: "ingress-1", Name: "ingress", Node: "node-1", Kind: catalog.KindIngressGateway, Address: "127.0.0.1", Port: 8443}
	good := catalog.IngressListener{Port: 8080, Protocol: "http", Services: []catalog.IngressService{{Name: "api", Hosts: []string{"api.example.com"}}}}
	tcp := func(port int, service string) catalog.IngressListener {
		return catalog.IngressListener{Port: port, Protocol: "tcp", Services: []catalog.IngressService{{Name: service}}}
	}
	const prefix = `ingress gateway "ingress-1": `
	const notInMesh = ` has no instance in the mesh (no sidecar or terminating gateway of it is registered in Consul: is the name right?); the route is kept and reaches it once one is registered`
	tests := []struct {
		name      string
		listeners []catalog.IngressListener
		resolvers map[string]*catalog.ServiceResolver
		want      []string // problems
		listening []string // listeners
		hosts     []string // virtual hosts of port 8080
	}{{
		name:      "all good",
		listeners: []catalog.IngressListener{good, tcp(9000, "db")},
		listening: []string{"ingress:127.0.0.1:8080", "ingress:127.0.0.1:9000"},
		hosts:     []string{"api"},
	}, {
		name:      "two listeners on one port",
		listeners: []catalog.IngressListener{good, tcp(9000, "db"), tcp(9000, "api")},
		want:      []string{prefix + `Listeners[2]: port 9000 is another listener's too; the listener is left out`},
		listening: []string{"ingress:127.0.0.1:8080", "ingress:127.0.0.1:9000"},
		hosts:     []string{"api"},
	}, {
		name:      "the good listener's port taken again",
		listeners: []catalog.IngressListener{good, tcp(8080, "db")},
		want:      []string{prefix + `Listeners[1]: port 8080 is another listener's too; the listener is left out`},
		listening: []string{"ingress:127.0.0.1:8080"},
		hosts:     []string{"api"},
	}, {
		name:      "port out of range",
		listeners: []catalog.IngressListener{good, tcp(70000, "db")},
		want:      []string{prefix + `Listeners[1]: port 70000 is not a TCP port; the listener is left out`},
		listening: []string{"ingress:127.0.0.1:8080"},
		hosts:     []string{"api"},
	}, {
		name:      "unknown service on a tcp listener",
		listeners: []catalog.IngressListener{good, tcp(9000, "nosuch")},
		want:      []string{prefix + `listener 9000: service "nosuch"` + notInMesh},
		listening: []string{"ingress:127.0.0.1:8080", "ingress:127.0.0.1:9000"},
		hosts:     []string{"api"},
	}, {
		name: "unknown service on an http listener",
		listeners: []catalog.IngressListener{{Port: 8080, Protocol: "http", Services: []catalog.IngressService{
			{Name: "api", Hosts: []string{"api.example.com"}}, {Name: "nosuch", Hosts: []string{"nosuch.example.com"}},
		}}},
		want:      []string{prefix + `listener 8080: service "nosuch"` + notInMesh},
		listening: []string{"ingress:127.0.0.1:8080"},
		hosts:     []string{"api", "nosuch"},
	}, {
		name:      "redirected to an unknown service",
		listeners: []catalog.IngressListener{good},
		resolvers: map[string]*catalog.ServiceResolver{"api": {Name: "api", Redirect: &catalog.ResolverTarget{Service: "gone"}}},
		want:      []string{prefix + `listener 8080: service "api" routes to "gone", which` + notInMesh},
		listening: []string{"ingress:127.0.0.1:8080"},
		hosts:     []string{"api"},
	}, {
		name:      "an alias redirected to a registered service",
		listeners: []catalog.IngressListener{tcp(9000, "alias")},
		resolvers: map[string]*catalog.ServiceResolver{"alias": {Name: "alias", Redirect: &catalog.ResolverTarget{Service: "db"}}},
		listening: []string{"ingress:127.0.0.1:9000"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := apiEndpoints()
			eps["db"] = eps["api"]
			snap := &catalog.Snapshot{Datacenter: "dc1", Proxies: map[string]*catalog.Proxy{gw.ID: gw}, Endpoints: eps,
				ServiceDefaults: map[string]*catalog.ServiceDefaults{
					"api": {Name: "api", Protocol: "http"}, "nosuch": {Name: "nosuch", Protocol: "http"}, "gone": {Name: "gone", Protocol: "http"},
				},
				ServiceResolvers: tt.resolvers,
				IngressGateways:  map[string]*catalog.IngressGateway{"ingress": {Name: "ingress", Listeners: tt.listeners}}}
			r := Translate(snap, testMesh)
			var problems []string
			for _, p := range r.Problems[gw.ID] {
				problems = append(problems, p.Error())
			}
			if diff := cmp.Diff(tt.want, problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			var listening []string
			for _, l := range r.Proxies[gw.ID].Listeners {
				listening = append(listening, l.Name)
			}
			if diff := cmp.Diff(tt.listening, listening); diff != "" {
				t.Errorf("listeners (-want +got):\n%s", diff)
			}
			var hosts []string
			for _, rc := range r.Proxies[gw.ID].Routes {
				if rc.Name == IngressRouteName(8080) {
					for _, vh := range rc.VirtualHosts {
						hosts = append(hosts, vh.Name)
					}
				}
			}
			if diff := cmp.Diff(tt.hosts, hosts); diff != "" {
				t.Errorf("virtual hosts of port 8080 (-want +got):\n%s", diff)
			}
		})
	}
}

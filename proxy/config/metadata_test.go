package config

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

// weftMetadata is metadata with filter_metadata["weft"] = fields.
func weftMetadata(fields map[string]any) *corev3.Metadata {
	s, err := structpb.NewStruct(fields)
	if err != nil {
		panic(err)
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{EndpointMetadata: s}}
}

func TestCompileClusterTarget(t *testing.T) {
	tests := []struct {
		name     string
		md       *corev3.Metadata
		want     Target
		fromPeer bool
	}{
		{"none", nil, Target{}, false},
		{"other namespaces and fields are ignored", &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
			"envoy.lb": {Fields: map[string]*structpb.Value{"service": structpb.NewNumberValue(1)}},
			"weft":     {Fields: map[string]*structpb.Value{"owner": structpb.NewStringValue("x")}}}}, Target{}, false},
		{"a local service", weftMetadata(map[string]any{"service": "api", "datacenter": "dc1"}), Target{Service: "api", Datacenter: "dc1"}, false},
		{"a peer's service", weftMetadata(map[string]any{"service": "api", "peer": "dc2"}), Target{Service: "api", Peer: "dc2"}, true},
		{"a local service exported to a peer", weftMetadata(map[string]any{"service": "api", "datacenter": "dc1", "peer": "dc2"}),
			Target{Service: "api", Datacenter: "dc1", Peer: "dc2"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := compileOneCluster(t, cluster(func(c *clusterv3.Cluster) { c.Metadata = tt.md }))
			if err != nil {
				t.Fatal(err)
			}
			if c.Target != tt.want || c.Target.FromPeer() != tt.fromPeer {
				t.Errorf("Target = %+v (FromPeer %v), want %+v (%v)", c.Target, c.Target.FromPeer(), tt.want, tt.fromPeer)
			}
		})
	}
}

func TestCompileRejectsBadClusterTarget(t *testing.T) {
	tests := []struct {
		name    string
		fields  map[string]any
		wantErr string
	}{
		{"service not a string", map[string]any{"service": 1}, `filter_metadata["weft"].service must be a string`},
		{"peer not a string", map[string]any{"service": "api", "peer": true}, `filter_metadata["weft"].peer must be a string`},
		{"peer without service", map[string]any{"peer": "dc2"}, "names a datacenter or peer but no service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := compileOneCluster(t, cluster(func(c *clusterv3.Cluster) { c.Metadata = weftMetadata(tt.fields) }))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Compile: %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCompileListenerGateway(t *testing.T) {
	tests := []struct {
		name    string
		md      *corev3.Metadata
		want    Gateway
		wantErr string
	}{
		{"sidecar", nil, NotGateway, ""},
		{"mesh gateway", weftMetadata(map[string]any{"gateway": "mesh-gateway"}), MeshGateway, ""},
		{"terminating gateway", weftMetadata(map[string]any{"gateway": "terminating-gateway"}), TerminatingGateway, ""},
		{"ingress gateway", weftMetadata(map[string]any{"gateway": "ingress-gateway"}), IngressGateway, ""},
		{"api gateway", weftMetadata(map[string]any{"gateway": "api-gateway"}), APIGateway, ""},
		{"unknown kind", weftMetadata(map[string]any{"gateway": "egress-gateway"}), 0, `gateway "egress-gateway" is not a gateway kind`},
		{"not a string", weftMetadata(map[string]any{"gateway": 2}), 0, "gateway must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tcp := xdstest.TCPListener("gw", "127.0.0.1:0", api)
			tcp.Metadata = tt.md
			sni := gatewayListener(sniChain("c", api, nil, []string{"a.example"}))
			sni.Metadata = tt.md
			for _, l := range []*listenerv3.Listener{tcp, sni} {
				rt, err := Compile(state(l, xdstest.EDSCluster(api)))
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
						t.Fatalf("Compile: %v; want an error containing %q", err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := rt.Listeners[0].Gateway; got != tt.want {
					t.Errorf("%s listener: Gateway = %v, want %v", rt.Listeners[0].Mode, got, tt.want)
				}
			}
		})
	}
}

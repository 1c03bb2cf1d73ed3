package translate

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/weft-mesh/weft/catalog"
)

// TestMeshEntryTLS: the mesh entry's TLS.Incoming bounds the mTLS of
// sidecars' public listeners and TLS.Outgoing that of their upstream
// clusters, as in Consul; unset, both are TLS 1.2 at least; a setting
// Consul would refuse is reported for every sidecar and the default
// applies.
func TestMeshEntryTLS(t *testing.T) {
	tls12 := &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2}
	tests := []struct {
		name            string
		mesh            *catalog.Mesh
		wantIn, wantOut *tlsv3.TlsParameters
		problem         string
	}{
		{name: "no mesh entry", wantIn: tls12, wantOut: tls12},
		{name: "incoming TLS 1.3, outgoing at most 1.2 with one suite",
			mesh: &catalog.Mesh{TLSIncoming: &catalog.TLSParams{MinVersion: "TLSv1_3"},
				TLSOutgoing: &catalog.TLSParams{MinVersion: "TLS_AUTO", MaxVersion: "TLSv1_2", CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}}},
			wantIn: &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_3},
			wantOut: &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2, TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_2,
				CipherSuites: []string{"ECDHE-ECDSA-AES128-GCM-SHA256"}}},
		{name: "an unknown version is reported, the default applies",
			mesh:   &catalog.Mesh{TLSIncoming: &catalog.TLSParams{MinVersion: "TLSv9"}},
			wantIn: tls12, wantOut: tls12, problem: `mesh TLS.Incoming.TLSMinVersion "TLSv9" is not one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := ringCatalog(3)
			snap.Mesh = tt.mesh
			res := Translate(snap, testMesh)
			p := res.Proxies["svc-0-0"]
			var in, out *tlsv3.TlsParameters
			for _, l := range p.Listeners {
				if l.Name == "public_listener" {
					in = downstreamParams(t, l)
				}
			}
			for _, c := range p.Clusters {
				if strings.HasPrefix(c.Name, "svc-1.") {
					out = upstreamParams(t, c)
				}
			}
			if diff := cmp.Diff(tt.wantIn, in, protocmp.Transform()); diff != "" {
				t.Errorf("public listener tls_params (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantOut, out, protocmp.Transform()); diff != "" {
				t.Errorf("upstream cluster tls_params (-want +got):\n%s", diff)
			}
			var problems []string
			for _, err := range res.Problems["svc-0-0"] {
				problems = append(problems, err.Error())
			}
			if got := strings.Join(problems, "\n"); (tt.problem == "") != (got == "") || !strings.Contains(got, tt.problem) {
				t.Errorf("problems %q, want one containing %q", got, tt.problem)
			}
		})
	}
}

func downstreamParams(t *testing.T, l *listenerv3.Listener) *tlsv3.TlsParameters {
	t.Helper()
	var ctx tlsv3.DownstreamTlsContext
	if err := l.FilterChains[0].TransportSocket.GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		t.Fatal(err)
	}
	return ctx.CommonTlsContext.TlsParams
}

func upstreamParams(t *testing.T, c *clusterv3.Cluster) *tlsv3.TlsParameters {
	t.Helper()
	var ctx tlsv3.UpstreamTlsContext
	if err := c.TransportSocket.GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		t.Fatal(err)
	}
	return ctx.CommonTlsContext.TlsParams
}

package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/xds"
)

// TestCompilesControlPlaneGoldens compiles every resource set in the
// control plane's translation golden files: what Weft's control plane
// emits, weft-proxy must accept (docs/xds.md).
//
// The goldens' trust bundles hold a placeholder certificate; it is
// replaced by a real root, so that the secrets' shape is what is checked.
func TestCompilesControlPlaneGoldens(t *testing.T) {
	const pattern = "../../controlplane/translate/testdata/*.golden.json"
	files, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no control plane golden file matches %s: the contract would go unchecked", pattern)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var byProxy map[string]json.RawMessage
			if err := json.Unmarshal(raw, &byProxy); err != nil {
				t.Fatal(err)
			}
			for id, doc := range byProxy {
				if id == "problems" {
					continue
				}
				s := goldenState(t, doc)
				rt, err := Compile(s)
				if err != nil {
					t.Errorf("proxy %s: %v", id, err)
					continue
				}
				statesGatewaysAndPeers(t, id, rt)
				for _, name := range rt.Subscriptions.Secrets {
					if rt.Secrets[name] == nil && rt.Certificates[name] == nil {
						t.Errorf("proxy %s: references secret %q, which the golden does not hold", id, name)
					}
				}
			}
		})
	}
}

// statesGatewaysAndPeers checks what the control plane states for the
// gateway metrics and the peer reasons (docs/xds.md, "Gateway and peer
// metadata"): a gateway's listeners name its kind, a sidecar's none; each
// cluster a gateway routes to names its service, and a sidecar's cluster
// of a peer's service names the service and the peer, no datacenter.
func statesGatewaysAndPeers(t *testing.T, id string, rt *Runtime) {
	t.Helper()
	kind := NotGateway
	for _, l := range rt.Listeners {
		want := NotGateway
		switch {
		case l.Name == "mesh_gateway":
			want = MeshGateway
		case l.Name == "terminating_gateway":
			want = TerminatingGateway
		case strings.HasPrefix(l.Name, "ingress:"):
			want = IngressGateway
		case strings.HasPrefix(l.Name, "api-gateway:"):
			want = APIGateway
		}
		if l.Gateway != want {
			t.Errorf("proxy %s: listener %s: gateway %q, want %q", id, l.Name, l.Gateway, want)
		}
		kind = max(kind, l.Gateway)
	}
	for name, c := range rt.Clusters {
		switch {
		case strings.HasSuffix(name, ".peer") && (!c.Target.FromPeer() || c.Target.Service == ""):
			t.Errorf("proxy %s: cluster %s of a peer's service states %+v, want its service and peer", id, name, c.Target)
		case kind != NotGateway && c.Target.Service == "" && c.Aggregate == nil && !strings.HasPrefix(name, "nothing_") && name != "weft-otlp":
			t.Errorf("proxy %s: the %s's cluster %s states no target", id, kind, name)
		}
	}
}

func goldenState(t *testing.T, doc json.RawMessage) xds.State {
	t.Helper()
	var byType map[string][]json.RawMessage
	if err := json.Unmarshal(doc, &byType); err != nil {
		t.Fatal(err)
	}
	var msgs []proto.Message
	decode := func(kind string, newMsg func() proto.Message) {
		for _, r := range byType[kind] {
			m := newMsg()
			if err := protojson.Unmarshal(r, m); err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			if err := m.(interface{ ValidateAll() error }).ValidateAll(); err != nil {
				t.Errorf("%s: invalid: %v", kind, err)
			}
			msgs = append(msgs, m)
		}
	}
	decode("listeners", func() proto.Message { return new(listenerv3.Listener) })
	clustersFrom := len(msgs)
	decode("clusters", func() proto.Message { return new(clusterv3.Cluster) })
	for _, m := range msgs[clustersFrom:] {
		filesOnThisHost(t, m.(*clusterv3.Cluster))
	}
	decode("routes", func() proto.Message { return new(routev3.RouteConfiguration) })
	decode("endpoints", func() proto.Message { return new(endpointv3.ClusterLoadAssignment) })
	before := len(msgs)
	decode("secrets", func() proto.Message { return new(tlsv3.Secret) })
	for _, m := range msgs[before:] {
		if ca := m.(*tlsv3.Secret).GetValidationContext().GetTrustedCa(); ca != nil {
			ca.Specifier = &corev3.DataSource_InlineBytes{InlineBytes: pkitest.NewCA(t, "golden root").PEM()}
		}
	}
	return state(msgs...)
}

// filesOnThisHost points the files a cluster's UpstreamTlsContext names
// — the CA of a server outside the mesh (trusted_ca) and the certificate
// presented to it (tls_certificates), read at compile time — at files
// written for the test: the golden names files of the gateway's host.
func filesOnThisHost(t *testing.T, c *clusterv3.Cluster) {
	t.Helper()
	ts := c.GetTransportSocket()
	var ctx tlsv3.UpstreamTlsContext
	if ts == nil || ts.GetTypedConfig().UnmarshalTo(&ctx) != nil {
		return
	}
	dir := t.TempDir()
	ca := pkitest.NewCA(t, "external CA")
	if trusted := ctx.GetCommonTlsContext().GetValidationContext().GetTrustedCa(); trusted.GetFilename() != "" {
		path := filepath.Join(dir, "ca.pem")
		pkitest.WriteFile(t, path, ca.PEM())
		trusted.Specifier = &corev3.DataSource_Filename{Filename: path}
	}
	for i, tc := range ctx.GetCommonTlsContext().GetTlsCertificates() {
		if tc.GetCertificateChain().GetFilename() == "" && tc.GetPrivateKey().GetFilename() == "" {
			continue
		}
		pair := ca.IssueFiles(t, dir, fmt.Sprintf("client-%d", i), pkitest.LeafSpec{DNSNames: []string{"gateway.example"}})
		tc.CertificateChain = &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: pair.CertFile}}
		tc.PrivateKey = &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: pair.KeyFile}}
	}
	typed, err := anypb.New(&ctx)
	if err != nil {
		t.Fatal(err)
	}
	ts.ConfigType = &corev3.TransportSocket_TypedConfig{TypedConfig: typed}
}

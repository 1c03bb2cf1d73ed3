package admin

import (
	"encoding/json"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/proxy/xds"
)

const (
	chainPEM = "-----BEGIN CERTIFICATE-----\nchain\n-----END CERTIFICATE-----\n"
	keyPEM   = "-----BEGIN PRIVATE KEY-----\nTOP-SECRET\n-----END PRIVATE KEY-----\n"
)

func inline(s string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: s}}
}

// TestConfigDumpRedactsPrivateKeys: /config_dump shows "[redacted]" for
// every value Envoy's API marks sensitive — a certificate secret's
// private key, a TLS context's inline key packed in an Any — and the rest
// as it is; the accepted state itself keeps its keys.
func TestConfigDumpRedactsPrivateKeys(t *testing.T) {
	cert := &tlsv3.Secret{Name: "api-gateway-certificate/api", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: inline(chainPEM), PrivateKey: inline(keyPEM),
	}}}
	roots := &tlsv3.Secret{Name: "weft-roots", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: inline(chainPEM)}}}
	upstream, err := anypb.New(&tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{TlsCertificates: []*tlsv3.TlsCertificate{{
		CertificateChain: inline(chainPEM), PrivateKey: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: []byte(keyPEM)}},
	}}}})
	if err != nil {
		t.Fatal(err)
	}
	cluster := &clusterv3.Cluster{Name: "c", TransportSocket: &corev3.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: upstream}}}
	state := xds.State{
		Secrets:  xds.Resources{Received: true, Items: map[string]proto.Message{cert.Name: cert, roots.Name: roots}},
		Clusters: xds.Resources{Received: true, Items: map[string]proto.Message{"c": cluster}},
	}
	before := []proto.Message{proto.Clone(cert), proto.Clone(roots), proto.Clone(cluster)}

	_, body := serve(t, &fakeSource{state: state}, "/config_dump")
	if strings.Contains(body, "TOP-SECRET") || strings.Contains(body, "VE9QLVNFQ1JFV") { // the key, as is or in base64
		t.Fatalf("/config_dump shows a private key:\n%s", body)
	}
	var dump struct {
		Resources map[string]struct{ Items map[string]json.RawMessage }
	}
	if err := json.Unmarshal([]byte(body), &dump); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		kind, name string
		want       proto.Message
	}{
		{"secrets", cert.Name, &tlsv3.Secret{Name: cert.Name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: inline(chainPEM), PrivateKey: inline(redacted)}}}},
		{"secrets", roots.Name, roots},
	}
	for _, tt := range tests {
		got := proto.Clone(tt.want)
		proto.Reset(got)
		if err := protojson.Unmarshal(dump.Resources[tt.kind].Items[tt.name], got); err != nil {
			t.Fatalf("%s %q: %v", tt.kind, tt.name, err)
		}
		if !proto.Equal(got, tt.want) {
			t.Errorf("%s %q dumped as %v, want %v", tt.kind, tt.name, got, tt.want)
		}
	}
	var c clusterv3.Cluster
	if err := protojson.Unmarshal(dump.Resources["clusters"].Items["c"], &c); err != nil {
		t.Fatal(err)
	}
	var ctx tlsv3.UpstreamTlsContext
	if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		t.Fatal(err)
	}
	if key := ctx.GetCommonTlsContext().GetTlsCertificates()[0].GetPrivateKey().GetInlineBytes(); string(key) != redacted {
		t.Errorf("the cluster's inline key dumped as %q, want %q", key, redacted)
	}
	for i, m := range []proto.Message{cert, roots, cluster} {
		if diff := cmp.Diff(before[i], m, protocmp.Transform()); diff != "" {
			t.Errorf("dumping changed the accepted resource (-before +after):\n%s", diff)
		}
	}
}

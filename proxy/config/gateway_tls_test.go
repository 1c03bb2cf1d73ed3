package config

import (
	"bytes"
	"crypto/tls"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/match"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/xds"
)

// The shapes of a terminating gateway (docs/xds.md, "Terminating
// gateways"): SNI chains that terminate TLS with a linked service's leaf,
// and clusters that originate TLS to a server outside the mesh.

const (
	extSNI   = "ext.default.dc1.internal.weft.local"
	extHost  = "ext.example.com"
	extChain = "ext.default.dc1"
)

// linkedTLS is the DownstreamTlsContext of a terminating gateway's chain:
// the mesh's mTLS, presenting the leaf secret named leaf.
func linkedTLS(leaf string) *corev3.TransportSocket {
	var ctx tlsv3.DownstreamTlsContext
	if err := xdstest.DownstreamTLS("weft.local").GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		panic(err)
	}
	ctx.CommonTlsContext.TlsCertificateSdsSecretConfigs[0].Name = leaf
	return xdstest.TransportSocket(&ctx)
}

// gatewayListener is a tls_inspector listener with chains.
func gatewayListener(chains ...*listenerv3.FilterChain) *listenerv3.Listener {
	return &listenerv3.Listener{
		Name:    "terminating_gateway",
		Address: xdstest.SocketAddress("127.0.0.1:8443"),
		ListenerFilters: []*listenerv3.ListenerFilter{{Name: "envoy.filters.listener.tls_inspector",
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: xdstest.Any(&tlsinspectorv3.TlsInspector{})}}},
		FilterChains: chains,
	}
}

// sniChain is a chain matched by names, with ts (nil: passthrough) and
// filters, tcp_proxy to cluster last.
func sniChain(name, cluster string, ts *corev3.TransportSocket, names []string, filters ...*listenerv3.Filter) *listenerv3.FilterChain {
	return &listenerv3.FilterChain{Name: name, FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: names},
		TransportSocket: ts, Filters: append(filters, xdstest.TCPProxy(cluster))}
}

func denyAll() *listenerv3.Filter {
	return xdstest.NetworkRBAC(xdstest.RBAC(rbacv3.RBAC_DENY, map[string]*rbacv3.Policy{"all": xdstest.Policy(xdstest.AnyPermission(), &rbacv3.Principal{Identifier: &rbacv3.Principal_Any{Any: true}})}))
}

// externalTLS is the UpstreamTlsContext of a cluster to a server outside
// the mesh: no client certificate, the server's CA in trusted_ca, sni and
// DNS SAN matchers.
func externalTLS(ca *corev3.DataSource, sni string, dnsSANs ...string) *corev3.TransportSocket {
	v := &tlsv3.CertificateValidationContext{TrustedCa: ca}
	for _, n := range dnsSANs {
		v.MatchTypedSubjectAltNames = append(v.MatchTypedSubjectAltNames, &tlsv3.SubjectAltNameMatcher{
			SanType: tlsv3.SubjectAltNameMatcher_DNS, Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: n}}})
	}
	return xdstest.TransportSocket(&tlsv3.UpstreamTlsContext{Sni: sni, CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsParams:             &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
		ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: v},
	}})
}

func inlineCA(pem []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: string(pem)}}
}

func fileSource(path string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path}}
}

// upstreamLeaf is a mesh cluster presenting the leaf secret named leaf.
func upstreamLeaf(leaf string) *clusterv3.Cluster {
	return upstream(func(c *tlsv3.UpstreamTlsContext) { c.CommonTlsContext.TlsCertificateSdsSecretConfigs[0].Name = leaf })
}

// TestCompileTerminatingGateway: the accepted shapes, what they compile
// to, and the leaves the configuration asks the proxy for.
func TestCompileTerminatingGateway(t *testing.T) {
	ca := pkitest.NewCA(t, "external")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	pkitest.WriteFile(t, caFile, ca.PEM())
	client := ca.IssueFiles(t, dir, "gateway", pkitest.LeafSpec{DNSNames: []string{"gateway.example"}})
	withCert := func(c *mtls.Client, p pkitest.Pair) *mtls.Client {
		cert, err := tls.X509KeyPair(p.CertPEM, p.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		c.ExternalCert = &cert
		return c
	}
	inlineTrust, err := mtls.NewInlineCA(ca.PEM())
	if err != nil {
		t.Fatal(err)
	}
	meshServer := func(leaf string) *mtls.Server {
		return &mtls.Server{MinVersion: tls.VersionTLS12, RequireClientCert: true, TrustBundle: RootsSecret, Leaf: leaf,
			PeerURISANs: []match.String{match.MustString(match.Prefix, "spiffe://weft.local/", false)}}
	}
	external := func(sni string, dns ...string) *mtls.Client {
		c := &mtls.Client{SNI: sni, MinVersion: tls.VersionTLS12, Inline: inlineTrust, External: true}
		for _, n := range dns {
			c.PeerDNSSANs = append(c.PeerDNSSANs, match.MustString(match.Exact, n, false))
		}
		return c
	}
	cmpOpts := cmp.Options{cmpTLS, cmp.Comparer((*mtls.InlineTrust).Equal), cmp.Comparer(func(a, b *tls.Certificate) bool {
		return (a == nil) == (b == nil) && (a == nil || slices.EqualFunc(a.Certificate, b.Certificate, bytes.Equal))
	})}
	tests := []struct {
		name       string
		in         []proto.Message
		listener   func(*Runtime) *mtls.Server // the TLS to compare, when any
		want       *mtls.Server
		cluster    *mtls.Client // want of cluster api, when set
		wantOwn    bool
		wantLinked []string
		wantSubs   xds.Subscriptions
	}{
		{
			name:     "public listener presenting a linked leaf",
			in:       []proto.Message{xdstest.WithListenerTLS(xdstest.TCPListener("public_listener", "127.0.0.1:1", "c"), linkedTLS("weft-leaf/ext"))},
			listener: func(rt *Runtime) *mtls.Server { return rt.Listeners[0].TLS },
			want:     meshServer("ext"), wantLinked: []string{"ext"}, wantSubs: xds.Subscriptions{Secrets: []string{RootsSecret}},
		},
		{
			name:       "cluster presenting a linked leaf",
			in:         []proto.Message{upstreamLeaf("weft-leaf/db")},
			cluster:    &mtls.Client{SNI: api, MinVersion: tls.VersionTLS12, TrustBundle: RootsSecret, Leaf: "db", PeerURISANs: []match.String{match.MustString(match.Exact, "spiffe://weft.local/ns/default/dc/dc1/svc/api", false)}},
			wantLinked: []string{"db"}, wantSubs: xds.Subscriptions{Endpoints: []string{api}, Secrets: []string{RootsSecret}},
		},
		{
			name: "SNI chain terminating TLS with RBAC, next to a passthrough chain",
			in: []proto.Message{gatewayListener(
				sniChain(extChain, extChain, linkedTLS("weft-leaf/ext"), []string{extChain, extSNI}, denyAll()),
				sniChain("db.default.dc1", "db.default.dc1", linkedTLS("weft-leaf/db"), []string{"db.default.dc1"}),
				sniChain("pass", "pass", nil, []string{"*.dc2.internal.weft.local"}),
				sniChain("own", "own", linkedTLS("weft-leaf"), []string{"own.example"}),
			)},
			listener: func(rt *Runtime) *mtls.Server {
				l := rt.Listeners[0].SNI.Match(extSNI)
				if len(l.RBAC) != 1 || l.Cluster != extChain || rt.Listeners[0].SNI.Match("a.dc2.internal.weft.local").TLS != nil {
					t.Errorf("chains: ext %+v, passthrough %+v", l, rt.Listeners[0].SNI.Match("a.dc2.internal.weft.local"))
				}
				return l.TLS
			},
			want: meshServer("ext"), wantOwn: true, wantLinked: []string{"db", "ext"}, wantSubs: xds.Subscriptions{Secrets: []string{RootsSecret}},
		},
		{
			name:    "external TLS, inline CA, hostname from the SNI",
			in:      []proto.Message{xdstest.WithClusterTLS(xdstest.EDSCluster(api), externalTLS(inlineCA(ca.PEM()), extHost))},
			cluster: external(extHost), wantSubs: xds.Subscriptions{Endpoints: []string{api}},
		},
		{
			name:    "external TLS, CA file, DNS SAN matchers",
			in:      []proto.Message{xdstest.WithClusterTLS(xdstest.EDSCluster(api), externalTLS(fileSource(caFile), extHost, extHost, "ext-2.example.com"))},
			cluster: external(extHost, extHost, "ext-2.example.com"), wantSubs: xds.Subscriptions{Endpoints: []string{api}},
		},
		{
			name:    "external TLS with a client certificate from files",
			in:      []proto.Message{xdstest.WithClusterTLS(xdstest.EDSCluster(api), withClientCertFiles(externalTLS(fileSource(caFile), extHost), client.CertFile, client.KeyFile))},
			cluster: withCert(external(extHost), client), wantSubs: xds.Subscriptions{Endpoints: []string{api}},
		},
		{
			name:    "external TLS, DNS SAN matchers without SNI",
			in:      []proto.Message{xdstest.WithClusterTLS(xdstest.EDSCluster(api), externalTLS(inlineCA(ca.PEM()), "", extHost))},
			cluster: external("", extHost), wantSubs: xds.Subscriptions{Endpoints: []string{api}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := Compile(state(tt.in...))
			if err != nil {
				t.Fatal(err)
			}
			if tt.listener != nil {
				if diff := cmp.Diff(tt.want, tt.listener(rt), cmpOpts); diff != "" {
					t.Errorf("listener TLS (-want +got):\n%s", diff)
				}
			}
			if tt.cluster != nil {
				if diff := cmp.Diff(tt.cluster, rt.Clusters[api].TLS, cmpOpts); diff != "" {
					t.Errorf("cluster TLS (-want +got):\n%s", diff)
				}
			}
			if rt.UsesLeaf != tt.wantOwn || !cmp.Equal(rt.LinkedLeaves, tt.wantLinked, cmpopts.EquateEmpty()) {
				t.Errorf("UsesLeaf %v, LinkedLeaves %q; want %v, %q", rt.UsesLeaf, rt.LinkedLeaves, tt.wantOwn, tt.wantLinked)
			}
			if diff := cmp.Diff(tt.wantSubs, rt.Subscriptions, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("subscriptions (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCompileRejectsTerminatingGatewayShapes: each refused shape, its
// error naming the field and the value.
func TestCompileRejectsTerminatingGatewayShapes(t *testing.T) {
	ca := pkitest.NewCA(t, "external")
	dir := t.TempDir()
	badPEM := filepath.Join(dir, "bad.pem")
	pkitest.WriteFile(t, badPEM, []byte("not PEM"))
	pair := ca.IssueFiles(t, dir, "gateway", pkitest.LeafSpec{DNSNames: []string{"gateway.example"}})
	otherPair := ca.IssueFiles(t, dir, "other", pkitest.LeafSpec{DNSNames: []string{"other.example"}})
	const pl = `listener "public_listener": filter chain 0: DownstreamTlsContext: common_tls_context: |`
	const cl = `cluster "api.default.dc1": UpstreamTlsContext: |`
	const gw = `listener "terminating_gateway": |`
	publicWith := func(ts *corev3.TransportSocket) *listenerv3.Listener {
		return xdstest.WithListenerTLS(xdstest.TCPListener("public_listener", "127.0.0.1:1", "c"), ts)
	}
	externalCluster := func(ts *corev3.TransportSocket) *clusterv3.Cluster {
		return xdstest.WithClusterTLS(xdstest.EDSCluster(api), ts)
	}
	externalWith := func(edit func(*tlsv3.UpstreamTlsContext)) *clusterv3.Cluster {
		var ctx tlsv3.UpstreamTlsContext
		if err := externalTLS(inlineCA(ca.PEM()), extHost).GetTypedConfig().UnmarshalTo(&ctx); err != nil {
			t.Fatal(err)
		}
		edit(&ctx)
		return externalCluster(xdstest.TransportSocket(&ctx))
	}
	uriSAN := &tlsv3.SubjectAltNameMatcher{SanType: tlsv3.SubjectAltNameMatcher_URI, Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "spiffe://weft.local/x"}}}
	hcmChain := &listenerv3.FilterChain{Name: "http", FilterChainMatch: &listenerv3.FilterChainMatch{ServerNames: []string{"web.example"}}, TransportSocket: linkedTLS("weft-leaf/web"),
		Filters: []*listenerv3.Filter{xdstest.HCM(&hcmv3.HttpConnectionManager{RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: xdstest.RouteConfig("r", "c")}})}}
	tests := []struct {
		name    string
		in      proto.Message
		wantErr string
	}{
		{"linked leaf without a service", publicWith(linkedTLS("weft-leaf/")),
			pl + `tls_certificate_sds_secret_configs: secret "weft-leaf/": no service after "weft-leaf/"`},
		{"linked leaf with a slash", publicWith(linkedTLS("weft-leaf/ext/x")),
			pl + `tls_certificate_sds_secret_configs: secret "weft-leaf/ext/x": service "ext/x" contains a slash`},
		{"linked leaf with a space", publicWith(linkedTLS("weft-leaf/e xt")),
			pl + `secret "weft-leaf/e xt": service "e xt" is not a service name`},
		{"other local secret", publicWith(linkedTLS("weft-leafs/ext")),
			pl + `secret "weft-leafs/ext" has no sds_config and is not "weft-leaf" nor "weft-leaf/<service>"`},
		{"two leaves", downstream(func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificateSdsSecretConfigs = append(c.CommonTlsContext.TlsCertificateSdsSecretConfigs, &tlsv3.SdsSecretConfig{Name: "weft-leaf/ext"})
		}), pl + `tls_certificate_sds_secret_configs: want exactly one, the secret "weft-leaf" or "weft-leaf/<service>", have 2`},
		{"linked leaf over SDS", publicWith(downstreamEdit(linkedTLS("weft-leaf/ext"), func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificateSdsSecretConfigs[0].SdsConfig = xdstest.ADS()
		})), pl + `secret "weft-leaf/ext" is a mesh leaf: provided locally for mesh mTLS`},
		{"external: the mesh bundle over SDS", upstream(func(c *tlsv3.UpstreamTlsContext) {
			c.CommonTlsContext.TlsCertificateSdsSecretConfigs = nil
		}), cl + `common_tls_context: without a mesh leaf (TLS to a server outside the mesh), validation_context with trusted_ca, the server's roots, is required; have combined_validation_context`},
		{"external: SPIFFE validator", externalWith(func(c *tlsv3.UpstreamTlsContext) {
			v := c.CommonTlsContext.GetValidationContext()
			td := &tlsv3.SPIFFECertValidatorConfig_TrustDomain{Name: "weft.local", TrustBundle: inlineCA(ca.PEM())}
			v.TrustedCa, v.CustomValidatorConfig = nil, &corev3.TypedExtensionConfig{Name: "envoy.tls.cert_validator.spiffe",
				TypedConfig: xdstest.Any(&tlsv3.SPIFFECertValidatorConfig{TrustDomains: []*tlsv3.SPIFFECertValidatorConfig_TrustDomain{td}})}
		}), cl + `common_tls_context: validation_context: custom_validator_config is not supported without a mesh leaf`},
		{"external: no trusted_ca", externalWith(func(c *tlsv3.UpstreamTlsContext) {
			c.CommonTlsContext.GetValidationContext().TrustedCa = nil
		}), cl + `common_tls_context: validation_context: trusted_ca: empty`},
		{"external: URI SAN matcher", externalWith(func(c *tlsv3.UpstreamTlsContext) {
			c.CommonTlsContext.GetValidationContext().MatchTypedSubjectAltNames = []*tlsv3.SubjectAltNameMatcher{uriSAN}
		}), cl + `validation_context: match_typed_subject_alt_names[0]: san_type URI is not supported here; without a mesh leaf the server is outside the mesh and verified by its DNS names`},
		{"external: neither SNI nor DNS SANs", externalWith(func(c *tlsv3.UpstreamTlsContext) { c.Sni = "" }),
			cl + `without a mesh leaf the server is verified by its DNS name: set sni or match_typed_subject_alt_names of san_type DNS`},
		{"external: CA file missing", externalCluster(externalTLS(fileSource(filepath.Join(dir, "missing.pem")), extHost)),
			cl + `validation_context: trusted_ca: filename "` + filepath.Join(dir, "missing.pem") + `": stat`},
		{"external: CA file is a directory", externalCluster(externalTLS(fileSource(dir), extHost)),
			cl + `validation_context: trusted_ca: filename "` + dir + `": not a regular file`},
		{"external: CA file without PEM", externalCluster(externalTLS(fileSource(badPEM), extHost)),
			cl + `validation_context: trusted_ca: no PEM certificates`},
		{"external: two client certificates", externalWith(func(c *tlsv3.UpstreamTlsContext) {
			c.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{certFiles(pair.CertFile, pair.KeyFile), certFiles(pair.CertFile, pair.KeyFile)}
		}), cl + `common_tls_context: tls_certificates: want at most one, have 2`},
		{"external: inline private key", externalWith(func(c *tlsv3.UpstreamTlsContext) {
			tc := certFiles(pair.CertFile, pair.KeyFile)
			tc.PrivateKey = &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: pair.KeyPEM}}
			c.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{tc}
		}), cl + `common_tls_context: tls_certificates[0]: private_key: inline_bytes is not supported: name a file on the proxy's host (filename); a private key never travels over xDS`},
		{"external: no private key", externalWith(func(c *tlsv3.UpstreamTlsContext) {
			tc := certFiles(pair.CertFile, pair.KeyFile)
			tc.PrivateKey = nil
			c.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{tc}
		}), cl + `common_tls_context: tls_certificates[0]: private_key: required`},
		{"external: key of another certificate", externalWith(func(c *tlsv3.UpstreamTlsContext) {
			c.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{certFiles(pair.CertFile, otherPair.KeyFile)}
		}), cl + `common_tls_context: tls_certificates[0]: ` + pair.CertFile + ` and ` + otherPair.KeyFile + `: tls: private key does not match public key`},
		{"external: key file missing", externalWith(func(c *tlsv3.UpstreamTlsContext) {
			c.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{certFiles(pair.CertFile, filepath.Join(dir, "missing.key"))}
		}), cl + `tls_certificates[0]: private_key: filename "` + filepath.Join(dir, "missing.key") + `": stat`},
		{"external: certificate file missing", externalWith(func(c *tlsv3.UpstreamTlsContext) {
			c.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{certFiles(filepath.Join(dir, "missing.pem"), pair.KeyFile)}
		}), cl + `tls_certificates[0]: certificate_chain: filename "` + filepath.Join(dir, "missing.pem") + `": stat`},
		{"external: key with a password", externalWith(func(c *tlsv3.UpstreamTlsContext) {
			tc := certFiles(pair.CertFile, pair.KeyFile)
			tc.Password = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "x"}}
			c.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{tc}
		}), cl + `tls_certificates[0]: password is not supported`},
		{"mesh TLS: a certificate from files too", upstream(func(c *tlsv3.UpstreamTlsContext) {
			c.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{certFiles(pair.CertFile, pair.KeyFile)}
		}), cl + `common_tls_context: tls_certificates is not supported`},
		{"mesh TLS: CA from a file", upstream(func(c *tlsv3.UpstreamTlsContext) {
			c.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: fileSource("/etc/ca.pem")}}
		}), cl + `common_tls_context: validation_context: trusted_ca: only inline_bytes and inline_string are supported`},
		{"mesh TLS: DNS SAN matcher", upstream(func(c *tlsv3.UpstreamTlsContext) {
			combined(c.CommonTlsContext).DefaultValidationContext.MatchTypedSubjectAltNames[0].SanType = tlsv3.SubjectAltNameMatcher_DNS
		}), cl + `match_typed_subject_alt_names[0]: san_type DNS is not supported here; mesh peers are identified by their SPIFFE ID (URI)`},
		{"listener without a certificate of its own", publicWith(downstreamEdit(linkedTLS("weft-leaf"), func(c *tlsv3.DownstreamTlsContext) {
			c.CommonTlsContext.TlsCertificateSdsSecretConfigs = nil
		})), pl + `want exactly one, the secret "weft-leaf" or "weft-leaf/<service>", have 0`},
		{"SNI chain: HTTP behind TLS", gatewayListener(hcmChain),
			gw + `filter_chains[0] ("http"): only tcp_proxy is supported with the envoy.filters.listener.tls_inspector filter, not http_connection_manager`},
		{"SNI chain: RBAC without TLS", gatewayListener(sniChain("pass", "pass", nil, []string{"a.example"}, denyAll())),
			gw + `filter_chains[0] ("pass"): network RBAC needs a transport_socket with the envoy.filters.listener.tls_inspector filter`},
		{"SNI chain: bad linked leaf", gatewayListener(sniChain(extChain, extChain, linkedTLS("weft-leaf/"), []string{extSNI})),
			gw + `filter_chains[0] ("ext.default.dc1"): DownstreamTlsContext: common_tls_context: tls_certificate_sds_secret_configs: secret "weft-leaf/": no service`},
		{"SNI chain: upstream context", gatewayListener(sniChain(extChain, extChain, externalTLS(inlineCA(ca.PEM()), extHost), []string{extSNI})),
			gw + `filter_chains[0] ("ext.default.dc1"): transport socket "envoy.transport_sockets.tls" (type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext) is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(state(tt.in))
			resource, detail, _ := strings.Cut(tt.wantErr, "|")
			if err == nil || !strings.HasPrefix(err.Error(), resource) || !strings.Contains(err.Error(), detail) {
				t.Errorf("Compile error:\n  %v\nwant it to start with %q and contain:\n  %s", err, resource, detail)
			}
		})
	}
}

// certFiles is a tls_certificates entry of files.
func certFiles(cert, key string) *tlsv3.TlsCertificate {
	return &tlsv3.TlsCertificate{CertificateChain: fileSource(cert), PrivateKey: fileSource(key)}
}

// withClientCertFiles adds a client certificate of files to an
// UpstreamTlsContext transport socket.
func withClientCertFiles(ts *corev3.TransportSocket, cert, key string) *corev3.TransportSocket {
	var ctx tlsv3.UpstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		panic(err)
	}
	ctx.CommonTlsContext.TlsCertificates = []*tlsv3.TlsCertificate{certFiles(cert, key)}
	return xdstest.TransportSocket(&ctx)
}

// downstreamEdit edits a DownstreamTlsContext transport socket.
func downstreamEdit(ts *corev3.TransportSocket, edit func(*tlsv3.DownstreamTlsContext)) *corev3.TransportSocket {
	var ctx tlsv3.DownstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&ctx); err != nil {
		panic(err)
	}
	edit(&ctx)
	return xdstest.TransportSocket(&ctx)
}

package translate

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/certs"
)

// Secret names of the mTLS contract (docs/xds.md).
const (
	// LeafSecret is the sidecar's own certificate. It is never sent over
	// xDS: the sidecar holds its key and obtains the leaf from the
	// certificate service, so it is referenced without an sds_config.
	LeafSecret = "weft-leaf"
	// RootsSecret is the trust bundle, served over ADS.
	RootsSecret = "weft-roots"
	// IngressLeafSecret is an ingress gateway's certificate for outside
	// clients: a leaf of the mesh's CA with the gateway's SPIFFE ID and
	// the DNS names its TLS listeners' metadata lists
	// (IngressDNSNamesField). Like LeafSecret it is never sent over xDS:
	// the gateway holds its key and has the leaf signed by the
	// certificate service, which allows exactly those names.
	IngressLeafSecret = "weft-ingress-leaf"

	tlsTransportSocket = "envoy.transport_sockets.tls"
)

// ALPN protocols: a public listener of an HTTP service offers both; an
// upstream cluster offers only the protocol its HttpProtocolOptions name,
// so the two sidecars can never agree on a protocol the client will not
// speak.
var (
	httpALPN  = []string{"h2", "http/1.1"}
	http1ALPN = []string{"http/1.1"}
	http2ALPN = []string{"h2"}
)

// rootsSecret is the trust bundle as an SDS secret; the first root in the
// PEM is the one currently signing leaves.
func rootsSecret(rootsPEM []byte) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: RootsSecret,
		Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: rootsPEM}},
		}},
	}
}

// meshTLSDefault are the tls_params of the mesh's mTLS when the mesh
// entry sets none: TLS 1.2 at least.
func meshTLSDefault() *tlsv3.TlsParameters {
	return &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2}
}

// withMeshTLS sets mesh's mTLS parameters from the mesh entry's TLS
// (Incoming, Outgoing); a direction whose settings are refused keeps the
// default, and the refusal is returned.
func withMeshTLS(mesh Mesh, entry *catalog.Mesh) (Mesh, []string) {
	var problems []string
	direction := func(p *catalog.TLSParams, field string) *tlsv3.TlsParameters {
		if p == nil {
			return meshTLSDefault()
		}
		params, err := tlsParameters(p.MinVersion, p.MaxVersion, p.CipherSuites,
			tlsFields{min: field + ".TLSMinVersion", max: field + ".TLSMaxVersion", suites: field + ".CipherSuites"})
		if err != nil {
			problems = append(problems, fmt.Sprintf("%v; TLS 1.2 at least with Go's cipher suites applies", err))
			return meshTLSDefault()
		}
		if params.TlsMinimumProtocolVersion == tlsv3.TlsParameters_TLS_AUTO {
			params.TlsMinimumProtocolVersion = tlsv3.TlsParameters_TLSv1_2
		}
		if len(params.CipherSuites) == 0 {
			params.CipherSuites = nil
		}
		return params
	}
	var in, out *catalog.TLSParams
	if entry != nil {
		in, out = entry.TLSIncoming, entry.TLSOutgoing
	}
	mesh.tlsIncoming, mesh.tlsOutgoing = direction(in, "TLS.Incoming"), direction(out, "TLS.Outgoing")
	return mesh, problems
}

// incomingTLS and outgoingTLS are the tls_params of the mesh's mTLS to a
// public listener and to an upstream (the default when the translator
// has set none).
func (m Mesh) incomingTLS() *tlsv3.TlsParameters { return orDefault(m.tlsIncoming) }
func (m Mesh) outgoingTLS() *tlsv3.TlsParameters { return orDefault(m.tlsOutgoing) }

func orDefault(p *tlsv3.TlsParameters) *tlsv3.TlsParameters {
	if p == nil {
		return meshTLSDefault()
	}
	return p
}

// commonTLS is the TLS context shared by both directions: the local leaf,
// the bundle over ADS, SAN matchers on the peer's SPIFFE ID (any may
// match), and the direction's tls_params.
func commonTLS(peerSANs []*matcherv3.StringMatcher, alpn []string, params *tlsv3.TlsParameters) *tlsv3.CommonTlsContext {
	sans := make([]*tlsv3.SubjectAltNameMatcher, len(peerSANs))
	for i, m := range peerSANs {
		sans[i] = &tlsv3.SubjectAltNameMatcher{SanType: tlsv3.SubjectAltNameMatcher_URI, Matcher: m}
	}
	return &tlsv3.CommonTlsContext{
		TlsParams:                      params,
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: LeafSecret}},
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext: &tlsv3.CertificateValidationContext{
					MatchTypedSubjectAltNames: sans,
				},
				ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: RootsSecret, SdsConfig: adsSource()},
			},
		},
		AlpnProtocols: alpn,
	}
}

// downstreamTLS is the public listener's transport socket: a client
// certificate from the trust domain is required.
func downstreamTLS(mesh Mesh, http bool) *corev3.TransportSocket {
	ctx := downstreamTLSContext(mesh, http)
	return &corev3.TransportSocket{Name: tlsTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}}
}

// downstreamTLSContext is downstreamTLS's context, presenting LeafSecret.
func downstreamTLSContext(mesh Mesh, http bool) *tlsv3.DownstreamTlsContext {
	var sans []*matcherv3.StringMatcher
	for _, td := range mesh.trustDomains() {
		sans = append(sans, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "spiffe://" + td + "/"}})
	}
	return &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapBool(true),
		CommonTlsContext:         commonTLS(sans, alpnFor(http), mesh.incomingTLS()),
	}
}

// upstreamTLS is a cluster's transport socket: the server must present
// the SPIFFE ID of one of ids, the services whose instances the cluster's
// load assignment lists (more than one with failover to another service).
func upstreamTLS(mesh Mesh, sni string, ids []certs.ServiceIdentity, alpn []string) *corev3.TransportSocket {
	var sans []*matcherv3.StringMatcher
	for _, td := range mesh.trustDomains() {
		for _, id := range ids {
			sans = append(sans, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: spiffeURI(td, id)}})
		}
	}
	ctx := &tlsv3.UpstreamTlsContext{Sni: sni, CommonTlsContext: commonTLS(sans, alpn, mesh.outgoingTLS())}
	return &corev3.TransportSocket{Name: tlsTransportSocket, ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}}
}

// upstreamALPN is the ALPN list of an upstream cluster of protocol.
func upstreamALPN(protocol string) []string {
	switch protocol {
	case catalog.ProtocolHTTP:
		return http1ALPN
	case catalog.ProtocolHTTP2, catalog.ProtocolGRPC:
		return http2ALPN
	}
	return nil
}

// spiffeURI renders an identity without validating it, so that a service
// name Consul accepted is never dropped here; sidecars validate on use.
func spiffeURI(trustDomain string, id certs.ServiceIdentity) string {
	return "spiffe://" + trustDomain + "/ns/" + id.Namespace + "/dc/" + id.Datacenter + "/svc/" + id.Service
}

func alpnFor(http bool) []string {
	if http {
		return httpALPN
	}
	return nil
}

// cipherSuiteNames maps the cipher suites Consul's TLS settings name (the
// IANA names Go uses, which Consul accepts) to Envoy's names, which xDS
// carries; Envoy's names map to themselves. These are the suites Go's
// TLS, hence weft-proxy, implements for TLS 1.2 (1.3's are fixed).
var cipherSuiteNames = func() map[string]string {
	pairs := [][2]string{
		{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
		{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
		{"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
		{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
		{"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
		{"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
		{"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
		{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
		{"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
		{"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
		{"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
		{"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
		{"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
		{"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
	}
	m := map[string]string{}
	for _, p := range pairs {
		m[p[0]], m[p[1]] = p[1], p[1]
	}
	// Go's older names of the ChaCha20 suites.
	m["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"] = m["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"]
	m["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"] = m["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"]
	return m
}()

// tlsVersions are the versions Consul's TLS settings name.
var tlsVersions = map[string]tlsv3.TlsParameters_TlsProtocol{
	"":         tlsv3.TlsParameters_TLS_AUTO,
	"TLS_AUTO": tlsv3.TlsParameters_TLS_AUTO,
	"TLSv1_0":  tlsv3.TlsParameters_TLSv1_0,
	"TLSv1_1":  tlsv3.TlsParameters_TLSv1_1,
	"TLSv1_2":  tlsv3.TlsParameters_TLSv1_2,
	"TLSv1_3":  tlsv3.TlsParameters_TLSv1_3,
}

// tlsFields name the settings tlsParameters reads, as the entry spells
// them, for its errors.
type tlsFields struct{ min, max, suites string }

// tlsParameters are the tls_params of TLS for clients outside the mesh
// from Consul's settings: versions by Consul's names, cipher suites by
// IANA (or Envoy) names. An unknown name, a maximum below the minimum, or
// cipher suites with a TLS 1.3 minimum (whose suites are fixed; Consul
// refuses it too) is an error naming the field.
func tlsParameters(minName, maxName string, suites []string, f tlsFields) (*tlsv3.TlsParameters, error) {
	minV, okMin := tlsVersions[minName]
	maxV, okMax := tlsVersions[maxName]
	switch {
	case !okMin:
		return nil, fmt.Errorf("%s %q is not one of TLSv1_0 … TLSv1_3", f.min, minName)
	case !okMax:
		return nil, fmt.Errorf("%s %q is not one of TLSv1_0 … TLSv1_3", f.max, maxName)
	case maxV != tlsv3.TlsParameters_TLS_AUTO && minV != tlsv3.TlsParameters_TLS_AUTO && maxV < minV:
		return nil, fmt.Errorf("%s %q is below %s %q", f.max, maxName, f.min, minName)
	case len(suites) > 0 && minV == tlsv3.TlsParameters_TLSv1_3:
		return nil, fmt.Errorf("%s apply only to TLS 1.2 and earlier, and %s is %q", f.suites, f.min, minName)
	}
	out := &tlsv3.TlsParameters{TlsMinimumProtocolVersion: minV, TlsMaximumProtocolVersion: maxV, CipherSuites: make([]string, len(suites))}
	for i, name := range suites {
		envoy, ok := cipherSuiteNames[name]
		if !ok {
			return nil, fmt.Errorf("%s[%d]: %q is not a cipher suite weft-proxy offers", f.suites, i, name)
		}
		out.CipherSuites[i] = envoy
	}
	return out, nil
}

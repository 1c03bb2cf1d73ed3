package xdstest

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// IngressLeafSecret is the name of an ingress gateway's leaf for outside
// clients, as the control plane sends it.
const IngressLeafSecret = "weft-ingress-leaf"

// IngressTLSContext is the DownstreamTlsContext of an ingress gateway's
// TLS listener, as the control plane sends it: IngressLeafSecret without
// sds_config, TLS 1.2 and up, alpn offered, no client certificate.
func IngressTLSContext(alpn []string) *tlsv3.DownstreamTlsContext {
	return &tlsv3.DownstreamTlsContext{RequireClientCertificate: wrapperspb.Bool(false), CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsParams:                      &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: IngressLeafSecret}},
		AlpnProtocols:                  alpn,
	}}
}

// WithIngressDNSNames sets l's metadata as the control plane sets an
// ingress gateway's TLS listener's: its kind and the DNS names its leaf
// carries.
func WithIngressDNSNames(l *listenerv3.Listener, names ...string) *listenerv3.Listener {
	list := make([]*structpb.Value, len(names))
	for i, n := range names {
		list[i] = structpb.NewStringValue(n)
	}
	l.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"weft": {Fields: map[string]*structpb.Value{
		"gateway":           structpb.NewStringValue("ingress-gateway"),
		"ingress_dns_names": structpb.NewListValue(&structpb.ListValue{Values: list}),
	}}}}
	return l
}

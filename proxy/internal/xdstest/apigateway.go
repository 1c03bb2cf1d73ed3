package xdstest

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// CertificateSecret is a tls_certificate secret, as the control plane
// sends an API gateway's inline-certificate: chain and key in PEM, inline.
func CertificateSecret(name string, chainPEM, keyPEM []byte) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: string(chainPEM)}},
		PrivateKey:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: string(keyPEM)}},
	}}}
}

// OutsideTLSContext is the DownstreamTlsContext of a listener serving
// clients outside the mesh (an API gateway's): the certificates named
// over ADS, TLS 1.2 and up, alpn offered; no client certificate.
func OutsideTLSContext(alpn []string, certificates ...string) *tlsv3.DownstreamTlsContext {
	c := &tlsv3.CommonTlsContext{
		TlsParams:     &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
		AlpnProtocols: alpn,
	}
	for _, name := range certificates {
		c.TlsCertificateSdsSecretConfigs = append(c.TlsCertificateSdsSecretConfigs, &tlsv3.SdsSecretConfig{Name: name, SdsConfig: ADS()})
	}
	return &tlsv3.DownstreamTlsContext{CommonTlsContext: c}
}

// OutsideTLS is OutsideTLSContext as a transport socket.
func OutsideTLS(alpn []string, certificates ...string) *corev3.TransportSocket {
	return TransportSocket(OutsideTLSContext(alpn, certificates...))
}

// DirectResponse is a route answering match itself with status and body.
func DirectResponse(match *routev3.RouteMatch, status uint32, body string) *routev3.Route {
	return &routev3.Route{Match: match, Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{
		Status: status,
		Body:   &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: body}},
	}}}
}

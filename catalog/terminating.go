package catalog

// KindTerminatingGateway is the kind of a terminating gateway's
// registration.
const KindTerminatingGateway = "terminating-gateway"

// TerminatingGateway is what a terminating gateway serves: the services
// outside the mesh its terminating-gateway entry links to it, as Consul
// resolves them (/v1/catalog/gateway-services/<gateway>, wildcards
// expanded), sorted by name.
type TerminatingGateway struct {
	Name     string
	Services []LinkedService
}

// LinkedService is a service a terminating gateway answers for: it
// terminates the mesh's mTLS with the service's identity and forwards to
// the service's instances (LinkedInstances), originating TLS to them when
// CAFile is set.
type LinkedService struct {
	Name string
	// CAFile verifies the service's certificate; empty: plaintext.
	CAFile string
	// CertFile and KeyFile are a client certificate to present to it.
	CertFile, KeyFile string
	// SNI is the server name to send; empty: none.
	SNI string
}

// Package certs holds Weft's certificate authority: SPIFFE identities in
// Consul's form, the CA that signs leaf certificates from sidecars' CSRs,
// its persistence, and the renewal policy sidecars follow.
package certs

import (
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// ServiceIdentity is a mesh workload's identity, rendered as Consul's
// SPIFFE ID spiffe://<trust-domain>/ns/<namespace>/dc/<dc>/svc/<service>.
type ServiceIdentity struct {
	TrustDomain spiffeid.TrustDomain
	Namespace   string
	Datacenter  string
	Service     string
}

// ID returns the identity's SPIFFE ID.
func (s ServiceIdentity) ID() (spiffeid.ID, error) {
	for _, part := range []struct{ name, value string }{
		{"namespace", s.Namespace}, {"datacenter", s.Datacenter}, {"service", s.Service},
	} {
		if part.value == "" {
			return spiffeid.ID{}, fmt.Errorf("service identity: empty %s", part.name)
		}
	}
	id, err := spiffeid.FromSegments(s.TrustDomain, "ns", s.Namespace, "dc", s.Datacenter, "svc", s.Service)
	if err != nil {
		return spiffeid.ID{}, fmt.Errorf("service identity %s/%s/%s: %w", s.Namespace, s.Datacenter, s.Service, err)
	}
	return id, nil
}

// String returns the SPIFFE ID as a URI, or a description of why it is
// invalid.
func (s ServiceIdentity) String() string {
	id, err := s.ID()
	if err != nil {
		return "<invalid: " + err.Error() + ">"
	}
	return id.String()
}

// ParseServiceID parses a SPIFFE ID in Consul's service form.
func ParseServiceID(uri string) (ServiceIdentity, error) {
	id, err := spiffeid.FromString(uri)
	if err != nil {
		return ServiceIdentity{}, fmt.Errorf("SPIFFE ID %q: %w", uri, err)
	}
	return serviceIdentityOf(id)
}

func serviceIdentityOf(id spiffeid.ID) (ServiceIdentity, error) {
	seg := strings.Split(strings.TrimPrefix(id.Path(), "/"), "/")
	if len(seg) != 6 || seg[0] != "ns" || seg[2] != "dc" || seg[4] != "svc" {
		return ServiceIdentity{}, fmt.Errorf("SPIFFE ID %q: want path /ns/<namespace>/dc/<dc>/svc/<service>", id)
	}
	return ServiceIdentity{TrustDomain: id.TrustDomain(), Namespace: seg[1], Datacenter: seg[3], Service: seg[5]}, nil
}

// IdentityOfCert returns the service identity of a leaf certificate, which
// must carry exactly one URI SAN, a SPIFFE ID in Consul's service form.
func IdentityOfCert(cert *x509.Certificate) (ServiceIdentity, error) {
	id, err := x509svid.IDFromCert(cert)
	if err != nil {
		return ServiceIdentity{}, fmt.Errorf("certificate %q: %w", cert.Subject.String(), err)
	}
	return serviceIdentityOf(id)
}

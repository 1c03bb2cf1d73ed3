package controlplane

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/certs"
)

// CertAuthority signs leaves and holds the trust bundle (certs.Authority).
type CertAuthority interface {
	TrustDomain() spiffeid.TrustDomain
	// Sign issues a leaf for id; the CSR's DNS names must be among
	// allowedDNS, else it fails with a *certs.DNSNameError.
	Sign(csrDER []byte, id spiffeid.ID, allowedDNS []string) (leaf *x509.Certificate, chain []*x509.Certificate, err error)
	// Bundle is the trusted roots, the one signing leaves first.
	Bundle() []*x509.Certificate
	// Changes receives a value whenever the bundle or signer changes.
	Changes() <-chan struct{}
}

// Authorizer checks Consul ACL tokens.
type Authorizer interface {
	// CanWriteService reports whether token may service:write service. An
	// unknown token is (false, nil); err means the check could not be made.
	CanWriteService(ctx context.Context, token, service string) (bool, error)
}

// certService implements weft.certs.v1.CertificateService.
type certService struct {
	certsv1.UnimplementedCertificateServiceServer
	ca      CertAuthority
	authz   Authorizer
	catalog func() *catalog.Snapshot
	logger  *slog.Logger

	mu     sync.Mutex
	issued map[string]string // proxy ID → fingerprint of the root over its last leaf
}

func (s *certService) Sign(ctx context.Context, req *certsv1.SignRequest) (*certsv1.SignResponse, error) {
	snap := s.catalog()
	if snap == nil {
		return nil, status.Error(codes.Unavailable, "control plane has no catalog from Consul yet")
	}
	service, subject, err := serviceToSign(snap, req)
	if err != nil {
		return nil, err
	}
	ok, err := s.authz.CanWriteService(ctx, tokenFrom(ctx), service)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "check ACL token with Consul: %v", err)
	}
	if !ok {
		return nil, status.Errorf(codes.PermissionDenied, "token may not service:write %q, which a certificate for %s requires", service, subject)
	}
	ident := certs.ServiceIdentity{TrustDomain: s.ca.TrustDomain(), Namespace: "default", Datacenter: snap.Datacenter, Service: service}
	id, err := ident.ID()
	if err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "identity of %s: %v", subject, err)
	}
	allowed, gw := dnsNamesAllowed(snap, req)
	leaf, chain, err := s.ca.Sign(req.GetCsr(), id, allowed)
	if err != nil {
		return nil, signError(subject, gw, err)
	}
	if req.GetProxyId() != "" {
		s.recordIssue(req.GetProxyId(), leaf, chain)
	}
	s.logger.Info("issued leaf certificate", "for", subject, "spiffe_id", id.String(), "dns_names", leaf.DNSNames, "not_after", leaf.NotAfter)
	resp := &certsv1.SignResponse{Certificate: leaf.Raw, SpiffeId: id.String()}
	for _, c := range chain {
		resp.Intermediates = append(resp.Intermediates, c.Raw)
	}
	for _, r := range s.ca.Bundle() {
		resp.Roots = append(resp.Roots, r.Raw)
	}
	return resp, nil
}

// ResolveSidecar names the one sidecar registered for a service instance.
func (s *certService) ResolveSidecar(ctx context.Context, req *certsv1.ResolveSidecarRequest) (*certsv1.ResolveSidecarResponse, error) {
	snap := s.catalog()
	if snap == nil {
		return nil, status.Error(codes.Unavailable, "control plane has no catalog from Consul yet")
	}
	proxy, err := sidecarFor(snap, req.GetServiceId())
	if err != nil {
		return nil, err
	}
	ok, err := s.authz.CanWriteService(ctx, tokenFrom(ctx), proxy.DestinationName)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "check ACL token with Consul: %v", err)
	}
	if !ok {
		return nil, status.Errorf(codes.PermissionDenied, "token may not service:write %q, which running its sidecar requires", proxy.DestinationName)
	}
	return &certsv1.ResolveSidecarResponse{ProxyId: proxy.ID}, nil
}

// sidecarFor finds the sidecar whose destination is the service instance
// serviceID: exactly one, or an error saying why not.
func sidecarFor(snap *catalog.Snapshot, serviceID string) (*catalog.Proxy, error) {
	if serviceID == "" {
		return nil, status.Error(codes.InvalidArgument, "name a service_id")
	}
	var found []*catalog.Proxy
	for _, p := range snap.Proxies {
		if p.DestinationID == serviceID {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return nil, status.Errorf(codes.NotFound, "no sidecar proxy is registered in Consul for service instance %q", serviceID)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, p := range found {
		ids[i] = p.ID
	}
	slices.Sort(ids)
	return nil, status.Errorf(codes.FailedPrecondition, "service instance %q has %d sidecar proxies registered (%s): name one with --proxy-id", serviceID, len(ids), strings.Join(ids, ", "))
}

// serviceToSign names the service a request asks a certificate for: the
// destination of a registered sidecar, or a service named directly (a
// proxyless client).
func serviceToSign(snap *catalog.Snapshot, req *certsv1.SignRequest) (service, subject string, err error) {
	if id := req.GetProxyId(); id != "" {
		proxy := snap.Proxies[id]
		if proxy == nil {
			return "", "", status.Errorf(codes.NotFound, "proxy %q is not a registered sidecar in Consul", id)
		}
		switch proxy.Kind {
		case catalog.KindIngressGateway:
			// It calls the mesh as its own service, as in Consul.
			return ownService(req, proxy.Name, fmt.Sprintf("ingress gateway %q", id))
		case catalog.KindMeshGateway:
			// A mesh gateway passes mTLS through: it never needs a key.
			return "", "", status.Errorf(codes.FailedPrecondition, "proxy %q is a %s, which holds no certificate", id, proxy.Kind)
		case catalog.KindTerminatingGateway:
			return linkedService(snap, req, proxy)
		}
		return ownService(req, proxy.DestinationName, fmt.Sprintf("proxy %q", id))
	}
	if req.GetService() == "" {
		return "", "", status.Error(codes.InvalidArgument, "name a proxy_id or a service")
	}
	return req.GetService(), fmt.Sprintf("service %q", req.GetService()), nil
}

// ownService is the one service a sidecar or ingress gateway may have a
// certificate for; a request naming another is refused, not answered
// with the wrong identity.
func ownService(req *certsv1.SignRequest, service, subject string) (string, string, error) {
	if s := req.GetService(); s != "" && s != service {
		return "", "", status.Errorf(codes.InvalidArgument, "%s may only have a certificate for %q, not %q", subject, service, s)
	}
	return service, subject, nil
}

// linkedService is the service a terminating gateway asks a certificate
// for: one its terminating-gateway entry links to it, whose identity it
// presents to the mesh on that service's behalf (as Consul's terminating
// gateways do); without a service, its own.
func linkedService(snap *catalog.Snapshot, req *certsv1.SignRequest, gw *catalog.Proxy) (string, string, error) {
	s := req.GetService()
	if s == "" {
		return gw.Name, fmt.Sprintf("terminating gateway %q", gw.ID), nil
	}
	if tg := snap.TerminatingGateways[gw.Name]; tg != nil {
		for _, l := range tg.Services {
			if l.Name == s {
				return s, fmt.Sprintf("terminating gateway %q for linked service %q", gw.ID, s), nil
			}
		}
	}
	return "", "", status.Errorf(codes.PermissionDenied, "service %q is not linked to terminating gateway %q: add it to the terminating-gateway entry %q", s, gw.ID, gw.Name)
}

// dnsNamesAllowed are the DNS names a request's leaf may carry: an
// ingress gateway's own leaf (no linked service) may carry those of its
// ingress-gateway entry (catalog.IngressDNSNames, what the translation
// puts in its TLS listeners' metadata), no other certificate any. gw is
// the ingress-gateway entry's name, "" for any other requester.
func dnsNamesAllowed(snap *catalog.Snapshot, req *certsv1.SignRequest) (allowed []string, gw string) {
	p := snap.Proxies[req.GetProxyId()]
	if p == nil || p.Kind != catalog.KindIngressGateway || req.GetService() != "" && req.GetService() != p.Name {
		return nil, ""
	}
	return catalog.IngressDNSNames(snap.IngressGateways[p.Name], snap.Datacenter, snap.DNSDomains), p.Name
}

// signError maps a signing failure to its status: a DNS name the
// requester may not have is PermissionDenied for an ingress gateway
// (its entry does not name it) and InvalidArgument for anyone else (only
// ingress gateways' leaves carry DNS names); other failures are
// InvalidArgument.
func signError(subject, gw string, err error) error {
	var dns *certs.DNSNameError
	switch {
	case !errors.As(err, &dns):
		return status.Errorf(codes.InvalidArgument, "sign for %s: %v", subject, err)
	case gw == "":
		return status.Errorf(codes.InvalidArgument, "sign for %s: the CSR asks for DNS name %q: only an ingress gateway's leaf carries DNS names (its hosts, when its ingress-gateway entry enables TLS)", subject, dns.Name)
	case len(dns.Allowed) == 0:
		return status.Errorf(codes.PermissionDenied, "sign for %s: DNS name %q is not allowed: its ingress-gateway entry %q enables no TLS, so its leaf carries no DNS name", subject, dns.Name, gw)
	}
	return status.Errorf(codes.PermissionDenied, "sign for %s: DNS name %q is not allowed: its ingress-gateway entry %q allows %s", subject, dns.Name, gw, strings.Join(dns.Allowed, ", "))
}

// recordIssue remembers which root the proxy's newest leaf chains to: the
// first root of the bundle that signed the leaf or, going up its chain, an
// intermediate. Starting from the leaf matters when the chain also holds
// a cross-signed certificate of the leaf's own root (Consul adds one after
// a rotation, so that peers still trusting the previous root verify it):
// the leaf is under the new root, not the one that cross-signed it.
func (s *certService) recordIssue(proxyID string, leaf *x509.Certificate, chain []*x509.Certificate) {
	roots := s.ca.Bundle()
	for _, c := range append([]*x509.Certificate{leaf}, chain...) {
		for _, root := range roots {
			if c.CheckSignatureFrom(root) == nil {
				s.mu.Lock()
				s.issued[proxyID] = certs.Fingerprint(root)
				s.mu.Unlock()
				return
			}
		}
	}
}

// issuedRoot is the fingerprint of the root over the proxy's newest leaf.
func (s *certService) issuedRoot(proxyID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued[proxyID]
}

// tokenFrom reads the Consul ACL token from x-consul-token or a bearer
// authorization header.
func tokenFrom(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-consul-token"); len(v) > 0 {
		return v[0]
	}
	if v := md.Get("authorization"); len(v) > 0 {
		return strings.TrimPrefix(v[0], "Bearer ")
	}
	return ""
}

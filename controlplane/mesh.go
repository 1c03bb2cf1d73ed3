package controlplane

import (
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/certs"
	"github.com/weft-mesh/weft/controlplane/translate"
)

// mesh is the mesh-wide configuration translation needs: trust domain,
// bundle, default intention policy, tracing and the panic threshold. Without a CA, mTLS is off, which
// only tests of plain traffic configure.
func (s *Server) mesh() translate.Mesh {
	if s.cfg.Authority == nil {
		return translate.Mesh{Tracing: s.cfg.Tracing, HealthyPanicThreshold: s.cfg.HealthyPanicThreshold}
	}
	m := translate.Mesh{
		TrustDomain:           s.cfg.Authority.TrustDomain().Name(),
		RootsPEM:              certs.EncodeCerts(s.cfg.Authority.Bundle()...),
		DefaultPolicy:         s.cfg.DefaultIntentionPolicy,
		Tracing:               s.cfg.Tracing,
		HealthyPanicThreshold: s.cfg.HealthyPanicThreshold,
	}
	if a, ok := s.cfg.Authority.(trustDomainAliaser); ok {
		for _, td := range a.TrustDomainAliases() {
			m.TrustDomainAliases = append(m.TrustDomainAliases, td.Name())
		}
	}
	return m
}

// trustDomainAliaser is a CA moving the mesh to another trust domain
// (certs/consulca): identities of both are accepted meanwhile.
type trustDomainAliaser interface {
	TrustDomainAliases() []spiffeid.TrustDomain
}

package controlplane

import (
	"github.com/weft-mesh/weft/certs"
	"github.com/weft-mesh/weft/controlplane/translate"
)

// mesh is the security configuration translation needs: trust domain,
// bundle, default intention policy and tracing. Without a CA, mTLS is off, which
// only tests of plain traffic configure.
func (s *Server) mesh() translate.Mesh {
	if s.cfg.Authority == nil {
		return translate.Mesh{Tracing: s.cfg.Tracing}
	}
	return translate.Mesh{
		TrustDomain:   s.cfg.Authority.TrustDomain().Name(),
		RootsPEM:      certs.EncodeCerts(s.cfg.Authority.Bundle()...),
		DefaultPolicy: s.cfg.DefaultIntentionPolicy,
		Tracing:       s.cfg.Tracing,
	}
}

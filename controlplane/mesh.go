package controlplane

import (
	"github.com/weft-mesh/weft/certs"
	"github.com/weft-mesh/weft/controlplane/translate"
)

// mesh is the security configuration translation needs: trust domain,
// bundle and default intention policy. Without a CA, mTLS is off, which
// only tests of plain traffic configure.
func (s *Server) mesh() translate.Mesh {
	if s.cfg.Authority == nil {
		return translate.Mesh{}
	}
	return translate.Mesh{
		TrustDomain:   s.cfg.Authority.TrustDomain().Name(),
		RootsPEM:      certs.EncodeCerts(s.cfg.Authority.Bundle()...),
		DefaultPolicy: s.cfg.DefaultIntentionPolicy,
	}
}

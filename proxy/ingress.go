package proxy

import (
	"crypto/x509"
	"net/url"

	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/identity"
)

// An ingress gateway with TLS presents to outside clients its own leaf
// (config.IngressLeafSecret): the gateway's SPIFFE ID and the DNS names
// its listeners' metadata lists, signed by the certificate service, which
// allows exactly the names of the gateway's ingress-gateway entry. The
// proxy generates the key and keeps it in memory only (a restart signs a
// new leaf). The leaf joins the certificates listeners present, so a
// listener presenting it warms — is not bound — until it arrives, as one
// waiting for a certificate over SDS does; when the DNS names change, the
// previous leaf stays presented until the new one arrives
// (identity.Ingress); a renewed leaf applies to new handshakes.

// newIngressManager builds the manager of the ingress leaf with names:
// its CSRs ask for them and the gateway's own SPIFFE ID, once known.
func (p *Proxy) newIngressManager(names []string, onIssue func(*identity.Leaf)) *identity.Manager {
	return identity.New(identity.Options{
		Signer:        p.signer,
		Backoff:       p.opts.XDSBackoff,
		RenewFraction: p.opts.LeafRenewFraction,
		Logger:        p.opts.Logger.With("component", "identity", "leaf", config.IngressLeafSecret),
		OnIssue:       onIssue,
		Request: func() *x509.CertificateRequest {
			req := &x509.CertificateRequest{DNSNames: names}
			if u, err := url.Parse(p.identity.SPIFFEID()); err == nil && u.Scheme == "spiffe" {
				req.URIs = []*url.URL{u}
			}
			return req
		},
	})
}

// setIngressLeaf runs the ingress leaf's manager for the names leaf
// lists, or stops it when no listener presents one (nil). Called from
// apply.
func (p *Proxy) setIngressLeaf(leaf *config.IngressLeaf) {
	if leaf == nil {
		p.ingress.Set(nil)
		return
	}
	p.ingress.Set(leaf.DNSNames)
}

// withIngressLeaf is rt with the ingress leaf among its certificates, once
// there is one and a listener presents it; else rt.
func (p *Proxy) withIngressLeaf(rt *config.Runtime) *config.Runtime {
	if rt.IngressLeaf == nil {
		return rt
	}
	leaf := p.ingress.Current()
	if leaf == nil {
		return rt
	}
	return rt.WithCertificate(config.IngressLeafSecret, &leaf.Cert)
}

// reapplyIngressLeaf installs a new ingress leaf in the configuration
// last applied: the listeners warming for it are bound and started, the
// running ones present it to new handshakes. It is the ingress manager's
// OnIssue, called from its goroutine; once shutdown has started it does
// nothing.
func (p *Proxy) reapplyIngressLeaf() {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	rt := p.runtime.Load()
	if rt == nil || rt.IngressLeaf == nil || p.readiness.draining.Load() {
		return
	}
	rt = p.withIngressLeaf(rt)
	plan, err := p.listeners.Prepare(rt)
	if err != nil {
		p.log.Error("ingress leaf certificate obtained, but its listeners cannot be bound", "error", err)
		return
	}
	p.runtime.Store(rt)
	p.certs.Set(withCertificatesInUse(rt.Certificates, p.certs.All(), p.listeners.CertificatesInUse()))
	plan.Commit()
	p.certs.Set(withCertificatesInUse(rt.Certificates, p.certs.All(), p.listeners.CertificatesInUse()))
	if p.Ready() == nil {
		p.log.Debug("ready: ingress gateway's leaf certificate obtained")
	}
}

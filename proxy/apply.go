package proxy

import (
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/weft-mesh/weft/proxy/admin"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/listener"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/xds"
)

var _ admin.Source = (*Proxy)(nil)

// apply is the xDS Applier: compile, bind new listeners, then install the
// trust bundles and certificates, clusters and listeners. Compiling
// starts from the runtime last applied, whose listeners and clusters it
// reuses when their resources did not change; the managers leave those
// as they are. A compile or bind error changes nothing and is returned
// for the NACK. It runs on the xDS client's goroutine.
func (p *Proxy) apply(s xds.State) (xds.Subscriptions, error) {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	rt, err := config.Recompile(p.runtime.Load(), s)
	if err != nil {
		return xds.Subscriptions{}, err
	}
	rt = p.withIngressLeaf(rt)
	plan, err := p.listeners.Prepare(rt)
	if err != nil {
		return xds.Subscriptions{}, err
	}
	p.setIngressLeaf(rt.IngressLeaf)
	p.runtime.Store(rt) // the collector's address, for the tracers the listeners acquire
	p.trust.Set(rt.Secrets)
	// Certificates a running listener presents stay until it no longer
	// does: one whose update waits for a new certificate keeps serving
	// with its previous configuration, whose certificate the new runtime
	// may no longer hold.
	p.certs.Set(withCertificatesInUse(rt.Certificates, p.certs.All(), p.listeners.CertificatesInUse()))
	if b := rt.Secrets[config.RootsSecret]; b != nil {
		p.identity.SetRoots(b.Roots)
		p.linked.SetRoots(b.Roots)
		p.ingress.SetRoots(b.Roots)
	}
	if rt.UsesLeaf {
		p.identity.Want()
	}
	p.setLinkedLeaves(rt.LinkedLeaves)
	p.clusters.Update(rt.Clusters)
	plan.Commit()
	p.certs.Set(withCertificatesInUse(rt.Certificates, p.certs.All(), p.listeners.CertificatesInUse()))
	p.saveConfig(s)
	p.changes.Add(1)
	if p.readiness.observe(s, rt, time.Now(), p.waitingForLeaves) {
		p.log.Info("ready: first configuration applied", "listeners", len(rt.Listeners), "clusters", len(rt.Clusters))
	}
	return rt.Subscriptions, nil
}

// Ready implements admin.Source: nil once the first configuration is
// applied, its listeners bound and the routes, endpoints and secrets it
// names received (or initialFetchTimeout passed), and every leaf
// certificate a listener or cluster presents obtained (its own, linked
// services' and an ingress gateway's); until shutdown starts.
func (p *Proxy) Ready() error {
	state, status := p.xds.State(), p.xds.Status()
	return p.readiness.check(time.Now(), func() error { return waitingForXDS(state, status) }, p.waitingForLeaves)
}

// waitingForLeaves is nil once every leaf in needs is there, else which
// one is missing and why.
func (p *Proxy) waitingForLeaves(needs leafNeeds) error {
	if needs.own && !p.identity.HasLeaf() {
		return fmt.Errorf("waiting for the leaf certificate from the certificate service (last error: %s)", orNone(p.identity.Status().LastError))
	}
	for _, svc := range needs.linked {
		if m := p.linked.Get(svc); m == nil || !m.HasLeaf() {
			lastErr := ""
			if m != nil {
				lastErr = m.Status().LastError
			}
			return fmt.Errorf("waiting for the leaf certificate of linked service %q from the certificate service (last error: %s)", svc, orNone(lastErr))
		}
	}
	if needs.ingress && p.ingress.Current() == nil {
		lastErr := ""
		if st := p.ingress.Status(); st != nil {
			lastErr = st.LastError
		}
		return fmt.Errorf("waiting for the ingress gateway's leaf certificate (%s) from the certificate service (last error: %s)", config.IngressLeafSecret, orNone(lastErr))
	}
	return nil
}

// Certs implements admin.Source.
func (p *Proxy) Certs() admin.Certs {
	out := admin.Certs{Identity: p.identity.Status(), TrustBundles: map[string][]mtls.RootInfo{}}
	for name, b := range p.trust.All() {
		out.TrustBundles[name] = b.Info()
	}
	out.Certificates = map[string]mtls.CertificateInfo{}
	for name, c := range p.certs.All() {
		out.Certificates[name] = mtls.InfoOf(c)
	}
	if linked := p.linked.Status(); len(linked) > 0 {
		out.Linked = linked
	}
	out.Ingress = p.ingress.Status()
	return out
}

// waitingForXDS explains which of the first listeners and clusters are
// missing and why.
func waitingForXDS(state xds.State, status xds.Status) error {
	var missing []string
	for _, t := range []struct {
		name, url string
		got       bool
	}{
		{"listeners", xds.ListenerType, state.Listeners.Received},
		{"clusters", xds.ClusterType, state.Clusters.Received},
	} {
		if t.got {
			continue
		}
		if nack := status.Types[t.url].LastNack; nack != nil {
			missing = append(missing, fmt.Sprintf("%s (version %q rejected: %s)", t.name, nack.Version, nack.Error))
		} else {
			missing = append(missing, t.name)
		}
	}
	reason := "waiting for the first xDS " + strings.Join(missing, " and ")
	if !status.Connected {
		reason += fmt.Sprintf("; not connected to a management server (last error: %s)", orNone(status.LastError))
	}
	return errors.New(reason)
}

// XDS implements admin.Source.
func (p *Proxy) XDS() (xds.State, xds.Status) { return p.xds.State(), p.xds.Status() }

// Listeners implements admin.Source.
func (p *Proxy) Listeners() []listener.Info { return p.listeners.Listeners() }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// withCertificatesInUse is next, plus the certificates of prev that are
// in use and that next lacks.
func withCertificatesInUse(next, prev map[string]*tls.Certificate, inUse map[string]bool) map[string]*tls.Certificate {
	out := maps.Clone(next)
	if out == nil {
		out = map[string]*tls.Certificate{}
	}
	for name := range inUse {
		if _, ok := out[name]; !ok && prev[name] != nil {
			out[name] = prev[name]
		}
	}
	return out
}

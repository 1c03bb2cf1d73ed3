package proxy

import (
	"context"
	"sync"

	"github.com/weft-mesh/weft/proxy/identity"
	"github.com/weft-mesh/weft/proxy/mtls"
)

// A terminating gateway presents, per server name, the leaf certificate of
// the linked service behind it (weft-leaf/<service>). The proxy has each
// such leaf signed for that service as it has its own (identity.Linked),
// keeps the keys in memory only — linked leaves are not persisted to the
// state directory: after a restart they are signed anew, and readiness
// waits for them — and swaps the managers' set into what handshakes read
// at every apply.

// runIdentities runs the proxy's own leaf manager, the linked ones and
// the ingress one until ctx is cancelled, and returns once they all have.
func (p *Proxy) runIdentities(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { p.linked.Run(ctx) })
	wg.Go(func() { p.ingress.Run(ctx) })
	p.identity.Run(ctx)
	wg.Wait()
}

// newLinkedManager builds the leaf manager of a linked service: its CSRs
// name the proxy and the service.
func (p *Proxy) newLinkedManager(service string) *identity.Manager {
	return identity.New(identity.Options{
		Signer:        p.signer.ForService(service),
		Backoff:       p.opts.XDSBackoff,
		RenewFraction: p.opts.LeafRenewFraction,
		Logger:        p.opts.Logger.With("component", "identity", "linked_service", service),
		OnIssue:       func(*identity.Leaf) { p.onLinkedLeaf(service) },
	})
}

// setLinkedLeaves runs a leaf manager for each linked service the applied
// configuration presents, stops the others and makes handshakes find the
// leaves. Called from apply, before the listeners and clusters that
// present them are installed.
func (p *Proxy) setLinkedLeaves(services []string) {
	managers := p.linked.Set(services)
	leaves := make(map[string]mtls.Leaf, len(managers))
	for svc, m := range managers {
		leaves[svc] = m
	}
	p.linkedLeaves.Set(leaves)
}

// onLinkedLeaf is a linked manager's OnIssue: it re-evaluates readiness,
// which may have been waiting for that leaf.
func (p *Proxy) onLinkedLeaf(service string) {
	if p.Ready() == nil {
		p.log.Debug("ready: leaf certificate of a linked service obtained", "linked_service", service)
	}
}

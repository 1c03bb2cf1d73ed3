package controlplane

import (
	"maps"
	"slices"
	"sync"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// ProxylessMetadataKey marks a proxyless gRPC client in its xDS node
// metadata (weft grpc-bootstrap sets it): such a node gets an API listener
// per service rather than a sidecar's configuration.
const ProxylessMetadataKey = "weft.proxyless"

// proxylessClients are the connected proxyless gRPC clients. Streams
// register and unregister them; the publish loop reads them.
type proxylessClients struct {
	mu      sync.Mutex
	streams map[string]int // node ID → open streams
	changed chan struct{}  // cap 1: the set changed
}

func newProxylessClients() *proxylessClients {
	return &proxylessClients{streams: map[string]int{}, changed: make(chan struct{}, 1)}
}

func isProxyless(node *corev3.Node) bool {
	return node.GetMetadata().GetFields()[ProxylessMetadataKey].GetBoolValue()
}

func (p *proxylessClients) add(id string) {
	p.mu.Lock()
	p.streams[id]++
	first := p.streams[id] == 1
	p.mu.Unlock()
	if first {
		p.notify()
	}
}

func (p *proxylessClients) remove(id string) {
	p.mu.Lock()
	p.streams[id]--
	gone := p.streams[id] <= 0
	if gone {
		delete(p.streams, id)
	}
	p.mu.Unlock()
	if gone {
		p.notify()
	}
}

func (p *proxylessClients) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Sorted(maps.Keys(p.streams))
}

func (p *proxylessClients) notify() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

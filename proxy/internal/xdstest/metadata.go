package xdstest

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// weftMetadata is metadata.filter_metadata["weft"] with the non-empty
// string fields given as name, value pairs.
func weftMetadata(pairs ...string) *corev3.Metadata {
	fields := map[string]*structpb.Value{}
	for i := 0; i < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			fields[pairs[i]] = structpb.NewStringValue(pairs[i+1])
		}
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"weft": {Fields: fields}}}
}

// WithTarget states on c, as the control plane does, the service it leads
// to, its datacenter and the peer on the other side (empty: unset).
func WithTarget(c *clusterv3.Cluster, service, datacenter, peer string) *clusterv3.Cluster {
	c.Metadata = weftMetadata("service", service, "datacenter", datacenter, "peer", peer)
	return c
}

// WithGateway states on l the kind of gateway it serves ("mesh-gateway"…).
func WithGateway(l *listenerv3.Listener, kind string) *listenerv3.Listener {
	l.Metadata = weftMetadata("gateway", kind)
	return l
}

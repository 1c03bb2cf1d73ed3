package controlplane

import (
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// resourceNames are the names of the resources in a state-of-the-world
// response; one that cannot be decoded is left out.
func resourceNames(resp *discoveryv3.DiscoveryResponse) []string {
	names := make([]string, 0, len(resp.GetResources()))
	for _, a := range resp.GetResources() {
		m, err := anypb.UnmarshalNew(a, proto.UnmarshalOptions{})
		if err != nil {
			continue
		}
		if r, ok := m.(*discoveryv3.Resource); ok {
			names = append(names, r.GetName())
			continue
		}
		if name := cachev3.GetResourceName(m); name != "" {
			names = append(names, name)
		}
	}
	return names
}

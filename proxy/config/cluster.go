package config

import (
	"fmt"
	"maps"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// httpProtocolOptionsKey is the typed_extension_protocol_options key of
// upstream HTTP protocol options.
const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// compileCluster compiles a Cluster; loads are the compiled EDS resources.
func compileCluster(c *clusterv3.Cluster, loads map[string][]Endpoint) (*Cluster, error) {
	if err := unsupportedClusterFields(c); err != nil {
		return nil, err
	}
	out := &Cluster{Name: c.GetName(), ConnectTimeout: DefaultConnectTimeout}
	if d := c.GetConnectTimeout(); d != nil {
		out.ConnectTimeout = d.AsDuration()
	}
	var err error
	if out.HTTP2, err = upstreamHTTP2(c); err != nil {
		return nil, err
	}
	if ts := c.GetTransportSocket(); ts != nil {
		if out.TLS, err = compileUpstreamTLS(ts); err != nil {
			return nil, err
		}
	}
	switch c.GetType() {
	case clusterv3.Cluster_EDS:
		if !fromADS(c.GetEdsClusterConfig().GetEdsConfig()) {
			return nil, fmt.Errorf("eds_cluster_config.eds_config must be ads")
		}
		out.EDSName = c.GetEdsClusterConfig().GetServiceName()
		if out.EDSName == "" {
			out.EDSName = c.GetName()
		}
		out.Endpoints = loads[out.EDSName]
	case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS:
		if c.GetLoadAssignment() == nil {
			return nil, fmt.Errorf("%s cluster without load_assignment", c.GetType())
		}
		out.Endpoints, err = compileEndpoints(c.GetLoadAssignment(), c.GetType() == clusterv3.Cluster_STATIC)
		if err != nil {
			return nil, fmt.Errorf("load_assignment: %w", err)
		}
	default:
		return nil, fmt.Errorf("discovery type %s is not supported", c.GetType())
	}
	return out, nil
}

func unsupportedClusterFields(c *clusterv3.Cluster) error {
	switch {
	case c.GetClusterType() != nil:
		return fmt.Errorf("cluster_type %q is not supported", c.GetClusterType().GetName())
	case c.GetLbPolicy() != clusterv3.Cluster_ROUND_ROBIN:
		return fmt.Errorf("lb_policy %s is not supported", c.GetLbPolicy())
	case c.GetLoadBalancingPolicy() != nil:
		return fmt.Errorf("load_balancing_policy is not supported")
	case len(c.GetTransportSocketMatches()) > 0:
		return fmt.Errorf("transport_socket_matches are not supported")
	case c.GetLbSubsetConfig() != nil:
		return fmt.Errorf("lb_subset_config is not supported")
	}
	return nil
}

// upstreamHTTP2 reports whether the cluster asks for HTTP/2 upstream.
func upstreamHTTP2(c *clusterv3.Cluster) (bool, error) {
	//lint:ignore SA1019 older control planes still set the deprecated field.
	if c.GetHttp2ProtocolOptions() != nil {
		return true, nil
	}
	opts := c.GetTypedExtensionProtocolOptions()
	for _, key := range slices.Sorted(maps.Keys(opts)) {
		if key != httpProtocolOptionsKey {
			return false, fmt.Errorf("typed_extension_protocol_options %q is not supported", key)
		}
	}
	typed, ok := opts[httpProtocolOptionsKey]
	if !ok {
		return false, nil
	}
	var po upstreamhttpv3.HttpProtocolOptions
	if err := unpack(httpProtocolOptionsKey, typed, &po); err != nil {
		return false, err
	}
	explicit := po.GetExplicitHttpConfig()
	if explicit == nil || explicit.GetHttp3ProtocolOptions() != nil {
		return false, fmt.Errorf("%s: only explicit_http_config with HTTP/1 or HTTP/2 is supported", httpProtocolOptionsKey)
	}
	return explicit.GetHttp2ProtocolOptions() != nil, nil
}

package config

import (
	"fmt"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/proxy/route"
)

var (
	tcpProxyType = typeURL(&tcpproxyv3.TcpProxy{})
	hcmType      = typeURL(&hcmv3.HttpConnectionManager{})
)

func typeURL(m proto.Message) string {
	return "type.googleapis.com/" + string(m.ProtoReflect().Descriptor().FullName())
}

// compileListener compiles a Listener; tables are the compiled RDS
// resources by name.
func compileListener(l *listenerv3.Listener, tables map[string]*route.Table) (*Listener, error) {
	gw, err := compileGateway(l.GetMetadata())
	if err != nil {
		return nil, err
	}
	out, err := compileListenerChains(l, tables)
	if err != nil {
		return nil, err
	}
	out.Gateway = gw
	presents := out.TLS != nil && slices.Equal(out.TLS.Certificates, []string{IngressLeafSecret})
	if out.IngressDNSNames, err = compileIngressDNSNames(l.GetMetadata(), presents); err != nil {
		return nil, err
	}
	return out, nil
}

// compileListenerChains compiles a listener's address and filter chains,
// by the shape its listener filters give it.
func compileListenerChains(l *listenerv3.Listener, tables map[string]*route.Table) (*Listener, error) {
	if fs := l.GetListenerFilters(); len(fs) > 0 {
		if t := extensionType(fs[0].GetName(), fs[0].GetTypedConfig()); t == tlsInspectorType || t == tlsInspectorFilterName {
			return compileSNIListener(l, tables)
		}
		return compileTransparentListener(l, tables)
	}
	if err := unsupportedListenerFields(l); err != nil {
		return nil, err
	}
	addr, err := socketAddress(l.GetAddress(), true)
	if err != nil {
		return nil, fmt.Errorf("address: %w", err)
	}
	if n := len(l.GetFilterChains()); n != 1 {
		return nil, fmt.Errorf("has %d filter chains; exactly one is supported", n)
	}
	out := &Listener{Name: l.GetName(), Address: addr}
	if err := compileFilterChain(l.GetFilterChains()[0], tables, out); err != nil {
		return nil, fmt.Errorf("filter chain 0: %w", err)
	}
	out.Direction = direction(l.GetTrafficDirection(), out.TLS != nil && len(out.TLS.Certificates) == 0)
	return out, nil
}

// direction maps traffic_direction; an unspecified one is inferred: a
// listener that terminates mesh mTLS serves other sidecars (inbound).
func direction(d corev3.TrafficDirection, terminatesMTLS bool) Direction {
	switch {
	case d == corev3.TrafficDirection_INBOUND:
		return Inbound
	case d == corev3.TrafficDirection_UNSPECIFIED && terminatesMTLS:
		return Inbound
	}
	return Outbound
}

func unsupportedListenerFields(l *listenerv3.Listener) error {
	switch {
	case len(l.GetListenerFilters()) > 0:
		return fmt.Errorf("listener filter %q is not supported", l.GetListenerFilters()[0].GetName())
	case l.GetDefaultFilterChain() != nil:
		return fmt.Errorf("default_filter_chain is supported only with the %s listener filter", originalDstFilterName)
	case l.GetFilterChainMatcher() != nil:
		return fmt.Errorf("filter_chain_matcher is not supported")
	case l.GetUseOriginalDst().GetValue():
		return fmt.Errorf("use_original_dst is not supported; use the %s listener filter", originalDstFilterName)
	case len(l.GetAdditionalAddresses()) > 0:
		return fmt.Errorf("additional_addresses are not supported")
	case l.GetListenerSpecifier() != nil:
		return fmt.Errorf("api and internal listeners are not supported")
	case l.GetUdpListenerConfig() != nil:
		return fmt.Errorf("udp_listener_config is not supported")
	}
	return nil
}

func compileFilterChain(fc *listenerv3.FilterChain, tables map[string]*route.Table, out *Listener) error {
	if m := fc.GetFilterChainMatch(); m != nil && !proto.Equal(m, &listenerv3.FilterChainMatch{}) {
		return fmt.Errorf("filter_chain_match is supported only with the %s listener filter", originalDstFilterName)
	}
	if ts := fc.GetTransportSocket(); ts != nil {
		t, err := compileDownstreamTLS(ts)
		if err != nil {
			return err
		}
		out.TLS = t
	}
	filters := fc.GetFilters()
	if len(filters) == 0 {
		return fmt.Errorf("no network filters")
	}
	for _, f := range filters[:len(filters)-1] {
		if !isNetworkRBAC(f) {
			return fmt.Errorf("unsupported network filter %q: only %s may come before tcp_proxy or http_connection_manager", f.GetName(), networkRBACName)
		}
		e, err := compileNetworkRBAC(f.GetTypedConfig())
		if err != nil {
			return err
		}
		if e != nil {
			out.RBAC = append(out.RBAC, e)
		}
	}
	last := filters[len(filters)-1]
	switch extensionType(last.GetName(), last.GetTypedConfig()) {
	case tcpProxyType:
		return compileTCPProxy(last.GetTypedConfig(), out)
	case hcmType:
		return compileHCM(last.GetTypedConfig(), tables, out)
	}
	return fmt.Errorf("unsupported network filter %q", last.GetName())
}

// isNetworkRBAC identifies a network RBAC filter by its typed_config, or
// by name when it has none (so that the error is about the missing config).
func isNetworkRBAC(f *listenerv3.Filter) bool {
	t := extensionType(f.GetName(), f.GetTypedConfig())
	return t == networkRBACType || t == networkRBACName
}

// extensionType identifies a filter by its typed_config type URL, as Envoy
// does; filters without typed_config are identified by name.
func extensionType(name string, typed *anypb.Any) string {
	if typed != nil {
		return typed.GetTypeUrl()
	}
	return name
}

// unpack decodes a filter's typed_config and validates it.
func unpack(name string, typed *anypb.Any, m proto.Message) error {
	if typed == nil {
		return fmt.Errorf("filter %q: missing typed_config", name)
	}
	if err := typed.UnmarshalTo(m); err != nil {
		return fmt.Errorf("filter %q: undecodable typed_config: %w", name, err)
	}
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("filter %q: invalid: %w", name, err)
		}
	}
	return nil
}

func compileTCPProxy(typed *anypb.Any, out *Listener) error {
	var tp tcpproxyv3.TcpProxy
	if err := unpack("envoy.filters.network.tcp_proxy", typed, &tp); err != nil {
		return err
	}
	switch {
	case tp.GetWeightedClusters() != nil:
		return fmt.Errorf("tcp_proxy: weighted_clusters are not supported")
	case tp.GetOnDemand() != nil:
		return fmt.Errorf("tcp_proxy: on_demand is not supported")
	case tp.GetTunnelingConfig() != nil:
		return fmt.Errorf("tcp_proxy: tunneling_config is not supported")
	case tp.GetCluster() == "":
		return fmt.Errorf("tcp_proxy: missing cluster")
	}
	out.Mode, out.Cluster = ModeTCP, tp.GetCluster()
	return nil
}

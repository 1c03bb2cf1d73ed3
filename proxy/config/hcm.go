package config

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/proxy/route"
)

const routerName = "envoy.filters.http.router"

var routerType = typeURL(&routerv3.Router{})

func compileHCM(typed *anypb.Any, tables map[string]*route.Table, out *Listener) error {
	var hcm hcmv3.HttpConnectionManager
	if err := unpack("envoy.filters.network.http_connection_manager", typed, &hcm); err != nil {
		return err
	}
	if hcm.GetCodecType() == hcmv3.HttpConnectionManager_HTTP3 {
		return fmt.Errorf("http_connection_manager: codec_type HTTP3 is not supported")
	}
	h := &HTTP{MaxRequestHeaderBytes: DefaultMaxRequestHeaderBytes, MaxRequestHeaders: DefaultMaxRequestHeaders}
	if err := compileHTTPFilters(hcm.GetHttpFilters(), h); err != nil {
		return fmt.Errorf("http_connection_manager: %w", err)
	}
	if kb := hcm.GetMaxRequestHeadersKb(); kb != nil {
		h.MaxRequestHeaderBytes = int(kb.GetValue()) << 10
	}
	if n := hcm.GetCommonHttpProtocolOptions().GetMaxHeadersCount(); n != nil {
		h.MaxRequestHeaders = int(n.GetValue())
	}
	switch {
	case hcm.GetRds() != nil:
		rds := hcm.GetRds()
		if !fromADS(rds.GetConfigSource()) {
			return fmt.Errorf("http_connection_manager: rds %q: config_source must be ads", rds.GetRouteConfigName())
		}
		h.RouteConfigName, h.Routes = rds.GetRouteConfigName(), tables[rds.GetRouteConfigName()]
	case hcm.GetRouteConfig() != nil:
		t, err := compileRouteConfig(hcm.GetRouteConfig())
		if err != nil {
			return fmt.Errorf("http_connection_manager: route_config %q: %w", hcm.GetRouteConfig().GetName(), err)
		}
		h.Routes = t
	default:
		return fmt.Errorf("http_connection_manager: only rds and route_config are supported")
	}
	out.Mode, out.HTTP = ModeHTTP, h
	return nil
}

// compileHTTPFilters requires the router last, compiles RBAC filters and
// rejects any other filter that is not optional or disabled. A disabled
// RBAC filter is skipped: it could only be enabled per route, which is
// rejected (checkPerFilterConfig).
func compileHTTPFilters(filters []*hcmv3.HttpFilter, out *HTTP) error {
	if len(filters) == 0 || !isRouter(filters[len(filters)-1]) {
		return fmt.Errorf("http_filters must end with %s", routerName)
	}
	for _, f := range filters[:len(filters)-1] {
		switch {
		case f.GetDisabled():
		case isHTTPRBAC(f):
			e, err := compileHTTPRBAC(f.GetTypedConfig())
			if err != nil {
				return err
			}
			if e != nil {
				out.RBAC = append(out.RBAC, e)
			}
		case !f.GetIsOptional():
			return fmt.Errorf("unsupported http filter %q", f.GetName())
		}
	}
	return nil
}

func isHTTPRBAC(f *hcmv3.HttpFilter) bool {
	t := extensionType(f.GetName(), f.GetTypedConfig())
	return t == httpRBACType || t == httpRBACName
}

func isRouter(f *hcmv3.HttpFilter) bool {
	t := extensionType(f.GetName(), f.GetTypedConfig())
	return t == routerType || t == routerName
}

// fromADS reports whether a config source means "over the ADS stream".
func fromADS(cs *corev3.ConfigSource) bool {
	return cs.GetAds() != nil || cs.GetSelf() != nil
}

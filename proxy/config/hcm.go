package config

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/weft-mesh/weft/proxy/route"
	"github.com/weft-mesh/weft/proxy/telemetry/tracing"
)

const routerName = "envoy.filters.http.router"

var routerType = typeURL(&routerv3.Router{})

func compileHCM(typed *anypb.Any, tables map[string]*route.Table, out *Listener) error {
	var hcm hcmv3.HttpConnectionManager
	if err := unpack("envoy.filters.network.http_connection_manager", typed, &hcm); err != nil {
		return err
	}
	h := &HTTP{
		MaxRequestHeaderBytes: DefaultMaxRequestHeaderBytes,
		MaxRequestHeaders:     DefaultMaxRequestHeaders,
		StreamIdleTimeout:     DefaultStreamIdleTimeout,
	}
	if err := compileHTTPFilters(hcm.GetHttpFilters(), h); err != nil {
		return fmt.Errorf("http_connection_manager: %w", err)
	}
	if err := compileHCMSettings(&hcm, h); err != nil {
		return fmt.Errorf("http_connection_manager: %w", err)
	}
	tr, err := tracing.Compile(hcm.GetTracing())
	if err != nil {
		return fmt.Errorf("http_connection_manager: %w", err)
	}
	h.Tracing = tr
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

// compileHCMSettings compiles the codec, limits and timeouts. Settings
// that change how traffic flows and are not applied are rejected; those
// that only concern Envoy's stats, logging or its own header
// handling (weft-proxy normalizes paths and strips mesh headers itself)
// are accepted.
func compileHCMSettings(hcm *hcmv3.HttpConnectionManager, h *HTTP) error {
	switch hcm.GetCodecType() {
	case hcmv3.HttpConnectionManager_AUTO:
	case hcmv3.HttpConnectionManager_HTTP1:
		h.Codec = CodecHTTP1
	case hcmv3.HttpConnectionManager_HTTP2:
		h.Codec = CodecHTTP2
	default:
		return fmt.Errorf("codec_type %s is not supported", hcm.GetCodecType())
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"http3_protocol_options", hcm.GetHttp3ProtocolOptions() != nil},
		{"scoped_routes", hcm.GetScopedRoutes() != nil},
		{"request_timeout", hcm.GetRequestTimeout().AsDuration() != 0},
		{"max_stream_duration", hcm.GetCommonHttpProtocolOptions().GetMaxStreamDuration() != nil},
		{"max_connection_duration", hcm.GetCommonHttpProtocolOptions().GetMaxConnectionDuration() != nil},
		{"max_requests_per_connection", hcm.GetCommonHttpProtocolOptions().GetMaxRequestsPerConnection() != nil},
		{"headers_with_underscores_action", hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction() != 0},
		{"internal_address_config", hcm.GetInternalAddressConfig() != nil},
		{"local_reply_config", hcm.GetLocalReplyConfig() != nil},
		{"early_header_mutation_extensions", len(hcm.GetEarlyHeaderMutationExtensions()) > 0},
		{"original_ip_detection_extensions", len(hcm.GetOriginalIpDetectionExtensions()) > 0},
	} {
		if f.set {
			return fmt.Errorf("%s is not supported", f.name)
		}
	}
	if kb := hcm.GetMaxRequestHeadersKb(); kb != nil {
		h.MaxRequestHeaderBytes = int(kb.GetValue()) << 10
	}
	if n := hcm.GetCommonHttpProtocolOptions().GetMaxHeadersCount(); n != nil {
		h.MaxRequestHeaders = int(n.GetValue())
	}
	if t := hcm.GetCommonHttpProtocolOptions().GetIdleTimeout(); t != nil {
		h.IdleTimeout = t.AsDuration()
	}
	if t := hcm.GetStreamIdleTimeout(); t != nil {
		h.StreamIdleTimeout = t.AsDuration()
	}
	h.RequestHeadersTimeout = hcm.GetRequestHeadersTimeout().AsDuration()
	if o := hcm.GetHttpProtocolOptions(); o != nil {
		if err := checkHTTP1Options(o); err != nil {
			return fmt.Errorf("http_protocol_options: %w", err)
		}
	}
	var err error
	if h.HTTP2, err = compileHTTP2Settings(hcm.GetHttp2ProtocolOptions()); err != nil {
		return fmt.Errorf("http2_protocol_options: %w", err)
	}
	if h.HTTP2.MaxConcurrentStreams == 0 {
		h.HTTP2.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
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

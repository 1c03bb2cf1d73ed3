package config

import (
	"fmt"
	"maps"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// httpProtocolOptionsKey is the typed_extension_protocol_options key of
// upstream HTTP protocol options.
const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// compileCluster compiles a Cluster; loads are the compiled EDS resources.
func compileCluster(c *clusterv3.Cluster, loads map[string][]Endpoint) (*Cluster, error) {
	if c.GetType() == clusterv3.Cluster_ORIGINAL_DST {
		return compileOriginalDstCluster(c)
	}
	if isAggregate(c) {
		return compileAggregateCluster(c)
	}
	if err := unsupportedClusterFields(c); err != nil {
		return nil, err
	}
	out := &Cluster{Name: c.GetName(), ConnectTimeout: DefaultConnectTimeout}
	if d := c.GetConnectTimeout(); d != nil {
		out.ConnectTimeout = d.AsDuration()
	}
	var err error
	if out.Target, err = compileTarget(c.GetMetadata()); err != nil {
		return nil, err
	}
	if ts := c.GetTransportSocket(); ts != nil {
		if out.TLS, err = compileUpstreamTLS(ts); err != nil {
			return nil, err
		}
	}
	if err := compileUpstreamProtocol(c, out); err != nil {
		return nil, err
	}
	if out.LB, err = compileLB(c); err != nil {
		return nil, err
	}
	if out.LB.PanicThreshold, err = compilePanicThreshold(c.GetCommonLbConfig()); err != nil {
		return nil, fmt.Errorf("common_lb_config: %w", err)
	}
	if out.Limits, err = compileCircuitBreakers(c.GetCircuitBreakers()); err != nil {
		return nil, fmt.Errorf("circuit_breakers: %w", err)
	}
	if od := c.GetOutlierDetection(); od != nil {
		if out.Outlier, err = compileOutlierDetection(od); err != nil {
			return nil, fmt.Errorf("outlier_detection: %w", err)
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
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"load_balancing_policy", c.GetLoadBalancingPolicy() != nil},
		{"transport_socket_matches", len(c.GetTransportSocketMatches()) > 0},
		{"lb_subset_config", c.GetLbSubsetConfig() != nil},
		{"round_robin_lb_config", c.GetRoundRobinLbConfig() != nil},
		{"original_dst_lb_config", c.GetOriginalDstLbConfig() != nil},
		{"upstream_bind_config", c.GetUpstreamBindConfig() != nil},
		{"filters", len(c.GetFilters()) > 0},
		{"upstream_config", c.GetUpstreamConfig() != nil},
		{"connection_pool_per_downstream_connection", c.GetConnectionPoolPerDownstreamConnection()},
		//lint:ignore SA1019 deprecated fields with traffic effects are rejected, not ignored.
		{"max_requests_per_connection", c.GetMaxRequestsPerConnection() != nil},
		//lint:ignore SA1019 see above.
		{"upstream_http_protocol_options", c.GetUpstreamHttpProtocolOptions() != nil},
		//lint:ignore SA1019 see above.
		{"common_http_protocol_options", c.GetCommonHttpProtocolOptions() != nil},
		//lint:ignore SA1019 see above.
		{"http_protocol_options", c.GetHttpProtocolOptions() != nil},
	} {
		if f.set {
			return fmt.Errorf("%s is not supported", f.name)
		}
	}
	if c.GetClusterType() != nil {
		return fmt.Errorf("cluster_type %q is not supported (only %s)", c.GetClusterType().GetName(), AggregateClusterType)
	}
	return nil
}

// compileLB compiles lb_policy and its config.
func compileLB(c *clusterv3.Cluster) (LB, error) {
	switch c.GetLbPolicy() {
	case clusterv3.Cluster_ROUND_ROBIN:
		return LB{Policy: RoundRobin}, nil
	case clusterv3.Cluster_RANDOM:
		return LB{Policy: Random}, nil
	case clusterv3.Cluster_LEAST_REQUEST:
		lr := c.GetLeastRequestLbConfig()
		if lr == nil {
			return LB{Policy: LeastRequest}, nil
		}
		if err := onlyFields(lr, "choice_count", "active_request_bias"); err != nil {
			return LB{}, fmt.Errorf("least_request_lb_config: %w", err)
		}
		if b := lr.GetActiveRequestBias(); b != nil && b.GetDefaultValue() != 1 {
			return LB{}, fmt.Errorf("least_request_lb_config: active_request_bias %v is not supported (only 1.0)", b.GetDefaultValue())
		}
		return LB{Policy: LeastRequest, ChoiceCount: lr.GetChoiceCount().GetValue()}, nil
	case clusterv3.Cluster_RING_HASH:
		rh := c.GetRingHashLbConfig()
		if err := onlyFields(rh, "minimum_ring_size", "maximum_ring_size", "hash_function"); err != nil {
			return LB{}, fmt.Errorf("ring_hash_lb_config: %w", err)
		}
		if rh.GetHashFunction() != clusterv3.Cluster_RingHashLbConfig_XX_HASH {
			return LB{}, fmt.Errorf("ring_hash_lb_config: hash_function %s is not supported (only XX_HASH)", rh.GetHashFunction())
		}
		lb := LB{Policy: RingHash, MinRingSize: rh.GetMinimumRingSize().GetValue(), MaxRingSize: rh.GetMaximumRingSize().GetValue()}
		if lb.MinRingSize != 0 && lb.MaxRingSize != 0 && lb.MinRingSize > lb.MaxRingSize {
			return LB{}, fmt.Errorf("ring_hash_lb_config: minimum_ring_size %d exceeds maximum_ring_size %d", lb.MinRingSize, lb.MaxRingSize)
		}
		return lb, nil
	case clusterv3.Cluster_MAGLEV:
		mg := c.GetMaglevLbConfig()
		if err := onlyFields(mg, "table_size"); err != nil {
			return LB{}, fmt.Errorf("maglev_lb_config: %w", err)
		}
		lb := LB{Policy: Maglev, TableSize: mg.GetTableSize().GetValue()}
		if lb.TableSize != 0 && !isPrime(lb.TableSize) {
			return LB{}, fmt.Errorf("maglev_lb_config: table_size %d is not a prime number", lb.TableSize)
		}
		return lb, nil
	}
	return LB{}, fmt.Errorf("lb_policy %s is not supported", c.GetLbPolicy())
}

func isPrime(n uint64) bool {
	if n < 2 {
		return false
	}
	for d := uint64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// compileCircuitBreakers compiles the DEFAULT-priority thresholds. HIGH
// thresholds are accepted and never used: no route may be HIGH priority
// (compileRouteAction rejects it), so, as in Envoy, they apply to nothing.
func compileCircuitBreakers(cb *clusterv3.CircuitBreakers) (Limits, error) {
	limits := DefaultLimits()
	if cb == nil {
		return limits, nil
	}
	if err := onlyFields(cb, "thresholds"); err != nil {
		return limits, err
	}
	seen := false
	for i, t := range cb.GetThresholds() {
		if err := onlyFields(t, "priority", "max_connections", "max_pending_requests", "max_requests", "max_retries", "retry_budget", "track_remaining"); err != nil {
			return limits, fmt.Errorf("thresholds[%d]: %w", i, err)
		}
		if t.GetPriority() != corev3.RoutingPriority_DEFAULT {
			continue
		}
		if seen {
			return limits, fmt.Errorf("thresholds[%d]: a second DEFAULT priority threshold", i)
		}
		seen = true
		setUint32(&limits.MaxConnections, t.GetMaxConnections())
		setUint32(&limits.MaxPendingRequests, t.GetMaxPendingRequests())
		setUint32(&limits.MaxRequests, t.GetMaxRequests())
		setUint32(&limits.MaxRetries, t.GetMaxRetries())
		if rb := t.GetRetryBudget(); rb != nil {
			if err := onlyFields(rb, "budget_percent", "min_retry_concurrency"); err != nil {
				return limits, fmt.Errorf("thresholds[%d]: retry_budget: %w", i, err)
			}
			limits.RetryBudget = &RetryBudget{Percent: 20, MinConcurrency: 3}
			if p := rb.GetBudgetPercent(); p != nil {
				limits.RetryBudget.Percent = p.GetValue()
			}
			setUint32(&limits.RetryBudget.MinConcurrency, rb.GetMinRetryConcurrency())
		}
	}
	return limits, nil
}

type uint32Value interface{ GetValue() uint32 }

// setUint32 sets *dst when v (a *wrapperspb.UInt32Value) is present.
func setUint32[V interface {
	comparable
	uint32Value
}](dst *uint32, v V) {
	var zero V
	if v != zero {
		*dst = v.GetValue()
	}
}

// compileUpstreamProtocol compiles the upstream HTTP protocol options.
func compileUpstreamProtocol(c *clusterv3.Cluster, out *Cluster) error {
	//lint:ignore SA1019 older control planes still set the deprecated fields.
	if c.GetHttp2ProtocolOptions() != nil {
		out.Protocol = HTTP2
	}
	//lint:ignore SA1019 see above.
	if c.GetProtocolSelection() == clusterv3.Cluster_USE_DOWNSTREAM_PROTOCOL {
		out.Protocol = Downstream
	}
	opts := c.GetTypedExtensionProtocolOptions()
	for _, key := range slices.Sorted(maps.Keys(opts)) {
		if key != httpProtocolOptionsKey {
			return fmt.Errorf("typed_extension_protocol_options %q is not supported", key)
		}
	}
	typed, ok := opts[httpProtocolOptionsKey]
	if !ok {
		return nil
	}
	var po upstreamhttpv3.HttpProtocolOptions
	if err := unpack(httpProtocolOptionsKey, typed, &po); err != nil {
		return err
	}
	if err := compileHTTPProtocolOptions(&po, out); err != nil {
		return fmt.Errorf("%s: %w", httpProtocolOptionsKey, err)
	}
	return nil
}

func compileHTTPProtocolOptions(po *upstreamhttpv3.HttpProtocolOptions, out *Cluster) error {
	if err := onlyFields(po, "explicit_http_config", "use_downstream_protocol_config", "auto_config", "common_http_protocol_options"); err != nil {
		return err
	}
	if common := po.GetCommonHttpProtocolOptions(); common != nil {
		if err := onlyFields(common, "idle_timeout"); err != nil {
			return fmt.Errorf("common_http_protocol_options: %w", err)
		}
		out.IdleTimeout = common.GetIdleTimeout().AsDuration()
	}
	switch {
	case po.GetExplicitHttpConfig() != nil:
		e := po.GetExplicitHttpConfig()
		if e.GetHttp2ProtocolOptions() != nil {
			out.Protocol = HTTP2
			_, err := compileHTTP2Settings(e.GetHttp2ProtocolOptions())
			return prefixErr("explicit_http_config: http2_protocol_options", err)
		}
		if e.GetHttpProtocolOptions() != nil {
			out.Protocol = HTTP1
			return prefixErr("explicit_http_config: http_protocol_options", checkHTTP1Options(e.GetHttpProtocolOptions()))
		}
		return fmt.Errorf("explicit_http_config: %s is not supported", oneofName(e, "protocol_config"))
	case po.GetUseDownstreamProtocolConfig() != nil:
		d := po.GetUseDownstreamProtocolConfig()
		if err := onlyFields(d, "http_protocol_options", "http2_protocol_options"); err != nil {
			return fmt.Errorf("use_downstream_protocol_config: %w", err)
		}
		if _, err := compileHTTP2Settings(d.GetHttp2ProtocolOptions()); err != nil {
			return fmt.Errorf("use_downstream_protocol_config: http2_protocol_options: %w", err)
		}
		out.Protocol = Downstream
		return prefixErr("use_downstream_protocol_config: http_protocol_options", checkHTTP1Options(d.GetHttpProtocolOptions()))
	case po.GetAutoConfig() != nil:
		a := po.GetAutoConfig()
		if err := onlyFields(a, "http_protocol_options", "http2_protocol_options"); err != nil {
			return fmt.Errorf("auto_config: %w", err)
		}
		if out.TLS == nil {
			return fmt.Errorf("auto_config needs a TLS transport socket (ALPN chooses the protocol)")
		}
		if _, err := compileHTTP2Settings(a.GetHttp2ProtocolOptions()); err != nil {
			return fmt.Errorf("auto_config: http2_protocol_options: %w", err)
		}
		out.Protocol = Auto
		return prefixErr("auto_config: http_protocol_options", checkHTTP1Options(a.GetHttpProtocolOptions()))
	}
	return fmt.Errorf("one of explicit_http_config, use_downstream_protocol_config and auto_config is required")
}

func prefixErr(prefix string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// checkHTTP1Options accepts HTTP/1.1 options that change nothing on the
// wire for weft-proxy.
func checkHTTP1Options(o *corev3.Http1ProtocolOptions) error {
	if o == nil {
		return nil
	}
	return onlyFields(o, "enable_trailers", "use_balsa_parser")
}

// compileHTTP2Settings compiles HTTP/2 options. The flood-protection
// limits are accepted: Go's HTTP/2 implementation enforces its own
// (control frame queue, reset and CONTINUATION floods).
func compileHTTP2Settings(o *corev3.Http2ProtocolOptions) (HTTP2Settings, error) {
	var s HTTP2Settings
	if o == nil {
		return s, nil
	}
	if err := onlyFields(o, "hpack_table_size", "max_concurrent_streams", "initial_stream_window_size",
		"initial_connection_window_size", "connection_keepalive", "max_outbound_frames", "max_outbound_control_frames",
		"max_consecutive_inbound_frames_with_empty_payload", "max_inbound_priority_frames_per_stream",
		"max_inbound_window_update_frames_per_data_frame_sent", "stream_error_on_invalid_http_messaging",
		"override_stream_error_on_invalid_http_message", "use_oghttp2_codec"); err != nil {
		return s, err
	}
	s.MaxConcurrentStreams = o.GetMaxConcurrentStreams().GetValue()
	s.InitialStreamWindowSize = o.GetInitialStreamWindowSize().GetValue()
	s.InitialConnectionWindowSize = o.GetInitialConnectionWindowSize().GetValue()
	s.HpackTableSize = o.GetHpackTableSize().GetValue()
	if ka := o.GetConnectionKeepalive(); ka != nil {
		if err := onlyFields(ka, "interval", "timeout"); err != nil {
			return s, fmt.Errorf("connection_keepalive: %w", err)
		}
		s.KeepaliveInterval, s.KeepaliveTimeout = ka.GetInterval().AsDuration(), ka.GetTimeout().AsDuration()
	}
	return s, nil
}

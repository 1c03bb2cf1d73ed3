package translate

import (
	"cmp"
	"fmt"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/certs"
)

// httpProtocolOptionsKey is the typed_extension_protocol_options key of
// upstream HTTP protocol options.
const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// The retry budget of every HTTP cluster: retries in flight may be at most
// retryBudgetPercent of the requests in flight, but at least
// retryBudgetMinConcurrency, so retries cannot multiply the load of an
// upstream that fails.
const (
	retryBudgetPercent        = 20
	retryBudgetMinConcurrency = 3
)

// clusterKey identifies a cluster by its resolution (one per target, or
// one per target without entries for fallback chains) and settings.
type clusterKey struct {
	res      *resolution
	settings upstreamSettings
}

type clusterResult struct {
	cluster *clusterv3.Cluster
	err     error
}

// cluster returns the cluster of a resolved target as an upstream with
// settings s configures it, building it once per Translate. Should the
// settings yield an invalid cluster, it returns the cluster without them
// and the error.
func (t *translator) cluster(r *resolution, s upstreamSettings) (*clusterv3.Cluster, error) {
	key := clusterKey{r, s}
	if c, ok := t.clusters[key]; ok {
		return c.cluster, c.err
	}
	c := t.buildCluster(r, s)
	err := c.ValidateAll()
	if err != nil {
		c = t.buildCluster(&resolution{target: r.target, failover: r.failover}, upstreamSettings{
			protocol: s.protocol, limits: limitsOf(nil), outlier: outlierOf(nil),
		})
		err = fmt.Errorf("cluster %q: %w; its load balancer, limits and passive health check are not applied", r.target.clusterName(), err)
	}
	t.clusters[key] = clusterResult{c, err}
	return c, err
}

func (t *translator) buildCluster(r *resolution, s upstreamSettings) *clusterv3.Cluster {
	name := r.target.clusterName()
	c := edsCluster(name)
	c.ConnectTimeout = durationpb.New(cmp.Or(s.connectTimeout, r.connectTimeout, defaultConnectTimeout))
	applyLoadBalancer(c, r.lb)
	c.CircuitBreakers = circuitBreakers(s.limits, isHTTP(s.protocol))
	c.OutlierDetection = outlierDetection(s.outlier)
	c.TypedExtensionProtocolOptions = httpProtocolOptions(s.protocol)
	c.CommonLbConfig = commonLbConfig(t.mesh.HealthyPanicThreshold)
	c.Metadata = r.target.metadata()
	if t.mesh.TrustDomain != "" {
		var ids []certs.ServiceIdentity
		for _, svc := range r.services() {
			ids = append(ids, certs.ServiceIdentity{Namespace: DefaultNamespace, Datacenter: svc.dc, Service: svc.service})
		}
		c.TransportSocket = upstreamTLS(t.mesh, name, ids, upstreamALPN(s.protocol))
	}
	return c
}

// commonLbConfig sets the panic threshold when the mesh sets one.
func commonLbConfig(threshold *float64) *clusterv3.Cluster_CommonLbConfig {
	if threshold == nil {
		return nil
	}
	return &clusterv3.Cluster_CommonLbConfig{HealthyPanicThreshold: &typev3.Percent{Value: *threshold}}
}

// defaultLocalAddress is where Consul assumes a sidecar's application
// listens when its registration names no local_service_address.
const defaultLocalAddress = "127.0.0.1"

// localAppCluster is the cluster of the application beside the sidecar,
// spoken to in the service's protocol: HTTP/2 without TLS (h2c) for
// http2 and grpc.
func localAppCluster(p *catalog.Proxy, protocol string) *clusterv3.Cluster {
	c := staticCluster(LocalAppCluster, cmp.Or(p.LocalAddress, defaultLocalAddress), p.LocalPort)
	c.TypedExtensionProtocolOptions = httpProtocolOptions(protocol)
	return c
}

// httpProtocolOptions selects the upstream HTTP version of an L7
// protocol: HTTP/1.1 for http, HTTP/2 for http2 and grpc; nil for tcp.
func httpProtocolOptions(protocol string) map[string]*anypb.Any {
	explicit := &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{}
	switch protocol {
	case catalog.ProtocolHTTP:
		explicit.ProtocolConfig = &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{
			HttpProtocolOptions: &corev3.Http1ProtocolOptions{},
		}
	case catalog.ProtocolHTTP2, catalog.ProtocolGRPC:
		explicit.ProtocolConfig = &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
			Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
		}
	default:
		return nil
	}
	opts := &upstreamhttpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: explicit},
	}
	return map[string]*anypb.Any{httpProtocolOptionsKey: mustAny(opts)}
}

// circuitBreakers holds one DEFAULT-priority threshold: the configured
// limits and, for HTTP, the retry budget. nil for tcp without limits.
func circuitBreakers(l limitSettings, http bool) *clusterv3.CircuitBreakers {
	if !l.set && !http {
		return nil
	}
	th := &clusterv3.CircuitBreakers_Thresholds{
		MaxConnections:     uint32OrNil(l.maxConnections),
		MaxPendingRequests: uint32OrNil(l.maxPendingRequests),
		MaxRequests:        uint32OrNil(l.maxRequests),
	}
	if http {
		th.RetryBudget = &clusterv3.CircuitBreakers_Thresholds_RetryBudget{
			BudgetPercent:       &typev3.Percent{Value: retryBudgetPercent},
			MinRetryConcurrency: wrapperspb.UInt32(retryBudgetMinConcurrency),
		}
	}
	return &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{th}}
}

// outlierDetection is Consul's passive health check; nil when unset, which
// turns ejection off.
func outlierDetection(o outlierSettings) *clusterv3.OutlierDetection {
	if !o.set {
		return nil
	}
	od := &clusterv3.OutlierDetection{
		Interval:                 durationOrNil(o.interval),
		BaseEjectionTime:         durationOrNil(o.baseEjectionTime),
		EnforcingConsecutive_5Xx: uint32OrNil(o.enforcing),
		MaxEjectionPercent:       uint32OrNil(o.maxEjectionPercent),
	}
	if o.consecutive5xx > 0 {
		od.Consecutive_5Xx = wrapperspb.UInt32(o.consecutive5xx)
	}
	return od
}

func uint32OrNil(v int64) *wrapperspb.UInt32Value {
	if v == unset {
		return nil
	}
	return wrapperspb.UInt32(uint32(v))
}

func durationOrNil(d time.Duration) *durationpb.Duration {
	if d <= 0 {
		return nil
	}
	return durationpb.New(d)
}

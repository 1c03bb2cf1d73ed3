package translate

import (
	"errors"
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/catalog"
)

// maxRingSize is Envoy's upper bound on a ring_hash ring.
const maxRingSize = 8 << 20

var lbPolicies = map[string]clusterv3.Cluster_LbPolicy{
	"":                     clusterv3.Cluster_ROUND_ROBIN,
	catalog.LBRoundRobin:   clusterv3.Cluster_ROUND_ROBIN,
	catalog.LBLeastRequest: clusterv3.Cluster_LEAST_REQUEST,
	catalog.LBRingHash:     clusterv3.Cluster_RING_HASH,
	catalog.LBMaglev:       clusterv3.Cluster_MAGLEV,
	catalog.LBRandom:       clusterv3.Cluster_RANDOM,
}

// checkLoadBalancer reports the first setting of lb Envoy would reject, as
// Consul checks it when the entry is written.
func checkLoadBalancer(lb *catalog.LoadBalancer) error {
	if lb == nil {
		return nil
	}
	if _, ok := lbPolicies[lb.Policy]; !ok {
		return fmt.Errorf("Policy %q is not one of round_robin, least_request, ring_hash, maglev, random", lb.Policy)
	}
	switch {
	case lb.ChoiceCount == 1:
		return errors.New("LeastRequestConfig.ChoiceCount must be at least 2")
	case lb.MinRingSize > maxRingSize || lb.MaxRingSize > maxRingSize:
		return fmt.Errorf("RingHashConfig: ring sizes must be at most %d", maxRingSize)
	case lb.MaxRingSize != 0 && lb.MinRingSize > lb.MaxRingSize:
		return fmt.Errorf("RingHashConfig.MinimumRingSize %d exceeds MaximumRingSize %d", lb.MinRingSize, lb.MaxRingSize)
	case len(lb.HashPolicies) > 0 && !hashBased(lb):
		return fmt.Errorf("HashPolicies need policy ring_hash or maglev, not %q", lb.Policy)
	}
	for i, hp := range lb.HashPolicies {
		if err := checkHashPolicy(hp); err != nil {
			return fmt.Errorf("HashPolicies[%d]: %w", i, err)
		}
	}
	return nil
}

func checkHashPolicy(hp catalog.HashPolicy) error {
	switch {
	case hp.SourceIP && hp.Field != "":
		return fmt.Errorf("SourceIP cannot be combined with Field %q", hp.Field)
	case hp.SourceIP:
		return nil
	case hp.Field != catalog.HashHeader && hp.Field != catalog.HashCookie && hp.Field != catalog.HashQueryParam:
		return fmt.Errorf("Field %q is not one of header, cookie, query_parameter", hp.Field)
	case hp.FieldValue == "":
		return fmt.Errorf("Field %q needs a FieldValue", hp.Field)
	case hp.Cookie != nil && hp.Field != catalog.HashCookie:
		return errors.New("CookieConfig needs Field cookie")
	case hp.Cookie != nil && hp.Cookie.Session && hp.Cookie.TTL != 0:
		return errors.New("CookieConfig: a Session cookie has no TTL")
	case hp.Cookie != nil && hp.Cookie.TTL < 0:
		return fmt.Errorf("CookieConfig.TTL is negative (%v)", hp.Cookie.TTL)
	}
	return nil
}

func hashBased(lb *catalog.LoadBalancer) bool {
	return lb != nil && (lb.Policy == catalog.LBRingHash || lb.Policy == catalog.LBMaglev)
}

// applyLoadBalancer sets a cluster's lb_policy and its policy's config.
// lb must have passed checkLoadBalancer.
func applyLoadBalancer(c *clusterv3.Cluster, lb *catalog.LoadBalancer) {
	if lb == nil {
		return
	}
	c.LbPolicy = lbPolicies[lb.Policy]
	switch {
	case lb.Policy == catalog.LBLeastRequest && lb.ChoiceCount > 0:
		c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{
			ChoiceCount: wrapperspb.UInt32(lb.ChoiceCount),
		}}
	case lb.Policy == catalog.LBRingHash && (lb.MinRingSize > 0 || lb.MaxRingSize > 0):
		rh := &clusterv3.Cluster_RingHashLbConfig{}
		if lb.MinRingSize > 0 {
			rh.MinimumRingSize = wrapperspb.UInt64(lb.MinRingSize)
		}
		if lb.MaxRingSize > 0 {
			rh.MaximumRingSize = wrapperspb.UInt64(lb.MaxRingSize)
		}
		c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: rh}
	}
}

// hashPolicies are a route's hash_policy for a hash-based lb; nil for any
// other lb.
func hashPolicies(lb *catalog.LoadBalancer) []*routev3.RouteAction_HashPolicy {
	if !hashBased(lb) {
		return nil
	}
	out := make([]*routev3.RouteAction_HashPolicy, 0, len(lb.HashPolicies))
	for _, hp := range lb.HashPolicies {
		p := &routev3.RouteAction_HashPolicy{Terminal: hp.Terminal}
		switch {
		case hp.SourceIP:
			p.PolicySpecifier = &routev3.RouteAction_HashPolicy_ConnectionProperties_{
				ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true},
			}
		case hp.Field == catalog.HashHeader:
			p.PolicySpecifier = &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: hp.FieldValue}}
		case hp.Field == catalog.HashQueryParam:
			p.PolicySpecifier = &routev3.RouteAction_HashPolicy_QueryParameter_{
				QueryParameter: &routev3.RouteAction_HashPolicy_QueryParameter{Name: hp.FieldValue},
			}
		default:
			p.PolicySpecifier = &routev3.RouteAction_HashPolicy_Cookie_{Cookie: hashCookie(hp)}
		}
		out = append(out, p)
	}
	return out
}

// hashCookie hashes on a cookie. With a ttl (0 for a session cookie) the
// proxy generates the cookie when the request has none, as Envoy does.
func hashCookie(hp catalog.HashPolicy) *routev3.RouteAction_HashPolicy_Cookie {
	c := &routev3.RouteAction_HashPolicy_Cookie{Name: hp.FieldValue}
	if cc := hp.Cookie; cc != nil {
		c.Path = cc.Path
		switch {
		case cc.Session:
			c.Ttl = durationpb.New(0)
		case cc.TTL > 0:
			c.Ttl = durationpb.New(cc.TTL)
		}
	}
	return c
}

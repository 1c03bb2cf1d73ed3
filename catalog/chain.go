package catalog

import "time"

// The discovery-chain config entries: service-router, service-splitter and
// service-resolver, as Consul defines them, in the parts Weft applies.
// Consul validates each entry when it is written; the control plane still
// checks how entries combine (a subset a router names must exist, redirects
// must not loop) and reports what it cannot apply.
//
// Unsupported, on each entry, lists the settings Weft cannot apply (cluster
// peering, admin partitions, namespaces, sameness groups, locality-aware
// failover), each naming the field and its value, e.g.
// `Redirect.Peer = "other"`. An entry with any is not applied at all.
// ModifyIndex, on each entry, is Consul's version of it when Unsupported
// is not empty, else 0 (as ServiceDefaults.ModifyIndex).

// Load-balancing policies of a service-resolver.
const (
	LBRoundRobin   = "round_robin"
	LBLeastRequest = "least_request"
	LBRingHash     = "ring_hash"
	LBMaglev       = "maglev"
	LBRandom       = "random"
)

// Hash-policy fields of a service-resolver's load balancer.
const (
	HashHeader     = "header"
	HashCookie     = "cookie"
	HashQueryParam = "query_parameter"
)

// ServiceResolver is a service-resolver config entry: which instances of a
// service serve its traffic, and how they are balanced and failed over.
type ServiceResolver struct {
	Name string

	// DefaultSubset is used when a request names no subset; empty means
	// every instance.
	DefaultSubset string
	// Subsets by name.
	Subsets map[string]ResolverSubset

	// Redirect, when set, resolves another service, subset or datacenter
	// instead; every other field is then ignored, as in Consul.
	Redirect *ResolverTarget

	// Failover by subset name ("*" for any subset without its own entry),
	// each with its targets in order of preference.
	Failover map[string]ResolverFailover

	// ConnectTimeout bounds new connections to the service; RequestTimeout
	// bounds HTTP requests routed straight to it. Zero means unset; a
	// negative RequestTimeout disables the timeout.
	ConnectTimeout time.Duration
	RequestTimeout time.Duration

	LoadBalancer *LoadBalancer

	Unsupported []string
	ModifyIndex uint64
}

// ResolverSubset selects the instances of a named subset.
type ResolverSubset struct {
	// Filter is a Consul filter expression evaluated against each sidecar
	// instance (Service.Tags, Service.Meta.<key>, Service.ID, …); empty
	// matches every instance.
	Filter string
	// OnlyPassing excludes instances with warning checks.
	OnlyPassing bool
}

// ResolverTarget names the instances a redirect or failover goes to. An
// empty Service means the service being resolved; an empty Datacenter the
// one being resolved in. Naming another service clears the subset unless
// ServiceSubset names one, as in Consul.
type ResolverTarget struct {
	Service       string
	ServiceSubset string
	Datacenter    string
	// Peer is the cluster peer the service is imported from; only a
	// failover target may name one (Consul's Failover[].Targets[].Peer).
	Peer string
}

// ResolverFailover lists the targets that serve traffic, in order, when
// the primary target has no healthy instance. Consul's three forms
// (Service/ServiceSubset, Datacenters, Targets) are all expressed as
// Targets.
type ResolverFailover struct {
	Targets []ResolverTarget
}

// LoadBalancer is a service-resolver's load-balancing policy.
type LoadBalancer struct {
	Policy string // one of the LB constants; empty means round_robin

	// ChoiceCount is least_request's number of random choices (0: default).
	ChoiceCount uint32
	// MinRingSize and MaxRingSize bound ring_hash's ring (0: default).
	MinRingSize uint64
	MaxRingSize uint64

	// HashPolicies decide the hash of a request for ring_hash and maglev.
	HashPolicies []HashPolicy
}

// HashPolicy is one input to a request's hash. Either SourceIP is set or
// Field and FieldValue (the header, cookie or query parameter name) are.
type HashPolicy struct {
	Field      string // one of the Hash constants
	FieldValue string
	SourceIP   bool
	// Terminal stops evaluating later policies once this one produced a
	// hash.
	Terminal bool
	Cookie   *CookieConfig
}

// CookieConfig makes the proxy generate a missing hash cookie.
type CookieConfig struct {
	Session bool          // a session cookie, without expiry
	TTL     time.Duration // the generated cookie's lifetime
	Path    string
}

// ServiceSplitter is a service-splitter config entry: how a service's
// traffic is divided, by weight, between services and subsets.
type ServiceSplitter struct {
	Name        string
	Splits      []Split
	Unsupported []string
	ModifyIndex uint64
}

// Split is one share of a splitter's traffic.
type Split struct {
	// Weight is a percentage with at most two decimals; a splitter's
	// weights add up to 100.
	Weight float32
	// Service defaults to the splitter's service.
	Service       string
	ServiceSubset string

	RequestHeaders  *HeaderModifiers
	ResponseHeaders *HeaderModifiers
}

// HeaderModifiers change HTTP headers: Add appends a value, Set replaces
// every value, Remove deletes the header.
type HeaderModifiers struct {
	Add    map[string]string
	Set    map[string]string
	Remove []string
}

// ServiceRouter is a service-router config entry: HTTP routes, tried in
// order, each sending matching requests to a service or subset. Requests
// matching none go to the router's own service.
type ServiceRouter struct {
	Name        string
	Routes      []ServiceRoute
	Unsupported []string
	ModifyIndex uint64
}

// ServiceRoute is one route of a service-router.
type ServiceRoute struct {
	Match       *RouteHTTPMatch // nil matches every request
	Destination *RouteDestination
}

// RouteHTTPMatch matches HTTP requests; every set field must match. At
// most one path field is set.
type RouteHTTPMatch struct {
	PathExact       string
	PathPrefix      string
	PathRegex       string
	CaseInsensitive bool
	Headers         []RouteHeaderMatch
	QueryParams     []RouteQueryParamMatch
	Methods         []string
}

// RouteHeaderMatch matches one request header. At most one of Exact,
// Prefix, Suffix and Regex is set; Present alone means "present". Invert
// negates the match.
type RouteHeaderMatch struct {
	Name    string
	Present bool
	Exact   string
	Prefix  string
	Suffix  string
	Regex   string
	Invert  bool
}

// RouteQueryParamMatch matches one query parameter: Exact, Regex, or
// Present alone.
type RouteQueryParamMatch struct {
	Name    string
	Present bool
	Exact   string
	Regex   string
}

// RouteDestination is where a route sends requests, and how.
type RouteDestination struct {
	// Service defaults to the router's service.
	Service       string
	ServiceSubset string
	PrefixRewrite string

	// RequestTimeout and IdleTimeout: zero means unset, negative disables.
	RequestTimeout time.Duration
	IdleTimeout    time.Duration

	NumRetries            uint32
	RetryOnConnectFailure bool
	RetryOn               []string // Envoy retry_on conditions
	RetryOnStatusCodes    []uint32

	RequestHeaders  *HeaderModifiers
	ResponseHeaders *HeaderModifiers
}

// HasRetries reports whether the destination asks for any retry.
func (d *RouteDestination) HasRetries() bool {
	return d != nil && (d.NumRetries > 0 || d.RetryOnConnectFailure || len(d.RetryOn) > 0 || len(d.RetryOnStatusCodes) > 0)
}

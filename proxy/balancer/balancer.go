// Package balancer defines how a cluster chooses an upstream endpoint.
//
// A Picker is built for one immutable set of endpoints and replaced whole
// when the set changes (grpc-go's balancer model): the request path calls
// Pick without locks, and a config update builds a new Picker and swaps a
// pointer. One package per policy implements it (roundrobin today;
// least_request, ring_hash and maglev later).
package balancer

import "errors"

// ErrNoEndpoint is returned by Pick when no endpoint may receive traffic.
var ErrNoEndpoint = errors.New("no healthy upstream endpoint")

// Endpoint is one upstream host that may receive traffic.
// Endpoints handed to a policy are already filtered for health.
type Endpoint struct {
	// Address is "host:port", ready to dial.
	Address string
	// Weight is the endpoint's load-balancing weight, at least 1.
	Weight uint32
}

// PickInfo carries what a policy may look at to choose an endpoint.
// It is empty for round robin; hash-based policies will add a hash here.
type PickInfo struct{}

// PickResult is the outcome of a successful Pick.
type PickResult struct {
	// Endpoint is the chosen endpoint. Callers must not modify it.
	Endpoint *Endpoint
	// Done, when not nil, must be called once the request or connection
	// to Endpoint has finished (used by load-aware policies).
	Done func()
}

// Picker chooses an endpoint for each request or connection.
//
// Pick is called concurrently from any goroutine on the request path: it
// must not block and must not take locks shared with other requests.
// A Picker never changes its endpoint set.
type Picker interface {
	Pick(PickInfo) (PickResult, error)
}

// Builder builds a Picker over endpoints. The slice is owned by the
// Picker afterwards; callers must not modify it.
type Builder func(endpoints []Endpoint) Picker

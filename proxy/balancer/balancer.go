// Package balancer defines how a cluster chooses an upstream endpoint.
//
// A Picker is built for one immutable set of endpoints and replaced whole
// when the set changes (grpc-go's balancer model): the request path calls
// Pick without locks, and an endpoint, health or ejection change builds a
// new Picker and swaps a pointer. One package per policy implements it:
// roundrobin, random, leastrequest, ringhash and maglev, as Envoy's
// lb_policy values.
package balancer

import (
	"errors"
	"sync/atomic"
)

// ErrNoEndpoint is returned by Pick when no endpoint may receive traffic.
var ErrNoEndpoint = errors.New("no healthy upstream endpoint")

// Endpoint is one upstream host that may receive traffic.
// Endpoints handed to a policy are already filtered for health and
// outlier ejection.
type Endpoint struct {
	// Address is "host:port", ready to dial.
	Address string
	// Weight is the endpoint's load-balancing weight, at least 1.
	Weight uint32
	// Active, when not nil, counts the requests in flight to the endpoint.
	// The cluster owns it (it outlives pickers) and updates it; policies
	// only read it.
	Active *atomic.Int64
	// Ref is the owner's handle on the endpoint; policies ignore it.
	Ref any
}

// PickInfo carries what a policy may look at to choose an endpoint.
type PickInfo struct {
	// Hash is the request's hash (route hash_policy) when HasHash is set;
	// hash-based policies pick by it, and pick at random without it.
	Hash    uint64
	HasHash bool
	// Attempt is 0 for a request's first try and n for its n-th retry;
	// hash-based policies perturb the hash on retries (as Envoy does) so
	// that a retry may land on another host.
	Attempt uint32
}

// PickResult is the outcome of a successful Pick.
type PickResult struct {
	// Endpoint is the chosen endpoint. Callers must not modify it.
	Endpoint *Endpoint
}

// Picker chooses an endpoint for each request or connection.
//
// Pick is called concurrently from any goroutine on the request path: it
// must not block, must not take locks and should not allocate.
// A Picker never changes its endpoint set.
type Picker interface {
	Pick(PickInfo) (PickResult, error)
}

// Builder builds a Picker over endpoints. The slice is owned by the
// Picker afterwards; callers must not modify it.
type Builder func(endpoints []Endpoint) Picker

// RetryHash returns the hash a hash-based policy looks up for attempt:
// the hash itself first, then a hash with many bits flipped, so that a
// retry that must avoid a host moves far on the ring (Envoy's
// ThreadAwareLoadBalancer does the same).
func RetryHash(info PickInfo) uint64 {
	if info.Attempt == 0 {
		return info.Hash
	}
	return info.Hash ^ (^uint64(0) - uint64(info.Attempt) + 1)
}

// Empty is a Picker with no endpoint.
type Empty struct{}

// Pick always fails with ErrNoEndpoint.
func (Empty) Pick(PickInfo) (PickResult, error) { return PickResult{}, ErrNoEndpoint }

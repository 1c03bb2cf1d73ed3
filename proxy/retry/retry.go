// Package retry holds compiled route retry policies (Envoy's
// RouteAction.retry_policy): which outcomes of an attempt are retried, how
// many times, how long each attempt may take and how long to back off in
// between. The router (proxy/router) applies them; the cluster's retry
// budget (proxy/cluster) decides whether a retry may run at all.
package retry

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Conditions is a set of retry_on conditions.
type Conditions uint32

// The retry_on conditions weft-proxy applies.
const (
	On5xx Conditions = 1 << iota
	OnGatewayError
	OnReset
	OnResetBeforeRequest
	OnConnectFailure
	OnRetriable4xx
	OnRefusedStream
	OnRetriableStatusCodes
	OnGRPCCancelled
	OnGRPCDeadlineExceeded
	OnGRPCResourceExhausted
	OnGRPCInternal
	OnGRPCUnavailable
)

var conditionNames = map[string]Conditions{
	"5xx":                    On5xx,
	"gateway-error":          OnGatewayError,
	"reset":                  OnReset,
	"reset-before-request":   OnResetBeforeRequest,
	"connect-failure":        OnConnectFailure,
	"retriable-4xx":          OnRetriable4xx,
	"refused-stream":         OnRefusedStream,
	"retriable-status-codes": OnRetriableStatusCodes,
	"cancelled":              OnGRPCCancelled,
	"deadline-exceeded":      OnGRPCDeadlineExceeded,
	"resource-exhausted":     OnGRPCResourceExhausted,
	"internal":               OnGRPCInternal,
	"unavailable":            OnGRPCUnavailable,
	// Conditions that can never hold for weft-proxy: it does not speak
	// HTTP/3 and never receives Envoy's rate-limit marker.
	"envoy-ratelimited":          0,
	"http3-post-connect-failure": 0,
}

// ParseConditions parses a comma-separated retry_on value. Unknown
// conditions are an error naming them; "retriable-headers" is rejected
// because retriable_headers are not supported.
func ParseConditions(s string) (Conditions, error) {
	var c Conditions
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		bit, ok := conditionNames[name]
		if !ok {
			return 0, fmt.Errorf("retry_on condition %q is not supported", name)
		}
		c |= bit
	}
	return c, nil
}

// Defaults of RetryPolicy fields, as Envoy's.
const (
	DefaultNumRetries  = 1
	DefaultBackoffBase = 25 * time.Millisecond
)

// Policy is a compiled retry policy. It is immutable.
type Policy struct {
	On Conditions
	// NumRetries is the number of retries after the first attempt.
	NumRetries uint32
	// PerTryTimeout bounds each attempt, response included; 0: none.
	PerTryTimeout time.Duration
	// StatusCodes are the retriable_status_codes.
	StatusCodes []int
	// BackoffBase and BackoffMax shape the jittered exponential back-off
	// between attempts (retry_back_off; defaults 25 ms and 10× base).
	BackoffBase, BackoffMax time.Duration
	// HostSelectionAttempts is how often a retry re-picks to avoid hosts
	// already tried (host_selection_retry_max_attempts, at least 1).
	HostSelectionAttempts uint32
}

// Failure classifies an attempt that produced no response.
type Failure uint8

const (
	// NoFailure: the upstream answered with response headers.
	NoFailure Failure = iota
	// ConnectFailure: no connection (refused, connect timeout, TLS).
	ConnectFailure
	// Reset: the connection or stream ended before response headers.
	Reset
	// RefusedStream: an HTTP/2 REFUSED_STREAM reset.
	RefusedStream
	// Timeout: the per-try timeout elapsed.
	Timeout
)

// Outcome is what an attempt produced.
type Outcome struct {
	Failure Failure
	// Status is the response status when Failure is NoFailure.
	Status int
	// GRPCStatus is the grpc-status response header, or -1 when absent.
	GRPCStatus int
}

// Retriable reports whether p retries an attempt with outcome o.
func (p *Policy) Retriable(o Outcome) bool {
	if p == nil || p.On == 0 {
		return false
	}
	switch o.Failure {
	case ConnectFailure:
		return p.On&(On5xx|OnGatewayError|OnReset|OnResetBeforeRequest|OnConnectFailure) != 0
	case Reset:
		return p.On&(On5xx|OnGatewayError|OnReset) != 0
	case RefusedStream:
		return p.On&(On5xx|OnGatewayError|OnReset|OnRefusedStream) != 0
	case Timeout:
		return p.On&(On5xx|OnGatewayError|OnReset) != 0
	}
	s := o.Status
	switch {
	case s >= 500 && p.On&On5xx != 0:
		return true
	case (s == 502 || s == 503 || s == 504) && p.On&OnGatewayError != 0:
		return true
	case s == 409 && p.On&OnRetriable4xx != 0:
		return true
	case p.On&OnRetriableStatusCodes != 0 && slices.Contains(p.StatusCodes, s):
		return true
	}
	return p.retriableGRPC(o.GRPCStatus)
}

// gRPC status codes of the gRPC retry conditions.
const (
	grpcCancelled         = 1
	grpcDeadlineExceeded  = 4
	grpcResourceExhausted = 8
	grpcInternal          = 13
	grpcUnavailable       = 14
)

func (p *Policy) retriableGRPC(code int) bool {
	switch code {
	case grpcCancelled:
		return p.On&OnGRPCCancelled != 0
	case grpcDeadlineExceeded:
		return p.On&OnGRPCDeadlineExceeded != 0
	case grpcResourceExhausted:
		return p.On&OnGRPCResourceExhausted != 0
	case grpcInternal:
		return p.On&OnGRPCInternal != 0
	case grpcUnavailable:
		return p.On&OnGRPCUnavailable != 0
	}
	return false
}

// Backoff returns how long to wait before retry n (from 1): a random time
// in [0, min(base × (2^n − 1), max)], Envoy's jittered exponential
// back-off.
func (p *Policy) Backoff(n int) time.Duration {
	base, maxWait := p.BackoffBase, p.BackoffMax
	if base <= 0 {
		base = DefaultBackoffBase
	}
	if maxWait <= 0 {
		maxWait = 10 * base
	}
	limit := maxWait
	if n < 30 {
		limit = min(base*time.Duration(1<<n-1), maxWait)
	}
	if limit <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(limit) + 1))
}

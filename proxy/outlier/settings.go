// Package outlier implements passive health checking (Envoy's
// outlier_detection) for the hosts of a cluster, with one sony/gobreaker
// circuit breaker per host.
//
// The breaker counts consecutive failures and decides when a host trips
// (consecutive_5xx, consecutive_gateway_failure, each with its enforcing
// percentage, and never ejecting more than max_ejection_percent of the
// cluster); a tripped host is ejected — left out of the cluster's pickers
// — for base_ejection_time × the times it has been ejected (capped by
// max_ejection_time, decaying by one per interval of health), on the
// Detector's clock. Then the breaker goes half-open and exactly one
// request probes the host: success closes the breaker and returns the host
// to service, failure ejects it again.
//
// The request path stays lock-free while hosts are healthy: a success is
// reported to the breaker (which locks) only when it ends a run of
// failures. Every availability change calls the Detector's OnChange, on
// which the cluster rebuilds its picker.
package outlier

import (
	"time"
)

// Settings are a compiled OutlierDetection; the zero value of a field is
// its Envoy default only through Defaults.
type Settings struct {
	// Consecutive5xx failures trip a host (5xx responses, connect
	// failures, resets and timeouts).
	Consecutive5xx uint32
	// ConsecutiveGatewayFailure gateway failures (502, 503, 504 and the
	// local-origin failures) trip a host.
	ConsecutiveGatewayFailure uint32
	// Enforcing5xx and EnforcingGatewayFailure are the percentages of
	// detections that really eject.
	Enforcing5xx, EnforcingGatewayFailure uint32
	// Interval is the period over which the ejection multiplier decays.
	Interval time.Duration
	// BaseEjectionTime is the ejection time of a first ejection.
	BaseEjectionTime time.Duration
	// MaxEjectionTime caps the ejection time (never below BaseEjectionTime).
	MaxEjectionTime time.Duration
	// MaxEjectionTimeJitter adds a random [0, jitter] to each ejection.
	MaxEjectionTimeJitter time.Duration
	// MaxEjectionPercent of the cluster's hosts may be ejected at once.
	MaxEjectionPercent uint32
	// AlwaysEjectOneHost allows one ejection even when it exceeds
	// MaxEjectionPercent.
	AlwaysEjectOneHost bool
}

// Defaults are Envoy's OutlierDetection defaults.
func Defaults() Settings {
	return Settings{
		Consecutive5xx:            5,
		ConsecutiveGatewayFailure: 5,
		Enforcing5xx:              100,
		EnforcingGatewayFailure:   0,
		Interval:                  10 * time.Second,
		BaseEjectionTime:          30 * time.Second,
		MaxEjectionTime:           300 * time.Second,
		MaxEjectionPercent:        10,
	}
}

// ejectionTime is how long the n-th ejection (n ≥ 1) lasts, before jitter.
func (s *Settings) ejectionTime(n int) time.Duration {
	limit := max(s.MaxEjectionTime, s.BaseEjectionTime)
	if n > 0 && s.BaseEjectionTime > 0 && time.Duration(n) > limit/s.BaseEjectionTime {
		return limit
	}
	return min(s.BaseEjectionTime*time.Duration(n), limit)
}

// Clock is the time source of ejections; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// AfterFunc runs f in its own goroutine after d; stop cancels it.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

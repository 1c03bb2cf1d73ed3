package config

import (
	"fmt"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/weft-mesh/weft/proxy/outlier"
)

// compileOutlierDetection compiles the consecutive-5xx and consecutive
// gateway failure detectors. The success-rate and failure-percentage
// detectors are not implemented: their parameters are rejected, and
// enforcing_success_rate (on by default in Envoy) is accepted but has no
// effect. The local-origin fields only apply when
// split_external_local_origin_errors is set, which is rejected, so they
// are accepted as Envoy would ignore them.
func compileOutlierDetection(od *clusterv3.OutlierDetection) (*outlier.Settings, error) {
	if err := onlyFields(od, "consecutive_5xx", "interval", "base_ejection_time", "max_ejection_percent",
		"enforcing_consecutive_5xx", "consecutive_gateway_failure", "enforcing_consecutive_gateway_failure",
		"max_ejection_time", "max_ejection_time_jitter", "always_eject_one_host", "split_external_local_origin_errors",
		"enforcing_success_rate", "successful_active_health_check_uneject_host",
		"consecutive_local_origin_failure", "enforcing_consecutive_local_origin_failure", "enforcing_local_origin_success_rate"); err != nil {
		return nil, err
	}
	if od.GetSplitExternalLocalOriginErrors() {
		return nil, fmt.Errorf("split_external_local_origin_errors is not supported")
	}
	s := outlier.Defaults()
	setUint32(&s.Consecutive5xx, od.GetConsecutive_5Xx())
	setUint32(&s.ConsecutiveGatewayFailure, od.GetConsecutiveGatewayFailure())
	setUint32(&s.Enforcing5xx, od.GetEnforcingConsecutive_5Xx())
	setUint32(&s.EnforcingGatewayFailure, od.GetEnforcingConsecutiveGatewayFailure())
	setUint32(&s.MaxEjectionPercent, od.GetMaxEjectionPercent())
	for _, d := range []struct {
		dst *time.Duration
		src *durationpb.Duration
	}{
		{&s.Interval, od.GetInterval()},
		{&s.BaseEjectionTime, od.GetBaseEjectionTime()},
		{&s.MaxEjectionTime, od.GetMaxEjectionTime()},
		{&s.MaxEjectionTimeJitter, od.GetMaxEjectionTimeJitter()},
	} {
		if d.src != nil {
			*d.dst = d.src.AsDuration()
		}
	}
	s.AlwaysEjectOneHost = od.GetAlwaysEjectOneHost().GetValue()
	switch {
	case s.Consecutive5xx == 0:
		return nil, fmt.Errorf("consecutive_5xx must be at least 1")
	case s.ConsecutiveGatewayFailure == 0:
		return nil, fmt.Errorf("consecutive_gateway_failure must be at least 1")
	case s.BaseEjectionTime <= 0:
		return nil, fmt.Errorf("base_ejection_time must be positive")
	}
	return &s, nil
}

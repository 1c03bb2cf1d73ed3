package tracing

import (
	"sync/atomic"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// ratioSampler is the SDK's TraceIDRatioBased sampler behind an atomic
// pointer, so that a provider shared by several configurations takes a
// new sampling ratio without being rebuilt. It is the root sampler of a
// ParentBased sampler: it decides only for traces that start here.
type ratioSampler struct {
	s atomic.Pointer[sdktrace.Sampler]
}

var _ sdktrace.Sampler = (*ratioSampler)(nil)

func (r *ratioSampler) set(ratio float64) {
	s := sdktrace.TraceIDRatioBased(ratio)
	r.s.Store(&s)
}

func (r *ratioSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	return (*r.s.Load()).ShouldSample(p)
}

func (r *ratioSampler) Description() string { return (*r.s.Load()).Description() }

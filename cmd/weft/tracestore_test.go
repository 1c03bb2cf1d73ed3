package main

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weft-mesh/weft/traces"
)

// TestTraceStoreMetrics: the embedded trace backend's bounds and contents
// are in /metrics, from the flags.
func TestTraceStoreMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	store := traceStore(10, 2)
	store.Add([]traces.Span{{TraceID: "t1", SpanID: "s1", Service: "web", Name: "GET /"}})
	registerTraceStoreMetrics(reg, store)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range families {
		m := mf.GetMetric()[0]
		got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
	}
	want := map[string]float64{
		"weft_cp_trace_store_traces": 1, "weft_cp_trace_store_spans": 1, "weft_cp_trace_store_max_traces": 10,
		"weft_cp_trace_store_max_bytes": 2 << 20, "weft_cp_trace_store_traces_evicted_total": 0, "weft_cp_trace_store_spans_dropped_total": 0,
	}
	for name, v := range want {
		if got[name] != v {
			t.Errorf("%s = %v, want %v", name, got[name], v)
		}
	}
	if got["weft_cp_trace_store_bytes"] <= 0 {
		t.Errorf("weft_cp_trace_store_bytes = %v, want the span's size", got["weft_cp_trace_store_bytes"])
	}
	names := make([]string, 0, len(got))
	for n := range got {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) != 7 {
		t.Errorf("metrics %v, want 7", names)
	}
	if traceStore(0, 64) != nil {
		t.Error("--trace-store-traces 0 still built a store")
	}
}

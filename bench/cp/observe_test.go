package main

import "testing"

func TestMetricValue(t *testing.T) {
	exposition := []byte(`# HELP weft_cp_consul_watches Consul blocking queries running.
# TYPE weft_cp_consul_watches gauge
weft_cp_consul_watches_total 7
weft_cp_consul_watches 1014
weft_cp_xds_streams{type="delta"} 2000
weft_cp_big 1.5e+06
`)
	for _, tc := range []struct {
		name   string
		want   float64
		wantOK bool
	}{
		{"weft_cp_consul_watches", 1014, true}, // not the _total that shares its prefix
		{"weft_cp_big", 1.5e6, true},
		{"weft_cp_xds_streams", 0, false}, // labelled samples are not read
		{"weft_cp_missing", 0, false},
	} {
		if got, ok := metricValue(exposition, tc.name); got != tc.want || ok != tc.wantOK {
			t.Errorf("metricValue(%s) = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}

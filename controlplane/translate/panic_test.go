package translate

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestHealthyPanicThreshold: a mesh's panic threshold reaches every
// upstream cluster's common_lb_config, 0 included (panic mode off);
// without one no cluster sets it, leaving the sidecar's default. The
// local app's cluster never has it.
func TestHealthyPanicThreshold(t *testing.T) {
	zero, thirty := 0.0, 30.0
	tests := []struct {
		name      string
		threshold *float64
		want      map[string]any // by cluster name: the threshold, or nil
	}{
		{"unset", nil, map[string]any{"local_app": nil, "api.default.dc1": nil}},
		{"off", &zero, map[string]any{"local_app": nil, "api.default.dc1": 0.0}},
		{"30 %", &thirty, map[string]any{"local_app": nil, "api.default.dc1": 30.0}},
	}
	tc := baseCases()[0]
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mesh := tc.mesh
			mesh.HealthyPanicThreshold = tt.threshold
			got := map[string]any{}
			for _, c := range Translate(tc.snap, mesh).Proxies["web-1-sidecar-proxy"].Clusters {
				got[c.GetName()] = nil
				if p := c.GetCommonLbConfig().GetHealthyPanicThreshold(); p != nil {
					got[c.GetName()] = p.GetValue()
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("thresholds by cluster (-want +got):\n%s", diff)
			}
		})
	}
}

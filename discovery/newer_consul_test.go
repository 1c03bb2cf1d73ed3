package discovery

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
)

// TestNewerConsulFields pins what Weft makes of config-entry fields that the
// Consul under test (v1.14.11) refuses to store, so no end-to-end test can
// write them: each fixture in testdata/newer-consul is an entry as Consul's
// documentation writes it in JSON, decoded by Consul's own API package. A
// field is either applied or reported as unsupported; never dropped.
func TestNewerConsulFields(t *testing.T) {
	tests := []struct {
		file string
		want any // what the entry converts to
	}{
		{"router-case-insensitive.json", map[string]*catalog.ServiceRouter{"api": {Name: "api", Routes: []catalog.ServiceRoute{{
			Match:       &catalog.RouteHTTPMatch{PathPrefix: "/Admin", CaseInsensitive: true},
			Destination: &catalog.RouteDestination{Service: "admin"},
		}}}}},
		{"intentions-header-contains.json", map[string][]catalog.Intention{"api": {{
			Source: "web", Destination: "api", Permissions: []catalog.IntentionPermission{{Action: "allow", HTTP: &catalog.IntentionHTTPMatch{
				PathPrefix: "/", Headers: []catalog.IntentionHTTPHeader{{Name: "x-tenant", Contains: "blue", IgnoreCase: true}}}}},
		}}}},
		// Weft cannot verify JWTs: an allow that needs one is a deny.
		{"intentions-jwt.json", map[string][]catalog.Intention{"api": {
			{Source: "web", Destination: "api", Action: "deny"},
			{Source: "batch", Destination: "api", Action: "deny"},
		}}},
		{"intentions-permission-jwt.json", map[string][]catalog.Intention{"api": {{
			Source: "web", Destination: "api", Permissions: []catalog.IntentionPermission{
				{Action: "deny", HTTP: &catalog.IntentionHTTPMatch{PathPrefix: "/admin"}},
				{Action: "allow", HTTP: &catalog.IntentionHTTPMatch{PathPrefix: "/"}},
			},
		}}}},
		{"resolver-prioritize-by-locality.json", map[string]*catalog.ServiceResolver{"api": {Name: "api",
			Unsupported: []string{`PrioritizeByLocality.Mode = "failover"`}}}},
		{"resolver-failover-policy.json", map[string]*catalog.ServiceResolver{"api": {Name: "api",
			Failover:    map[string]catalog.ResolverFailover{"*": {Targets: []catalog.ResolverTarget{{Service: "api-backup"}}}},
			Unsupported: []string{`Failover["*"].Policy.Mode = "order-by-locality"`}}}},
		{"resolver-sameness-group.json", map[string]*catalog.ServiceResolver{"api": {Name: "api",
			Failover:    map[string]catalog.ResolverFailover{"*": {}},
			Unsupported: []string{`Failover["*"].SamenessGroup = "product-group"`}}}},
		{"defaults-mutual-tls-permissive.json", map[string]*catalog.ServiceDefaults{"api": {Name: "api", Protocol: "http",
			Unsupported: []string{`MutualTLSMode = "permissive"`}}}},
		// Strict is what Weft's inbound listeners always do.
		{"defaults-mutual-tls-strict.json", map[string]*catalog.ServiceDefaults{"api": {Name: "api", Protocol: "http"}}},
		{"defaults-rate-limits.json", map[string]*catalog.ServiceDefaults{"api": {Name: "api", Protocol: "http", Unsupported: []string{
			`RateLimits.InstanceLevel = "requests_per_second=50 requests_max_burst=100"`,
			`RateLimits.InstanceLevel.Routes[0] = "requests_per_second=5"`,
		}}}},
		{"defaults-envoy-extensions.json", map[string]*catalog.ServiceDefaults{"api": {Name: "api", Protocol: "http",
			Unsupported: []string{`EnvoyExtensions[0].Name = "builtin/lua"`}}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "newer-consul", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			entry, err := api.DecodeConfigEntryFromJSON(raw)
			if err != nil {
				t.Fatalf("decode %s: %v", tt.file, err)
			}
			var got any
			switch entry.GetKind() {
			case api.ServiceRouter:
				got = convertServiceRouters([]api.ConfigEntry{entry})
			case api.ServiceIntentions:
				got = convertIntentions([]api.ConfigEntry{entry}).byDestination
			case api.ServiceResolver:
				got = convertServiceResolvers([]api.ConfigEntry{entry})
			case api.ServiceDefaults:
				got = convertServiceDefaults([]api.ConfigEntry{entry})
			default:
				t.Fatalf("no conversion for kind %q", entry.GetKind())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tt.file, diff)
			}
		})
	}
}

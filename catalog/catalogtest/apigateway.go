// Package catalogtest holds catalog values that tests of more than one
// package expect.
package catalogtest

import (
	"time"

	"github.com/weft-mesh/weft/catalog"
)

// DocumentedHTTPRoute is the http-route "my-http-route" of the API
// gateway example (discovery/testdata): what discovery converts it to,
// and what the translation's golden case starts from.
func DocumentedHTTPRoute() *catalog.HTTPRoute {
	return &catalog.HTTPRoute{Name: "my-http-route", Hostnames: []string{"api.example.com"}, Rules: []catalog.HTTPRouteRule{
		{
			Matches: []catalog.RouteHTTPMatch{{PathPrefix: "/v1"}},
			Destination: catalog.RouteDestination{PrefixRewrite: "/",
				RequestHeaders: &catalog.HeaderModifiers{Add: map[string]string{"x-gateway": "my-gateway"}, Remove: []string{"x-debug"}}},
			Services: []catalog.WeightedService{{Name: "v1-service", Weight: 1}},
		},
		{
			Matches: []catalog.RouteHTTPMatch{{PathExact: "/v2/status", Methods: []string{"GET"},
				Headers:     []catalog.RouteHeaderMatch{{Name: "x-canary", Present: true}},
				QueryParams: []catalog.RouteQueryParamMatch{{Name: "debug", Exact: "1"}}}},
			Destination: catalog.RouteDestination{NumRetries: 2, RetryOnConnectFailure: true, RequestTimeout: 5 * time.Second},
			Services: []catalog.WeightedService{{Name: "v2-service", Weight: 90},
				{Name: "v2-canary", Weight: 10, RequestHeaders: &catalog.HeaderModifiers{Set: map[string]string{"x-canary": "true"}}}},
		},
		{Services: []catalog.WeightedService{{Name: "v1-service", Weight: 1}}, RequiresJWT: true},
	}}
}

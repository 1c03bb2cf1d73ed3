package router

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/internal/testnet"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/retry"
)

// aggregate is an aggregate cluster "agg" over children.
func aggregate(children ...string) *config.Cluster {
	return &config.Cluster{Name: "agg", Aggregate: children, LB: config.LB{PanicThreshold: config.DefaultPanicThreshold}, Limits: config.DefaultLimits()}
}

// TestAggregateRetryGoesToTheNextChild: each attempt re-resolves the
// aggregate cluster, so a retry after the primary's only host failed
// goes to the peer; the retry counts in the primary's retry budget, the
// cluster whose attempt failed.
func TestAggregateRetryGoesToTheNextChild(t *testing.T) {
	var calls atomic.Int32
	tests := []struct {
		name    string
		primary string
		policy  *retry.Policy
	}{
		{"connect failure, no policy", testnet.ClosedPort(t), nil},
		{"503 retried by policy", status(t, 503, &calls), &retry.Policy{On: retry.On5xx, NumRetries: 1, HostSelectionAttempts: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.setClusters(aggregate("primary", "peer"), staticCluster("primary", tt.primary), staticCluster("peer", named(t, "peer")))
			e.routes(to("agg", withRetry(tt.policy)))
			for range 5 {
				if got := e.get("/"); got.code != 200 || got.body != "peer" {
					t.Fatalf("got %d %q, want the retry answered by the peer", got.code, got.body)
				}
			}
			if diff := cmp.Diff([]string{"primary", "primary", "primary", "primary", "primary"}, e.retriedClusters()); diff != "" {
				t.Errorf("retries counted in (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAggregateChildLimitsApply: the request counts in the child it goes
// to: the child's max_requests rejects it (as Envoy's does, without
// failing over); the local reply names the route's cluster.
func TestAggregateChildLimitsApply(t *testing.T) {
	e := newEnv(t)
	full := staticCluster("primary", named(t, "primary"))
	full.Limits.MaxRequests = 0
	e.setClusters(aggregate("primary", "peer"), full, staticCluster("peer", named(t, "peer")))
	e.routes(to("agg"))
	wantLocalReply(t, e.get("/"), http.StatusServiceUnavailable, "overflow", "agg")

	room := staticCluster("primary", named(t, "primary"))
	room.Limits.MaxRequests = 1
	e.setClusters(aggregate("primary", "peer"), room, staticCluster("peer", named(t, "peer")))
	if got := e.get("/"); got.code != 200 || got.body != "primary" {
		t.Errorf("with room in the primary: %d %q", got.code, got.body)
	}
	if got := e.clusters.Get("primary").AcquireRequest(); !got {
		t.Error("the primary's request count was not released")
	}
}

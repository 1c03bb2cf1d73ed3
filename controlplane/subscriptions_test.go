package controlplane

import (
	"testing"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/google/go-cmp/cmp"
)

// TestNamedSubscriptionsReport follows proxyless clients' requests and
// responses, per stream, and checks what proxy-status reports.
func TestNamedSubscriptionsReport(t *testing.T) {
	deltaResp := func(sent []string, removed ...string) *discoveryv3.DeltaDiscoveryResponse {
		r := &discoveryv3.DeltaDiscoveryResponse{RemovedResources: removed}
		for _, n := range sent {
			r.Resources = append(r.Resources, &discoveryv3.Resource{Name: n})
		}
		return r
	}
	tests := []struct {
		name  string
		steps func(streams []*namedSubscription)
		want  TypeSync
	}{
		{
			name:  "sotw request not answered yet",
			steps: func(s []*namedSubscription) { s[0].sotwRequest([]string{"a", "b"}) },
			want:  TypeSync{Subscribed: []string{"a", "b"}, Missing: []string{"a", "b"}},
		},
		{
			name: "sotw answered without a missing name",
			steps: func(s []*namedSubscription) {
				s[0].sotwRequest([]string{"a", "nope"})
				s[0].sotwResponse([]string{"a"})
			},
			want: TypeSync{Subscribed: []string{"a", "nope"}, Sent: []string{"a"}, Missing: []string{"nope"}},
		},
		{
			name: "sotw drops a name",
			steps: func(s []*namedSubscription) {
				s[0].sotwRequest([]string{"a", "b"})
				s[0].sotwResponse([]string{"a", "b"})
				s[0].sotwRequest([]string{"b"})
			},
			want: TypeSync{Subscribed: []string{"b"}, Sent: []string{"b"}},
		},
		{
			name: "one stream per target, as grpc-go dials",
			steps: func(s []*namedSubscription) {
				s[0].sotwRequest([]string{"a"})
				s[0].sotwResponse([]string{"a"})
				s[1].sotwRequest([]string{"b"})
			},
			want: TypeSync{Subscribed: []string{"a", "b"}, Sent: []string{"a"}, Missing: []string{"b"}},
		},
		{
			name: "delta removal and a later send",
			steps: func(s []*namedSubscription) {
				s[0].deltaRequest([]string{"a", "nope"}, nil)
				s[0].deltaResponse(deltaResp([]string{"a"}, "nope"))
				s[0].deltaRequest([]string{"later"}, nil)
				s[0].deltaResponse(deltaResp([]string{"later"}))
			},
			want: TypeSync{Subscribed: []string{"a", "later", "nope"}, Sent: []string{"a", "later"}, Missing: []string{"nope"}},
		},
		{
			name: "delta unsubscribe and a removed resource",
			steps: func(s []*namedSubscription) {
				s[0].deltaRequest([]string{"a", "b", "c"}, nil)
				s[0].deltaResponse(deltaResp([]string{"a", "b", "c"}))
				s[0].deltaRequest(nil, []string{"a"})
				s[0].deltaResponse(deltaResp(nil, "b"))
			},
			want: TypeSync{Subscribed: []string{"b", "c"}, Sent: []string{"c"}, Missing: []string{"b"}},
		},
		{
			name: "delta wildcard is not missing",
			steps: func(s []*namedSubscription) {
				s[0].deltaRequest([]string{"*"}, nil)
				s[0].deltaResponse(deltaResp([]string{"a"}))
			},
			want: TypeSync{Subscribed: []string{"*"}, Sent: []string{"a"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			streams := []*namedSubscription{{}, {}}
			tc.steps(streams)
			var got TypeSync
			namedSubscriptions(streams).report(&got)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
		})
	}
}

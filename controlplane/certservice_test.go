package controlplane

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/catalog"
)

func TestSidecarFor(t *testing.T) {
	snap := &catalog.Snapshot{Proxies: map[string]*catalog.Proxy{
		"web-1-sidecar-proxy": {ID: "web-1-sidecar-proxy", DestinationName: "web", DestinationID: "web-1"},
		"api-1-sidecar-proxy": {ID: "api-1-sidecar-proxy", DestinationName: "api", DestinationID: "api-1"},
		"api-1-extra-proxy":   {ID: "api-1-extra-proxy", DestinationName: "api", DestinationID: "api-1"},
	}}
	tests := []struct {
		serviceID string
		want      string
		code      codes.Code
		message   string
	}{
		{serviceID: "web-1", want: "web-1-sidecar-proxy"},
		{serviceID: "db-1", code: codes.NotFound, message: `no sidecar proxy is registered in Consul for service instance "db-1"`},
		{serviceID: "api-1", code: codes.FailedPrecondition,
			message: `service instance "api-1" has 2 sidecar proxies registered (api-1-extra-proxy, api-1-sidecar-proxy): name one with --proxy-id`},
		{serviceID: "", code: codes.InvalidArgument, message: "name a service_id"},
	}
	for _, tt := range tests {
		t.Run(tt.serviceID, func(t *testing.T) {
			p, err := sidecarFor(snap, tt.serviceID)
			if st := status.Convert(err); st.Code() != tt.code || st.Message() != tt.message {
				t.Fatalf("error %v; want %v %q", err, tt.code, tt.message)
			}
			if tt.want != "" && (p == nil || p.ID != tt.want) {
				t.Fatalf("proxy %+v; want %s", p, tt.want)
			}
		})
	}
}

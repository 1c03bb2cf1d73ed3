package membership

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"
)

func TestAgentService(t *testing.T) {
	reg := Registration{
		Name: "web", ID: "web-1", Address: "10.0.0.7", Port: 8080, SidecarPort: 20000,
		Upstreams: []Upstream{{Service: "api", Port: 9191}, {Service: "db", Port: 5432}}, Protocol: "http",
		Meta:   map[string]string{"k8s-pod": "web-1"},
		Checks: []Check{{TCP: "10.0.0.7:8080"}, {HTTP: "http://10.0.0.7:8080/healthz", Interval: 3 * time.Second}},
	}
	want := &api.AgentServiceRegistration{
		ID: "web-1", Name: "web", Address: "10.0.0.7", Port: 8080, Meta: map[string]string{"k8s-pod": "web-1"},
		Checks: api.AgentServiceChecks{
			{CheckID: "web-1:check-1", Name: "TCP 10.0.0.7:8080", TCP: "10.0.0.7:8080", Interval: "10s"},
			{CheckID: "web-1:check-2", Name: "HTTP http://10.0.0.7:8080/healthz", HTTP: "http://10.0.0.7:8080/healthz", Interval: "3s"},
		},
		Connect: &api.AgentServiceConnect{SidecarService: &api.AgentServiceRegistration{
			Address: "10.0.0.7", Port: 20000,
			Proxy: &api.AgentServiceConnectProxyConfig{
				Config: map[string]any{"protocol": "http"},
				Upstreams: []api.Upstream{
					{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: 9191},
					{DestinationName: "db", LocalBindAddress: "127.0.0.1", LocalBindPort: 5432},
				},
			},
		}},
	}
	if diff := cmp.Diff(want, reg.agentService()); diff != "" {
		t.Errorf("agentService() (-want +got):\n%s", diff)
	}
}

func TestParseUpstreams(t *testing.T) {
	tests := []struct {
		in      string
		want    []Upstream
		wantErr string
		format  string // FormatUpstreams of want; default "api:9191,db:5432"
	}{
		{in: "", want: nil},
		{in: "api:9191, db:5432,", want: []Upstream{{Service: "api", Port: 9191}, {Service: "db", Port: 5432}}},
		{in: "api.svc.dc2.peer:9191,db.svc.default.ns.dc2.peer:5432", want: []Upstream{{Service: "api", Peer: "dc2", Port: 9191}, {Service: "db", Peer: "dc2", Port: 5432}},
			format: "api.svc.dc2.peer:9191,db.svc.dc2.peer:5432"},
		{in: "api.svc.peer:9191", wantErr: `upstream "api.svc.peer:9191": a peered service is SERVICE.svc.PEER.peer`},
		{in: "api.svc.a.b.peer:9191", wantErr: `upstream "api.svc.a.b.peer:9191": a peered service is SERVICE.svc.PEER.peer`},
		{in: "api", wantErr: `upstream "api": want SERVICE:PORT`},
		{in: "api:0", wantErr: `upstream "api:0": want SERVICE:PORT`},
		{in: ":80", wantErr: `upstream ":80": want SERVICE:PORT`},
		{in: "api:80,db:80", wantErr: "upstreams api and db both bind port 80"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseUpstreams(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want prefix %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			want := tt.format
			if want == "" {
				want = "api:9191,db:5432"
			}
			if tt.want != nil && FormatUpstreams(got) != want {
				t.Errorf("FormatUpstreams = %q", FormatUpstreams(got))
			}
		})
	}
}

func TestValidate(t *testing.T) {
	err := Registration{Port: -1, Protocol: "udp", Checks: []Check{{}}}.Validate()
	for _, want := range []string{"service name: empty", "port -1", `protocol "udp"`, "exactly one of HTTP and TCP"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}

func TestAgentServiceTransparent(t *testing.T) {
	tests := []struct {
		name string
		reg  Registration
		want *api.AgentServiceConnectProxyConfig
	}{
		{"direct", Registration{Name: "web"}, &api.AgentServiceConnectProxyConfig{}},
		{"transparent, Consul's port", Registration{Name: "web", Transparent: true},
			&api.AgentServiceConnectProxyConfig{Mode: api.ProxyModeTransparent}},
		{"transparent, own port", Registration{Name: "web", Transparent: true, OutboundPort: 15011},
			&api.AgentServiceConnectProxyConfig{Mode: api.ProxyModeTransparent, TransparentProxy: &api.TransparentProxyConfig{OutboundListenerPort: 15011}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.reg.agentService().Connect.SidecarService.Proxy); diff != "" {
				t.Errorf("sidecar proxy config (-want +got):\n%s", diff)
			}
		})
	}
}

package catalog

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIngressListenerTLS(t *testing.T) {
	gw := &IngressGateway{TLS: IngressTLS{MinVersion: "TLSv1_2", MaxVersion: "TLSv1_3", CipherSuites: []string{"A"}}}
	tests := []struct {
		name    string
		enabled bool // the gateway's
		l       *IngressTLS
		want    IngressTLS
		ok      bool
	}{
		{name: "off", want: IngressTLS{MinVersion: "TLSv1_2", MaxVersion: "TLSv1_3", CipherSuites: []string{"A"}}},
		{name: "gateway on", enabled: true, ok: true,
			want: IngressTLS{Enabled: true, MinVersion: "TLSv1_2", MaxVersion: "TLSv1_3", CipherSuites: []string{"A"}}},
		{name: "listener on, gateway settings", l: &IngressTLS{Enabled: true}, ok: true,
			want: IngressTLS{Enabled: true, MinVersion: "TLSv1_2", MaxVersion: "TLSv1_3", CipherSuites: []string{"A"}}},
		{name: "listener overrides", enabled: true, l: &IngressTLS{MinVersion: "TLSv1_3", CipherSuites: []string{"B"}}, ok: true,
			want: IngressTLS{Enabled: true, MinVersion: "TLSv1_3", MaxVersion: "TLSv1_3", CipherSuites: []string{"B"}}},
		{name: "a listener cannot turn the gateway's off", enabled: true, l: &IngressTLS{Enabled: false}, ok: true,
			want: IngressTLS{Enabled: true, MinVersion: "TLSv1_2", MaxVersion: "TLSv1_3", CipherSuites: []string{"A"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := *gw
			g.TLS.Enabled = tt.enabled
			got, ok := g.ListenerTLS(IngressListener{TLS: tt.l})
			if diff := cmp.Diff(tt.want, got); diff != "" || ok != tt.ok {
				t.Errorf("ListenerTLS = %v (-want +got):\n%s", ok, diff)
			}
		})
	}
}

func TestIngressDNSNames(t *testing.T) {
	listeners := []IngressListener{
		{Port: 8080, Protocol: "http", Services: []IngressService{{Name: "api", Hosts: []string{"api.example.com", "API.example.com"}}, {Name: "web"}}},
		{Port: 8443, Protocol: "http", Services: []IngressService{{Name: "web", Hosts: []string{"web.example.com", "*.apps.example.com"}}}},
		{Port: 9000, Services: []IngressService{{Name: "db"}}},
	}
	all := []string{"*.apps.example.com", "*.ingress.consul", "*.ingress.dc1.consul", "api.example.com", "web.example.com"}
	tests := []struct {
		name    string
		gw      *IngressGateway
		domains []string
		want    []string
	}{
		{name: "no entry"},
		{name: "no TLS", gw: &IngressGateway{Listeners: listeners}},
		{name: "gateway TLS", gw: &IngressGateway{TLS: IngressTLS{Enabled: true}, Listeners: listeners}, want: all},
		{name: "one listener's TLS covers the hosts of all", want: all, gw: &IngressGateway{Listeners: []IngressListener{
			listeners[0], {Port: 8443, Protocol: "http", TLS: &IngressTLS{Enabled: true}, Services: listeners[1].Services}, listeners[2]}}},
		{name: "no service: no wildcard", gw: &IngressGateway{TLS: IngressTLS{Enabled: true}, Listeners: []IngressListener{{Port: 1}}}, want: []string{}},
		{name: "the agent's domain and alt domain", gw: &IngressGateway{TLS: IngressTLS{Enabled: true}, Listeners: listeners[2:]},
			domains: []string{"corp", "mesh.example"},
			want:    []string{"*.ingress.corp", "*.ingress.dc1.corp", "*.ingress.dc1.mesh.example", "*.ingress.mesh.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, IngressDNSNames(tt.gw, "dc1", tt.domains)); diff != "" {
				t.Errorf("IngressDNSNames (-want +got):\n%s", diff)
			}
		})
	}
}

package bootstrap

import (
	"encoding/json"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
)

func TestEnvoyJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      Envoy
		wantErr string
		check   func(t *testing.T, b *bootstrapv3.Bootstrap)
	}{
		{name: "sidecar with leaf files", in: Envoy{ProxyID: "web-1-sidecar-proxy", Service: "web", XDSAddr: "10.0.0.5:15010",
			AdminAddr: "127.0.0.1:19000", LeafCert: "/etc/weft/leaf.pem", LeafKey: "/etc/weft/leaf-key.pem"},
			check: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				if b.GetNode().GetId() != "web-1-sidecar-proxy" || b.GetNode().GetCluster() != "web" {
					t.Errorf("node = %v", b.GetNode())
				}
				if b.GetDynamicResources().GetLdsConfig().GetAds() == nil || b.GetDynamicResources().GetCdsConfig().GetAds() == nil {
					t.Error("LDS and CDS must come over ADS")
				}
				c := b.GetStaticResources().GetClusters()[0]
				sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
				if sa.GetAddress() != "10.0.0.5" || sa.GetPortValue() != 15010 {
					t.Errorf("xDS cluster points at %v", sa)
				}
				if s := b.GetStaticResources().GetSecrets(); len(s) != 1 || s[0].GetName() != "weft-leaf" {
					t.Errorf("secrets = %v, want the weft-leaf secret", s)
				}
			}},
		{name: "no leaf files", in: Envoy{ProxyID: "web-1-sidecar-proxy", XDSAddr: "127.0.0.1:15010", AdminAddr: "127.0.0.1:19000"},
			check: func(t *testing.T, b *bootstrapv3.Bootstrap) {
				if len(b.GetStaticResources().GetSecrets()) != 0 {
					t.Error("unexpected secrets")
				}
			}},
		{name: "missing proxy ID", in: Envoy{XDSAddr: "127.0.0.1:15010", AdminAddr: "127.0.0.1:19000"}, wantErr: "proxy ID"},
		{name: "bad xDS address", in: Envoy{ProxyID: "x", XDSAddr: "nowhere", AdminAddr: "127.0.0.1:19000"}, wantErr: "xDS address"},
		{name: "key without cert", in: Envoy{ProxyID: "x", XDSAddr: "127.0.0.1:15010", AdminAddr: "127.0.0.1:19000", LeafKey: "k"}, wantErr: "both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := EnvoyJSON(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(out) {
				t.Fatal("not JSON")
			}
			b := &bootstrapv3.Bootstrap{}
			if err := protojson.Unmarshal(out, b); err != nil {
				t.Fatalf("does not parse back as an Envoy v3 bootstrap: %v", err)
			}
			if err := b.ValidateAll(); err != nil {
				t.Fatal(err)
			}
			tt.check(t, b)
		})
	}
}

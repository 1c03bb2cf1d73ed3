package discovery

import (
	"context"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
)

func TestACLAuthorizer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Consul agent")
	}
	t.Setenv("CONSUL_HTTP_TOKEN", "root")
	srv := consultest.Start(t, consultest.WithArgs(
		`-hcl=acl { enabled = true, default_policy = "deny", tokens { initial_management = "root" } }`))
	client := srv.Client()
	policy, _, err := client.ACL().PolicyCreate(&api.ACLPolicy{Name: "web-write", Rules: `service "web" { policy = "write" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	webToken, _, err := client.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: policy.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	authz := newTestAuthorizer(t, srv.HTTPAddr)
	tests := []struct {
		name, token, service string
		want                 bool
	}{
		{"own service", webToken.SecretID, "web", true},
		{"other service", webToken.SecretID, "api", false},
		{"unknown token", "00000000-0000-0000-0000-000000000001", "web", false},
		{"anonymous under default deny", "anonymous", "web", false},
		{"management token", "root", "api", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := authz.CanWriteService(context.Background(), tt.token, tt.service)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("CanWriteService(%s, %q) = %v, want %v", tt.name, tt.service, got, tt.want)
			}
		})
	}
}

func TestACLAuthorizerWithoutACLs(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Consul agent")
	}
	srv := consultest.Start(t)
	got, err := newTestAuthorizer(t, srv.HTTPAddr).CanWriteService(context.Background(), "any-token", "web")
	if err != nil || !got {
		t.Fatalf("with ACLs disabled any token must pass, as in Consul: got %v, %v", got, err)
	}
}

func newTestAuthorizer(t *testing.T, addr string) *ACLAuthorizer {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = addr
	a, err := NewACLAuthorizer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

package discovery

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
)

func TestACLAuthorizer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Consul agent")
	}
	srv, webWrite := aclConsul(t)
	webToken, _, err := srv.Client().ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: webWrite}}}, nil)
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

// TestACLAuthorizerCachesAndExtendsThroughOutages, with a real Consul
// enforcing ACLs: a decision is reused for ACLCacheTTL (a token deleted
// meanwhile still passes, as with Consul's own token cache), asked again
// after it, and kept while Consul is down (Consul's acl.down_policy
// extend-cache); a token never decided gets the error.
func TestACLAuthorizerCachesAndExtendsThroughOutages(t *testing.T) {
	srv, webWrite := aclConsul(t)
	client := srv.Client()
	tokens := map[string]string{}
	for _, name := range []string{"web", "short-lived", "never-asked"} {
		tok, _, err := client.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: webWrite}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = tok.SecretID
	}
	authz := newTestAuthorizer(t, srv.HTTPAddr)
	now := time.Now()
	authz.now = func() time.Time { return now }
	check := func(what, token, service string, want, wantErr bool) {
		t.Helper()
		got, err := authz.CanWriteService(context.Background(), token, service)
		if (err != nil) != wantErr || got != want {
			t.Fatalf("%s: CanWriteService = %v, %v; want %v, error %v", what, got, err, want, wantErr)
		}
	}
	check("web", tokens["web"], "web", true, false)
	check("another service", tokens["web"], "api", false, false)
	check("short-lived", tokens["short-lived"], "web", true, false)
	tok, _, err := client.ACL().TokenReadSelf(&api.QueryOptions{Token: tokens["short-lived"]})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.ACL().TokenDelete(tok.AccessorID, nil); err != nil {
		t.Fatal(err)
	}
	check("a deleted token within the TTL", tokens["short-lived"], "web", true, false)
	now = now.Add(ACLCacheTTL)
	check("a deleted token after the TTL", tokens["short-lived"], "web", false, false)

	srv.Stop()
	now = now.Add(time.Hour)
	check("web, Consul down", tokens["web"], "web", true, false)
	check("a denial, Consul down", tokens["web"], "api", false, false)
	check("never decided, Consul down", tokens["never-asked"], "web", false, true)
}

// aclConsul starts a Consul enforcing ACLs (default deny, management token
// "root", which the test's Consul client uses) with a policy allowing
// service:write on web, whose ID it returns.
func aclConsul(t *testing.T) (*consultest.Server, string) {
	t.Helper()
	t.Setenv("CONSUL_HTTP_TOKEN", "root")
	srv := consultest.Start(t, consultest.WithArgs(
		`-hcl=acl { enabled = true, default_policy = "deny", tokens { initial_management = "root" } }`))
	policy, _, err := srv.Client().ACL().PolicyCreate(&api.ACLPolicy{Name: "web-write", Rules: `service "web" { policy = "write" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv, policy.ID
}

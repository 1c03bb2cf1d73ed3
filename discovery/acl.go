package discovery

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/hashicorp/consul/api"
)

// ACLAuthorizer checks Consul ACL tokens with Consul's own authorizer, the
// /v1/internal/acl/authorize endpoint, so that every rule Consul applies
// (policies, roles, service identities, the default policy) applies here.
// With ACLs disabled Consul allows everything, and so does this.
//
// Consul's API client has no POST helper, which this endpoint needs, so the
// authorizer makes the request itself with the client's address, scheme and
// TLS settings.
type ACLAuthorizer struct {
	http    *http.Client
	baseURL string
}

// NewACLAuthorizer builds an authorizer for the Consul agent cfg points at.
func NewACLAuthorizer(cfg *api.Config) (*ACLAuthorizer, error) {
	hc, err := api.NewHttpClient(cfg.Transport, cfg.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("consul HTTP client: %w", err)
	}
	scheme, addr := cfg.Scheme, cfg.Address
	if i := strings.Index(addr, "://"); i >= 0 {
		scheme, addr = addr[:i], addr[i+3:]
	}
	if scheme == "" {
		scheme = "http"
	}
	return &ACLAuthorizer{http: hc, baseURL: scheme + "://" + addr}, nil
}

type aclAuthorizationRequest struct {
	Resource string
	Segment  string
	Access   string
}

type aclAuthorizationResponse struct {
	aclAuthorizationRequest
	Allow bool
}

// CanWriteService reports whether token may service:write service, the
// permission Consul requires for a service's leaf certificate. An unknown
// token is (false, nil).
func (a *ACLAuthorizer) CanWriteService(ctx context.Context, token, service string) (bool, error) {
	body, _ := json.Marshal([]aclAuthorizationRequest{{Resource: "service", Segment: service, Access: "write"}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.baseURL+"/v1/internal/acl/authorize", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("X-Consul-Token", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("authorize service:write %q: %w", service, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized && strings.Contains(string(msg), "ACL support disabled"):
		return true, nil // no ACLs: Consul allows everything
	case resp.StatusCode == http.StatusForbidden && strings.Contains(string(msg), "ACL not found"):
		return false, nil
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("authorize service:write %q: Consul answered %s: %s", service, resp.Status, strings.TrimSpace(string(msg)))
	}
	var out []aclAuthorizationResponse
	if err := json.Unmarshal(msg, &out); err != nil {
		return false, fmt.Errorf("authorize service:write %q: decode answer: %w", service, err)
	}
	if len(out) != 1 {
		return false, fmt.Errorf("authorize service:write %q: Consul answered %d decisions for 1 request", service, len(out))
	}
	return out[0].Allow, nil
}

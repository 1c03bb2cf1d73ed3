package discovery

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

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
//
// Decisions are cached as Consul's own agents cache them, with its default
// acl.down_policy, extend-cache: a decision younger than ACLCacheTTL is
// used without asking Consul again (every leaf renewal and tap stream
// asks), and while Consul cannot be asked — restarting, unreachable — the
// last decision for the token and service stands, however old, so that
// sidecars keep renewing their certificates through a Consul outage. A
// token and service never decided before get the error.
type ACLAuthorizer struct {
	http    *http.Client
	baseURL string
	now     func() time.Time

	mu    sync.Mutex
	cache map[aclKey]aclDecision
}

// ACLCacheTTL is how long a decision is used without asking Consul, as
// Consul's acl.token_ttl default.
const ACLCacheTTL = 30 * time.Second

// aclCacheMax bounds the decisions kept; past it the oldest go.
const aclCacheMax = 100_000

type aclKey struct {
	token   [sha256.Size]byte // the token's hash: the cache holds no token
	service string
}

type aclDecision struct {
	allow bool
	at    time.Time
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
	return &ACLAuthorizer{http: hc, baseURL: scheme + "://" + addr, now: time.Now, cache: map[aclKey]aclDecision{}}, nil
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
// token is (false, nil). See ACLAuthorizer for the cache.
func (a *ACLAuthorizer) CanWriteService(ctx context.Context, token, service string) (bool, error) {
	key := aclKey{token: sha256.Sum256([]byte(token)), service: service}
	now := a.now()
	a.mu.Lock()
	cached, ok := a.cache[key]
	a.mu.Unlock()
	if ok && now.Sub(cached.at) < ACLCacheTTL {
		return cached.allow, nil
	}
	allow, err := a.ask(ctx, token, service)
	if err != nil {
		if ok && ctx.Err() == nil {
			return cached.allow, nil // extend-cache: Consul cannot be asked
		}
		return false, err
	}
	a.remember(key, aclDecision{allow: allow, at: now})
	return allow, nil
}

// remember caches a decision, dropping the oldest past aclCacheMax.
func (a *ACLAuthorizer) remember(key aclKey, d aclDecision) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.cache[key]; !ok && len(a.cache) >= aclCacheMax {
		var oldest aclKey
		first := true
		for k, v := range a.cache {
			if first || v.at.Before(a.cache[oldest].at) {
				oldest, first = k, false
			}
		}
		delete(a.cache, oldest)
	}
	a.cache[key] = d
}

// ask asks Consul's authorizer.
func (a *ACLAuthorizer) ask(ctx context.Context, token, service string) (bool, error) {
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

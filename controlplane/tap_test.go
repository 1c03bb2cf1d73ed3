package controlplane

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	tapv1 "github.com/weft-mesh/weft/api/tap/v1"
	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/proxy/tap"
)

// fakeAuthz allows tokens to write the services listed for them.
type fakeAuthz map[string][]string

func (a fakeAuthz) CanWriteService(_ context.Context, token, service string) (bool, error) {
	for _, s := range a[token] {
		if s == service {
			return true, nil
		}
	}
	return false, nil
}

// tapMesh is a tap hub served over gRPC on loopback, with web's and api's
// sidecars (their proxy/tap hubs) connected to it.
type tapMesh struct {
	hub          *tapHub
	web, api, db *tap.Hub
}

func newTapMesh(t *testing.T, authz Authorizer) *tapMesh {
	t.Helper()
	snap := &catalog.Snapshot{Proxies: map[string]*catalog.Proxy{
		"web-1-sidecar-proxy": {ID: "web-1-sidecar-proxy", DestinationName: "web"},
		"api-1-sidecar-proxy": {ID: "api-1-sidecar-proxy", DestinationName: "api"},
		"db-1-sidecar-proxy":  {ID: "db-1-sidecar-proxy", DestinationName: "db"},
	}}
	h := newTapHub(authz, func() *catalog.Snapshot { return snap }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	tapv1.RegisterTapServiceServer(g, h)
	go g.Serve(l)
	t.Cleanup(g.Stop)
	m := &tapMesh{hub: h, web: tap.NewHub(), api: tap.NewHub(), db: tap.NewHub()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 3)
	for id, sidecar := range map[string]*tap.Hub{"web-1-sidecar-proxy": m.web, "api-1-sidecar-proxy": m.api, "db-1-sidecar-proxy": m.db} {
		go func() {
			sidecar.Run(ctx, tap.ClientOptions{Addrs: []string{l.Addr().String()}, ProxyID: id, Token: func() (string, error) { return "sidecar", nil }})
			done <- struct{}{}
		}()
	}
	t.Cleanup(func() {
		cancel()
		for range 3 {
			<-done
		}
	})
	poll.UntilTrue(t, 10*time.Second, "three sidecars' tap streams", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.sidecars) == 3
	})
	return m
}

var allowAll = fakeAuthz{"sidecar": {"web", "api", "db"}, "ops": {"web", "api", "db"}, "web-team": {"web"}}

// TestTapStartsOnTheSidecarsItConcerns: --to api runs on every sidecar's
// outbound requests to api, --from web on web's alone; events flow to
// the tap, tagged with their sidecar, and stopping the tap idles them.
func TestTapStartsOnTheSidecarsItConcerns(t *testing.T) {
	m := newTapMesh(t, allowAll)
	tests := []struct {
		name   string
		req    TapRequest
		active map[string]bool
	}{
		{"to api", TapRequest{To: "api"}, map[string]bool{"web": true, "api": true, "db": true}},
		{"from web", TapRequest{From: "web"}, map[string]bool{"web": true}},
		{"everything", TapRequest{}, map[string]bool{"web": true, "api": true, "db": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, stop, err := m.hub.Start(context.Background(), "ops", tt.req)
			if err != nil {
				t.Fatal(err)
			}
			hubs := map[string]*tap.Hub{"web": m.web, "api": m.api, "db": m.db}
			poll.UntilTrue(t, 10*time.Second, "the tap running on its sidecars", func() bool {
				for name, h := range hubs {
					if h.Active() != tt.active[name] {
						return false
					}
				}
				return true
			})
			out := &tap.Event{Start: time.Now(), Direction: "outbound", Source: "web", Destination: "api", Method: "GET", Path: "/items", Status: 200}
			in := &tap.Event{Start: time.Now(), Direction: "inbound", Source: "web", Destination: "api", Method: "GET", Path: "/items", Status: 200}
			m.web.Publish(out)
			m.api.Publish(in)
			select {
			case e := <-s.events:
				want := "outbound"
				if tt.req.To == "" && tt.req.From == "" {
					want = "inbound"
				}
				if e.GetDirection() != want || e.GetPath() != "/items" || e.GetProxyId() == "" {
					t.Errorf("event %v, want the %s one, tagged with its sidecar", e, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no event reached the tap")
			}
			select {
			case e := <-s.events:
				t.Errorf("a second event %v: each request is seen once", e)
			case <-time.After(200 * time.Millisecond):
			}
			stop()
			poll.UntilTrue(t, 10*time.Second, "every sidecar idle after the tap stopped", func() bool {
				return !m.web.Active() && !m.api.Active() && !m.db.Active()
			})
		})
	}
}

func TestTapAuthorization(t *testing.T) {
	m := newTapMesh(t, allowAll)
	for _, tt := range []struct {
		name  string
		token string
		req   TapRequest
		ok    bool
	}{
		{"allowed service", "web-team", TapRequest{From: "web"}, true},
		{"another service", "web-team", TapRequest{To: "api"}, false},
		{"every service needs them all", "web-team", TapRequest{}, false},
		{"every service", "ops", TapRequest{}, true},
		{"no token", "", TapRequest{To: "web"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, stop, err := m.hub.Start(context.Background(), tt.token, tt.req)
			if tt.ok != (err == nil) || err != nil && !errors.Is(err, ErrTapForbidden) {
				t.Fatalf("Start: %v, want allowed %v", err, tt.ok)
			}
			if stop != nil {
				stop()
			}
		})
	}
	// A stream for a proxy the token may not act for is refused.
	h := newTapHub(fakeAuthz{}, m.hub.catalog, m.hub.log)
	if _, err := h.identify(context.Background(), "web-1-sidecar-proxy"); err == nil || !strings.Contains(err.Error(), `may not service:write "web"`) {
		t.Errorf("identify without a token: %v", err)
	}
	if _, err := h.identify(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), `proxy "nope" is not registered`) {
		t.Errorf("identify an unknown proxy: %v", err)
	}
}

// TestTapHTTPStream: /api/tap streams newline-delimited JSON, refuses bad
// filters with 400 and forbidden taps with 403.
func TestTapHTTPStream(t *testing.T) {
	m := newTapMesh(t, allowAll)
	srv := httptest.NewServer(http.HandlerFunc((&Server{taps: m.hub}).handleTap))
	t.Cleanup(srv.Close)
	for query, code := range map[string]int{"status=teapot": 400, "path=items": 400, "max_rps=0": 400, "to=api": 403} {
		resp, err := http.Get(srv.URL + "/?" + query)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("%s: %d %s, want %d", query, resp.StatusCode, body, code)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/?to=api&status=5xx", nil)
	req.Header.Set("X-Consul-Token", "ops")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	if !lines.Scan() || !strings.Contains(lines.Text(), `"sidecars_tapped":3`) {
		t.Fatalf("first line %q, want the tap on 3 sidecars", lines.Text())
	}
	poll.UntilTrue(t, 10*time.Second, "web's sidecar tapping", m.web.Active)
	m.web.Publish(&tap.Event{Start: time.Now(), Direction: "outbound", Source: "web", Destination: "api", Method: "GET", Path: "/ok", Status: 200})
	m.web.Publish(&tap.Event{Start: time.Now(), Direction: "outbound", Source: "web", Destination: "api", Method: "POST", Path: "/x", Status: 503, WeftError: "no_healthy_upstream"})
	if !lines.Scan() {
		t.Fatalf("stream ended: %v", lines.Err())
	}
	var e TapEvent
	if err := json.Unmarshal(lines.Bytes(), &e); err != nil || e.Path != "/x" || e.Status != 503 || e.WeftError != "no_healthy_upstream" || e.Proxy != "web-1-sidecar-proxy" {
		t.Errorf("event %s (%v), want only the 503, from web's sidecar", lines.Text(), err)
	}
	cancel()
	poll.UntilTrue(t, 10*time.Second, "the tap stopped when its client went away", func() bool { return !m.web.Active() })
}

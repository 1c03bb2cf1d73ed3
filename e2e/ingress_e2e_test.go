package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

// TestIngressGateway: outside traffic enters the mesh through an ingress
// gateway run by weft-proxy (registered with `weft register --gateway
// ingress`): Host picks the service, and the service-router of web sends
// /api to api, so Host- and path-based routes reach two services, over
// mTLS from the gateway as its own identity, whose intentions apply.
func TestIngressGateway(t *testing.T) {
	m := newMesh(t)
	m.startHTTPInstances(t, "api", "web")
	m.setEntry(t, &api.ServiceRouterConfigEntry{Kind: api.ServiceRouter, Name: "web", Routes: []api.ServiceRoute{{
		Match:       &api.ServiceRouteMatch{HTTP: &api.ServiceRouteHTTPMatch{PathPrefix: "/api"}},
		Destination: &api.ServiceRouteDestination{Service: "api"},
	}}})
	port := freePort(t)
	m.setEntry(t, &api.IngressGatewayConfigEntry{Kind: api.IngressGateway, Name: "ingress", Listeners: []api.IngressListener{{
		Port: port, Protocol: "http", Services: []api.IngressService{
			{Name: "api", Hosts: []string{"api.example.com"}},
			{Name: "web", Hosts: []string{"web.example.com"}},
		},
	}}})
	out, err := exec.Command(filepath.Join(binDir, "weft"), "register", "--gateway", "ingress", "--name", "ingress", "--id", "ingress-1",
		"--address", "127.0.0.1", "--consul-addr", m.consul.HTTPAddr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "registered ingress gateway ingress-1") {
		t.Fatalf("weft register --gateway ingress: %v\n%s", err, out)
	}
	m.startProxy(t, "ingress-1")
	consultest.WaitForPassing(t, m.consul.Client(), "api", 1)
	consultest.WaitForPassing(t, m.consul.Client(), "web", 1)

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(host, path string) (int, string, error) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+path, nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, err = fmt.Fprint(&b, mustRead(resp))
		return resp.StatusCode, strings.TrimSpace(b.String()), err
	}
	tests := []struct{ host, path, want string }{
		{"api.example.com", "/", "api-1"},
		{"web.example.com", "/", "web-1"},
		{"web.example.com", "/api/items", "api-1"}, // web's service-router
	}
	for _, tt := range tests {
		poll.UntilStreak(t, 30*time.Second, fmt.Sprintf("Host %s, path %s reaches %s five times in a row", tt.host, tt.path, tt.want), 5, func() error {
			code, body, err := get(tt.host, tt.path)
			if err != nil || code != http.StatusOK || body != tt.want {
				return fmt.Errorf("GET: %d %q %v", code, body, err)
			}
			return nil
		})
	}
	if code, _, err := get("unknown.example.com", "/"); err != nil || code != http.StatusNotFound {
		t.Errorf("an unknown Host: %d, %v; want 404", code, err)
	}
	status, err := exec.Command(filepath.Join(binDir, "weft"), "proxy-status", "--admin-addr", m.cpAdmin).CombinedOutput()
	if err != nil || !strings.Contains(string(status), "ingress-1") || !strings.Contains(string(status), "ingress-gateway") {
		t.Errorf("weft proxy-status lists no ingress gateway: %v\n%s", err, status)
	}
	status, err = exec.Command(filepath.Join(binDir, "weft"), "proxy-status", "--admin-addr", m.cpAdmin, "ingress-1").CombinedOutput()
	if err != nil || !strings.Contains(string(status), fmt.Sprintf(":%d http Host api.example.com → api", port)) {
		t.Errorf("weft proxy-status ingress-1: %v\n%s", err, status)
	}

	// The gateway calls the mesh as "ingress": an intention denying it is
	// enforced by api's sidecar.
	m.setEntry(t, &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: "api", Sources: []*api.SourceIntention{
		{Name: "ingress", Action: api.IntentionActionDeny},
	}})
	poll.UntilStreak(t, 30*time.Second, "the intention denies the gateway five times in a row", 5, func() error {
		code, _, err := get("api.example.com", "/")
		if err != nil || code != http.StatusForbidden {
			return fmt.Errorf("GET: %d %v", code, err)
		}
		return nil
	})
}

func mustRead(resp *http.Response) string {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// TestGRPCThroughIngress runs every gRPC call shape from outside the mesh
// (plaintext HTTP/2) through an ingress gateway's grpc listener to api's
// sidecar: statuses, trailers and deadlines pass through.
func TestGRPCThroughIngress(t *testing.T) {
	m, _ := grpcMesh(t)
	port := freePort(t)
	m.setEntry(t, &api.IngressGatewayConfigEntry{Kind: api.IngressGateway, Name: "ingress", Listeners: []api.IngressListener{{
		Port: port, Protocol: "grpc", Services: []api.IngressService{{Name: "api", Hosts: []string{"*"}}},
	}}})
	out, err := exec.Command(filepath.Join(binDir, "weft"), "register", "--gateway", "ingress", "--name", "ingress", "--id", "ingress-1",
		"--address", "127.0.0.1", "--consul-addr", m.consul.HTTPAddr).CombinedOutput()
	if err != nil {
		t.Fatalf("weft register --gateway ingress: %v\n%s", err, out)
	}
	m.startProxy(t, "ingress-1")
	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := testpb.NewTestServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	poll.Until(t, 30*time.Second, "a first unary call through the ingress", func() error {
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
		return err
	})
	runGRPCShapes(t, ctx, client)
}

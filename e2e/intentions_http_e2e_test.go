package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc/codes"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/internal/poll"
)

// deniedAnswer is what web's app sees for one request to api.
type deniedAnswer struct {
	code   int
	reason string // x-weft-error
	body   string // the local reply's "error" field
}

func getThrough(client *http.Client, url string) (deniedAnswer, error) {
	resp, err := client.Get(url)
	if err != nil {
		return deniedAnswer{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body struct{ Error string }
	json.Unmarshal(raw, &body)
	return deniedAnswer{code: resp.StatusCode, reason: resp.Header.Get("X-Weft-Error"), body: body.Error}, nil
}

// TestHTTPIntentionDenyIs403 checks that a plain (L4-style) deny intention
// on a service of protocol http is enforced per request, as Consul does:
// web's app gets 403 with x-weft-error rbac_denied over HTTP/1.1 and
// HTTP/2, never a reset connection reported as upstream_reset, and
// nothing reaches api. Deleting the intention restores 200.
func TestHTTPIntentionDenyIs403(t *testing.T) {
	m := startMesh(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/", m.apiPort)
	clients := map[string]*http.Client{
		"HTTP/1.1": {Transport: &http.Transport{}},
		"HTTP/2":   {Transport: &http.Transport{Protocols: h2cOnly()}},
	}
	for _, c := range clients {
		c.Timeout = 5 * time.Second
		t.Cleanup(c.CloseIdleConnections)
	}
	poll.Until(t, 30*time.Second, "api served through the mesh", func() error {
		for proto, c := range clients {
			got, err := getThrough(c, url)
			if err != nil || got.code != http.StatusOK {
				return fmt.Errorf("%s: %+v, %v", proto, got, err)
			}
		}
		return nil
	})

	setIntentions(t, m, "api", &api.SourceIntention{Name: "web", Action: api.IntentionActionDeny})
	// Each of api's two sidecars applies the deny on its own: wait until
	// ten calls in a row, from both clients (balanced per request over
	// both instances), are denied, not until one is.
	poll.UntilStreak(t, 10*time.Second, "web denied by both api sidecars, ten calls in a row", 5, func() error {
		for proto, c := range clients {
			if got, err := getThrough(c, url); err != nil || got.code != http.StatusForbidden {
				return fmt.Errorf("%s: %+v, %v", proto, got, err)
			}
		}
		return nil
	})
	before := m.hits["api-1"].Load() + m.hits["api-2"].Load()
	want := deniedAnswer{code: http.StatusForbidden, reason: "rbac_denied", body: "rbac_denied"}
	for proto, c := range clients {
		for range 5 {
			got, err := getThrough(c, url)
			if err != nil {
				t.Fatalf("%s: %v (a denied request must be answered, not reset)", proto, err)
			}
			if got != want {
				t.Fatalf("%s: got %+v, want %+v", proto, got, want)
			}
		}
	}
	if after := m.hits["api-1"].Load() + m.hits["api-2"].Load(); after != before {
		t.Errorf("%d denied requests reached api", after-before)
	}

	if _, err := m.consul.Client().ConfigEntries().Delete(api.ServiceIntentions, "api", nil); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "intention deleted: web served again", func() error {
		for proto, c := range clients {
			got, err := getThrough(c, url)
			if err != nil || got.code != http.StatusOK {
				return fmt.Errorf("%s: %+v, %v", proto, got, err)
			}
		}
		return nil
	})
}

// TestGRPCIntentionDenyIsPermissionDenied: the same deny on a service of
// protocol grpc fails calls with PERMISSION_DENIED.
func TestGRPCIntentionDenyIsPermissionDenied(t *testing.T) {
	m, client := grpcMesh(t)
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
		return err
	}
	poll.Until(t, 30*time.Second, "first unary call", call)

	setIntentions(t, m, "api", &api.SourceIntention{Name: "web", Action: api.IntentionActionDeny})
	poll.Until(t, 10*time.Second, "call denied with PERMISSION_DENIED", func() error {
		if code := status.Code(call()); code != codes.PermissionDenied {
			return fmt.Errorf("status %v, want PermissionDenied", code)
		}
		return nil
	})
	if _, err := m.consul.Client().ConfigEntries().Delete(api.ServiceIntentions, "api", nil); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "intention deleted: calls succeed again", call)
}

// h2cOnly is a client's protocol set for cleartext HTTP/2 with prior
// knowledge.
func h2cOnly() *http.Protocols {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return p
}

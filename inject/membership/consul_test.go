package membership

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

func startConsul(t *testing.T) *api.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("needs Consul; skipped with -short")
	}
	return consultest.Start(t).Client()
}

func TestRegisterAndDeregister(t *testing.T) {
	t.Parallel()
	client := startConsul(t)
	ctx := context.Background()
	reg := Registration{Name: "web", ID: "web-1", Address: "127.0.0.1", Port: 8080, SidecarPort: 21000,
		Upstreams: []Upstream{{Service: "api", Port: 9191}}, Checks: []Check{{TCP: "127.0.0.1:8080"}}}
	if err := Register(ctx, client.Agent(), reg); err != nil {
		t.Fatal(err)
	}
	sidecar, _, err := client.Agent().Service("web-1-sidecar-proxy", nil)
	if err != nil {
		t.Fatal(err)
	}
	if sidecar.Kind != api.ServiceKindConnectProxy || sidecar.Proxy.DestinationServiceID != "web-1" ||
		sidecar.Port != 21000 || len(sidecar.Proxy.Upstreams) != 1 || sidecar.Proxy.Upstreams[0].LocalBindPort != 9191 {
		t.Errorf("sidecar registration %+v", sidecar)
	}
	if err := Deregister(ctx, client.Agent(), "web-1"); err != nil {
		t.Fatal(err)
	}
	assertGone(t, client, "web-1")
	if err := Deregister(ctx, client.Agent(), "web-1"); !IsUnknown(err) {
		t.Errorf("deregistering again: %v, want the agent's 404", err)
	}
}

// TestKeeper runs the membership sidecar's loop against a real agent: it
// registers with passing checks, tracks the app, registers again when the
// agent loses the registration, and deregisters when stopped.
func TestKeeper(t *testing.T) {
	t.Parallel()
	client := startConsul(t)
	app, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := runKeeper(t, client.Agent(), app.Addr().String())
	waitChecks(t, client, "web-1", map[string]string{"web-1:alive": api.HealthPassing, "web-1:app": api.HealthPassing})

	app.Close()
	waitChecks(t, client, "web-1", map[string]string{"web-1:alive": api.HealthPassing, "web-1:app": api.HealthCritical})

	if err := client.Agent().ServiceDeregister("web-1"); err != nil {
		t.Fatal(err)
	}
	waitChecks(t, client, "web-1", map[string]string{"web-1:alive": api.HealthPassing, "web-1:app": api.HealthCritical})

	stop()
	assertGone(t, client, "web-1")
}

// TestKeeperCrashIsReaped kills the keeper without letting it deregister,
// as a crashed pod would, and waits for Consul to remove the instance: its
// alive check expires, and after DeregisterAfter (Consul's minimum, 1m,
// reaped every 30 s) the agent deregisters it and its sidecar.
func TestKeeperCrashIsReaped(t *testing.T) {
	t.Parallel()
	client := startConsul(t)
	stop := runKeeper(t, crashingAgent{client.Agent()}, "")
	waitChecks(t, client, "web-1", map[string]string{"web-1:alive": api.HealthPassing})
	stop()
	if _, _, err := client.Agent().Service("web-1", nil); err != nil {
		t.Fatalf("the crashed keeper's registration should still be there at first: %v", err)
	}
	poll.Until(t, 3*time.Minute, "crashed instance reaped", func() error {
		return gone(client, "web-1")
	})
}

// crashingAgent never deregisters: its keeper "dies" first.
type crashingAgent struct{ Agent }

func (crashingAgent) ServiceDeregisterOpts(string, *api.QueryOptions) error {
	return errors.New("crashed")
}

func runKeeper(t *testing.T, agent Agent, appAddr string) (stop func()) {
	k := &Keeper{
		Agent:        agent,
		Registration: Registration{Name: "web", ID: "web-1", Address: "127.0.0.1", Port: 8080, SidecarPort: 21000},
		AppAddr:      appAddr, Interval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil)),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Keeper.Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

func waitChecks(t *testing.T, client *api.Client, serviceID string, want map[string]string) {
	t.Helper()
	poll.Until(t, 20*time.Second, fmt.Sprintf("checks of %s %v", serviceID, want), func() error {
		checks, err := client.Agent().Checks()
		if err != nil {
			return err
		}
		for id, status := range want {
			if c, ok := checks[id]; !ok || c.Status != status {
				return fmt.Errorf("check %s: %+v", id, c)
			}
		}
		return nil
	})
}

func gone(client *api.Client, serviceID string) error {
	services, err := client.Agent().Services()
	if err != nil {
		return err
	}
	for _, id := range []string{serviceID, SidecarID(serviceID)} {
		if _, ok := services[id]; ok {
			return fmt.Errorf("%s still registered", id)
		}
	}
	return nil
}

func assertGone(t *testing.T, client *api.Client, serviceID string) {
	t.Helper()
	if err := gone(client, serviceID); err != nil {
		t.Error(err)
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

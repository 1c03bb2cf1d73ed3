package e2e

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/weft-mesh/weft/internal/consultest"
)

// namedService answers UnaryCall with its instance name.
type namedService struct {
	testpb.UnimplementedTestServiceServer
	name string
}

func (s namedService) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: []byte(s.name)}}, nil
}

// TestProxylessGRPC points grpc-go's own xDS client — in a separate process
// configured only by GRPC_XDS_BOOTSTRAP from `weft grpc-bootstrap`, with a
// certificate from `weft cert` — at the control plane. It dials
// xds:///api, is balanced by Consul's weights (3:1) over mTLS to api's
// sidecars, and sees an instance removal within 2 s.
func TestProxylessGRPC(t *testing.T) {
	m := newMesh(t)
	m.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "grpc"})
	for id, weight := range map[string]int{"api-1": 3, "api-2": 1} {
		port := startServe(t, func(l net.Listener) {
			s := grpc.NewServer()
			testpb.RegisterTestServiceServer(s, namedService{name: id})
			s.Serve(l)
		})
		m.publicPort[id] = freePort(t)
		reg := &api.AgentServiceRegistration{ID: id, Name: "api", Port: port, Address: "127.0.0.1",
			Connect: &api.AgentServiceConnect{SidecarService: &api.AgentServiceRegistration{
				Port: m.publicPort[id], Weights: &api.AgentWeights{Passing: weight, Warning: 1}}}}
		if err := m.consul.Client().Agent().ServiceRegister(reg); err != nil {
			t.Fatal(err)
		}
		m.startProxy(t, id+"-sidecar-proxy")
	}
	consultest.WaitForPassing(t, m.consul.Client(), "api", 2)

	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	weft := filepath.Join(binDir, "weft")
	if out, err := exec.Command(weft, "cert", "--service", "web", "--xds-addr", m.xdsAddr, "--out", certDir).CombinedOutput(); err != nil {
		t.Fatalf("weft cert: %v\n%s", err, out)
	}
	bootstrap, err := exec.Command(weft, "grpc-bootstrap", "--service", "web", "--node-id", "proxyless/web/test",
		"--xds-addr", m.xdsAddr, "--cert-dir", certDir).Output()
	if err != nil {
		t.Fatalf("weft grpc-bootstrap: %v", err)
	}
	bootstrapFile := filepath.Join(dir, "bootstrap.json")
	if err := os.WriteFile(bootstrapFile, bootstrap, 0o644); err != nil {
		t.Fatal(err)
	}

	client := exec.Command(os.Args[0], "-test.run=^$")
	client.Env = append(os.Environ(), "GRPC_XDS_BOOTSTRAP="+bootstrapFile, proxylessClientEnv+"=api", "WEFT_PROXYLESS_DURATION=25s")
	client.Stderr = os.Stderr
	stdout, err := client.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Process.Kill(); client.Wait() })
	lines := bufio.NewScanner(stdout)

	// Phase 1: once calls succeed, 2,000 calls follow the 3:1 weights.
	counts := map[string]int{}
	for total := 0; total < 2000 && lines.Scan(); {
		_, who := parseCall(t, lines.Text())
		if strings.HasPrefix(who, "error") {
			if total > 0 {
				t.Fatalf("call failed after the client was serving: %s", who)
			}
			continue
		}
		counts[who]++
		total++
	}
	share := float64(counts["api-1"]) / 2000
	if counts["api-1"]+counts["api-2"] != 2000 || share < 0.675 || share > 0.825 {
		t.Fatalf("2,000 proxyless calls landed %v (api-1 share %.3f); want 0.75 ± 10%%", counts, share)
	}

	// Phase 2: deregister api-2; it must stop receiving calls within 2 s.
	removed := time.Now()
	if err := m.consul.Client().Agent().ServiceDeregister("api-2"); err != nil {
		t.Fatal(err)
	}
	var lastAPI2 time.Time
	after := 0
	for lines.Scan() {
		at, who := parseCall(t, lines.Text())
		if strings.HasPrefix(who, "error") {
			t.Fatalf("call failed while api-2 was removed: %s", who)
		}
		if who == "api-2" {
			lastAPI2 = at
		}
		if at.Sub(removed) > 3*time.Second {
			after++
			if after >= 200 {
				break
			}
		}
	}
	if took := lastAPI2.Sub(removed); took > 2*time.Second {
		t.Fatalf("api-2 still got calls %v after its removal; want ≤ 2s", took)
	}
	if after < 200 {
		t.Fatalf("only %d calls after the removal settled", after)
	}
}

func parseCall(t *testing.T, line string) (time.Time, string) {
	t.Helper()
	ns, who, ok := strings.Cut(line, " ")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil {
		t.Fatalf("client printed %q", line)
	}
	return time.Unix(0, n), who
}

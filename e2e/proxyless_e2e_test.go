package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/weft-mesh/weft/controlplane"
	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

// namedService answers UnaryCall with its instance name.
type namedService struct {
	testpb.UnimplementedTestServiceServer
	name string
}

func (s namedService) UnaryCall(context.Context, *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: []byte(s.name)}}, nil
}

const proxylessNodeID = "proxyless/web/test"

// TestProxylessGRPC points grpc-go's own xDS client — in a separate process
// configured only by GRPC_XDS_BOOTSTRAP from `weft grpc-bootstrap`, with a
// certificate from `weft cert` — at the control plane of a mesh whose
// services all have sidecars: grpcsvc (gRPC, two instances weighted 3:1),
// h2svc (HTTP/2, serving gRPC), api (HTTP), echo (TCP), and later latesvc.
// The client process dials grpcsvc, then h2svc, then latesvc, over SotW
// (what grpc-go speaks), each a named subscription:
//   - grpcsvc's calls follow Consul's weights, over mTLS (a plaintext call
//     to its sidecar is refused), and a removed instance stops getting
//     calls within 2 s;
//   - h2svc is reached from the same process;
//   - latesvc does not exist when dialed, and grpc-go reports it as not
//     found (over SotW only after its 15 s timeout: the protocol has no
//     "does not exist"); registered, it is sent to the client within 2 s,
//     and the client calls it within 2 s of it passing its checks, with no
//     restart.
//
// A raw delta ADS client subscribes by name to these services and one
// that does not exist, is told in its first response which do not exist,
// and receives latesvc within 2 s of its registration. weft proxy-status
// shows what the grpc-go client subscribed to and was sent.
func TestProxylessGRPC(t *testing.T) {
	m := newMesh(t)
	for svc, protocol := range map[string]string{"grpcsvc": "grpc", "h2svc": "http2", "api": "http", "latesvc": "grpc"} {
		m.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: svc, Protocol: protocol})
	}
	m.registerGRPC(t, "grpcsvc-1", "grpcsvc", 3, api.HealthPassing)
	m.registerGRPC(t, "grpcsvc-2", "grpcsvc", 1, api.HealthPassing)
	m.registerGRPC(t, "h2svc-1", "h2svc", 1, api.HealthPassing)
	for _, id := range []string{"api-1", "echo-1"} {
		m.hits[id] = &atomic.Int64{}
	}
	m.register(t, "api-1", "api", startNameServer(t, "api-1", m.hits["api-1"]), nil)
	m.register(t, "echo-1", "echo", startEchoServer(t, m.hits["echo-1"]), nil)
	for _, id := range []string{"grpcsvc-1", "grpcsvc-2", "h2svc-1", "api-1", "echo-1"} {
		m.startProxy(t, id+"-sidecar-proxy")
	}
	for svc, n := range map[string]int{"grpcsvc": 2, "h2svc": 1, "api": 1, "echo": 1} {
		consultest.WaitForPassing(t, m.consul.Client(), svc, n)
	}

	// Delta: names that do not exist are answered in the first response.
	probe := startDeltaProbe(t, m.xdsAddr, "proxyless/web/delta-probe", "api", "echo", "grpcsvc", "h2svc", "latesvc", "nosuch")
	first := probe.waitAnswer(t, 0)
	if want := (deltaAnswer{resources: []string{"api", "echo", "grpcsvc", "h2svc"}, removed: []string{"latesvc", "nosuch"}}); !first.same(want) {
		t.Fatalf("delta client's first answer: %+v, want %+v", first, want)
	}
	if took := first.at.Sub(probe.subscribed); took > 2*time.Second {
		t.Errorf("delta client answered %v after subscribing; want ≤ 2s", took)
	} else {
		t.Logf("delta client told nosuch and latesvc do not exist %v after subscribing", took.Round(time.Millisecond))
	}

	client := startProxylessClient(t, m)
	calls := client.calls

	// grpcsvc: once calls succeed, 2,000 calls follow the 3:1 weights.
	client.dial(t, "grpcsvc")
	poll.Until(t, 60*time.Second, "2,000 calls to grpcsvc", func() error {
		if n := len(successes(calls.of("grpcsvc"))); n < 2000 {
			return fmt.Errorf("%d successful calls", n)
		}
		return nil
	})
	counts := map[string]int{}
	for _, c := range successes(calls.of("grpcsvc"))[:2000] {
		counts[c.who]++
	}
	share := float64(counts["grpcsvc-1"]) / 2000
	if counts["grpcsvc-1"]+counts["grpcsvc-2"] != 2000 || share < 0.675 || share > 0.825 {
		t.Fatalf("2,000 proxyless calls landed %v (grpcsvc-1 share %.3f); want 0.75 ± 10%%", counts, share)
	}
	checkPlaintextRefused(t, m.publicPort["grpcsvc-1"])

	// Deregister grpcsvc-2; it must stop receiving calls within 2 s.
	removed := time.Now()
	if err := m.consul.Client().Agent().ServiceDeregister("grpcsvc-2"); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "200 calls to grpcsvc after the removal settled", func() error {
		if n := countAfter(calls.of("grpcsvc"), removed.Add(3*time.Second)); n < 200 {
			return fmt.Errorf("%d calls", n)
		}
		return nil
	})
	if last := lastCallTo(calls.of("grpcsvc"), "grpcsvc-2"); last.Sub(removed) > 2*time.Second {
		t.Fatalf("grpcsvc-2 still got calls %v after its removal; want ≤ 2s", last.Sub(removed))
	} else {
		t.Logf("grpcsvc-2's last call %v after its removal; weights %v", last.Sub(removed).Round(time.Millisecond), counts)
	}

	// h2svc: a second service from the same process.
	client.dial(t, "h2svc")
	poll.Until(t, 30*time.Second, "a call to h2svc", func() error {
		if len(successes(calls.of("h2svc"))) == 0 {
			return fmt.Errorf("calls so far: %s", tail(calls.of("h2svc")))
		}
		return nil
	})

	// latesvc: dialed before it exists, registered, then passing.
	dialed := time.Now()
	client.dial(t, "latesvc")
	poll.Until(t, 30*time.Second, "grpc-go reports latesvc does not exist", func() error {
		for _, c := range calls.of("latesvc") {
			if strings.Contains(c.err, `resource "latesvc" of type "ListenerResource"`) {
				t.Logf("grpc-go reported latesvc missing %v after dialing it: %s", c.at.Sub(dialed).Round(time.Millisecond), c.err)
				return nil
			}
		}
		return fmt.Errorf("calls so far: %s", tail(calls.of("latesvc")))
	})
	registered := time.Now()
	m.registerGRPC(t, "latesvc-1", "latesvc", 1, api.HealthCritical)
	sentAt := waitSentToClient(t, m, "latesvc")
	if took := sentAt.Sub(registered); took > 2*time.Second {
		t.Errorf("latesvc sent to the grpc-go client %v after its registration; want ≤ 2s", took)
	}
	deltaAt := probe.waitHolds(t, "latesvc")
	if deltaAt.Sub(registered) > 2*time.Second {
		t.Errorf("latesvc sent to the delta client %v after its registration; want ≤ 2s", deltaAt.Sub(registered))
	}
	t.Logf("latesvc sent %v (grpc-go client) and %v (delta client) after its registration",
		sentAt.Sub(registered).Round(time.Millisecond), deltaAt.Sub(registered).Round(time.Millisecond))
	m.startProxy(t, "latesvc-1-sidecar-proxy")
	passing := time.Now()
	m.setHealth(t, "latesvc-1", true)
	poll.Until(t, 30*time.Second, "a call to latesvc", func() error {
		if len(successes(calls.of("latesvc"))) == 0 {
			return fmt.Errorf("calls so far: %s", tail(calls.of("latesvc")))
		}
		return nil
	})
	if took := successes(calls.of("latesvc"))[0].at.Sub(passing); took > 2*time.Second {
		t.Errorf("first call to latesvc %v after it passed its checks; want ≤ 2s", took)
	} else {
		t.Logf("first call to latesvc %v after it passed its checks", took.Round(time.Millisecond))
	}
	if firstOK := successes(calls.of("grpcsvc"))[0].at; slices.ContainsFunc(calls.of("grpcsvc"), func(c proxylessCall) bool {
		return c.err != "" && c.at.After(firstOK)
	}) {
		t.Errorf("a call to grpcsvc failed after the client was serving: %s", tail(calls.of("grpcsvc")))
	}
	if bad := calls.malformed(); len(bad) > 0 {
		t.Errorf("client printed %q", bad)
	}

	out, err := exec.Command(filepath.Join(binDir, "weft"), "proxy-status", "--admin-addr", m.cpAdmin, proxylessNodeID).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "subscribed: grpcsvc, h2svc, latesvc\n") ||
		!strings.Contains(string(out), "): grpcsvc, h2svc, latesvc\n") {
		t.Errorf("weft proxy-status %s does not show the three subscriptions (%v):\n%s", proxylessNodeID, err, out)
	}
	t.Logf("weft proxy-status %s:\n%s", proxylessNodeID, out)
}

// registerGRPC serves namedService as instance id of svc and registers it
// with a TTL check in status and a sidecar of the given weight, whose only
// check follows the instance's (no TCP check to wait for).
func (m *mesh) registerGRPC(t *testing.T, id, svc string, weight int, status string) {
	t.Helper()
	port := startServe(t, func(l net.Listener) {
		s := grpc.NewServer()
		testpb.RegisterTestServiceServer(s, namedService{name: id})
		s.Serve(l)
	})
	m.publicPort[id] = freePort(t)
	reg := &api.AgentServiceRegistration{ID: id, Name: svc, Port: port, Address: "127.0.0.1",
		Check: &api.AgentServiceCheck{CheckID: ttlCheck(id), Name: id + " liveness", TTL: "30m", Status: api.HealthCritical},
		Connect: &api.AgentServiceConnect{SidecarService: &api.AgentServiceRegistration{
			Port: m.publicPort[id], Weights: &api.AgentWeights{Passing: weight, Warning: 1},
			Checks: api.AgentServiceChecks{{Name: id + " alias", AliasService: id}}}}}
	if err := m.consul.Client().Agent().ServiceRegister(reg); err != nil {
		t.Fatalf("register %s: %v", id, err)
	}
	if status == api.HealthPassing {
		m.setHealth(t, id, true) // after registering: see registerWithMeta
	}
}

// checkPlaintextRefused calls a sidecar's public port without TLS: the
// sidecar must refuse, so the proxyless calls that succeed use mTLS.
func checkPlaintextRefused(t *testing.T, port int) {
	t.Helper()
	conn, err := grpc.NewClient(addr(port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if resp, err := testpb.NewTestServiceClient(conn).UnaryCall(ctx, &testpb.SimpleRequest{}); err == nil {
		t.Fatalf("a plaintext call to the sidecar on port %d was answered by %s", port, resp.GetPayload().GetBody())
	}
}

// waitSentToClient waits until /proxies shows a listener sent to the
// grpc-go client and returns when it was sent.
func waitSentToClient(t *testing.T, m *mesh, listener string) time.Time {
	t.Helper()
	var at time.Time
	poll.Until(t, 10*time.Second, listener+" sent to the proxyless client", func() error {
		resp, err := http.Get("http://" + m.cpAdmin + "/proxies")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var proxies []controlplane.ProxyStatus
		if err := json.NewDecoder(resp.Body).Decode(&proxies); err != nil {
			return err
		}
		for _, p := range proxies {
			if ts := p.Types["type.googleapis.com/envoy.config.listener.v3.Listener"]; p.ID == proxylessNodeID && ts != nil {
				if slices.Contains(ts.Sent, listener) {
					at = ts.SentAt
					return nil
				}
				return fmt.Errorf("subscribed %v, sent %v", ts.Subscribed, ts.Sent)
			}
		}
		return fmt.Errorf("%s not in /proxies", proxylessNodeID)
	})
	return at
}

// proxylessClient is the proxyless gRPC client process.
type proxylessClient struct {
	stdin io.WriteCloser
	calls *callLog
}

// startProxylessClient gets the client a certificate and a bootstrap and
// starts it; its calls are logged until the test ends.
func startProxylessClient(t *testing.T, m *mesh) *proxylessClient {
	t.Helper()
	dir := t.TempDir()
	certDir := filepath.Join(dir, "certs")
	weft := filepath.Join(binDir, "weft")
	if out, err := exec.Command(weft, "cert", "--service", "web", "--xds-addr", m.xdsAddr, "--out", certDir).CombinedOutput(); err != nil {
		t.Fatalf("weft cert: %v\n%s", err, out)
	}
	bootstrap, err := exec.Command(weft, "grpc-bootstrap", "--service", "web", "--node-id", proxylessNodeID,
		"--xds-addr", m.xdsAddr, "--cert-dir", certDir).Output()
	if err != nil {
		t.Fatalf("weft grpc-bootstrap: %v", err)
	}
	bootstrapFile := filepath.Join(dir, "bootstrap.json")
	if err := os.WriteFile(bootstrapFile, bootstrap, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GRPC_XDS_BOOTSTRAP="+bootstrapFile, proxylessClientEnv+"=1", "WEFT_PROXYLESS_DURATION=5m")
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	log := &callLog{calls: map[string][]proxylessCall{}}
	go log.read(stdout)
	return &proxylessClient{stdin: stdin, calls: log}
}

// dial makes the client dial xds:///<target> and call it in a loop.
func (c *proxylessClient) dial(t *testing.T, target string) {
	t.Helper()
	if _, err := fmt.Fprintln(c.stdin, target); err != nil {
		t.Fatal(err)
	}
}

// proxylessCall is one call the client printed.
type proxylessCall struct {
	at  time.Time
	who string // the instance that answered
	err string // or the error
}

// callLog holds the client's calls by target, read from its stdout.
type callLog struct {
	mu    sync.Mutex
	calls map[string][]proxylessCall
	bad   []string
}

func (l *callLog) read(r io.Reader) {
	lines := bufio.NewScanner(r)
	for lines.Scan() {
		l.add(lines.Text())
	}
}

func (l *callLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fields := strings.SplitN(line, " ", 3)
	if len(fields) != 3 {
		l.bad = append(l.bad, line)
		return
	}
	ns, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		l.bad = append(l.bad, line)
		return
	}
	c := proxylessCall{at: time.Unix(0, ns), who: fields[2]}
	if msg, ok := strings.CutPrefix(fields[2], "error "); ok {
		c = proxylessCall{at: c.at, err: msg}
	}
	l.calls[fields[1]] = append(l.calls[fields[1]], c)
}

// of returns the calls to target so far.
func (l *callLog) of(target string) []proxylessCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls[target])
}

func (l *callLog) malformed() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.bad)
}

func successes(calls []proxylessCall) []proxylessCall {
	var ok []proxylessCall
	for _, c := range calls {
		if c.err == "" {
			ok = append(ok, c)
		}
	}
	return ok
}

func countAfter(calls []proxylessCall, after time.Time) int {
	n := 0
	for _, c := range calls {
		if c.at.After(after) {
			n++
		}
	}
	return n
}

func lastCallTo(calls []proxylessCall, instance string) time.Time {
	var last time.Time
	for _, c := range calls {
		if c.who == instance {
			last = c.at
		}
	}
	return last
}

// tail describes the last calls, for failure messages.
func tail(calls []proxylessCall) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d calls", len(calls))
	for _, c := range calls[max(0, len(calls)-3):] {
		fmt.Fprintf(&b, "; %s %s%s", c.at.Format("15:04:05.000"), c.who, c.err)
	}
	return b.String()
}

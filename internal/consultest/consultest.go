// Package consultest starts a real Consul dev agent for tests.
//
// Every test that needs Consul calls Start, which finds the pinned binary
// (see FindBinary), runs `consul agent -dev` on free loopback ports and
// returns once the agent has a leader and its node is in the catalog, so
// service registrations work at once. The agent is stopped by t.Cleanup;
// its output is logged when the test fails.
package consultest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/testproc"
)

// Datacenter is the datacenter of every agent Start runs.
const Datacenter = "dc1"

const (
	startTimeout    = 60 * time.Second
	stopGracePeriod = 10 * time.Second
	startAttempts   = 5
)

// Option changes how Start runs the agent.
type Option func(*options)

type options struct {
	args       []string
	datacenter string
	peering    bool
}

// WithDatacenter names the agent's datacenter (default Datacenter), so
// that two agents can be two clusters.
func WithDatacenter(dc string) Option {
	return func(o *options) { o.datacenter = dc }
}

// WithPeering turns on the gRPC TLS port, with a certificate the test
// issues, which Consul (1.14 and later) needs to generate and accept
// cluster peering tokens. See Peer.
func WithPeering() Option {
	return func(o *options) { o.peering = true }
}

// WithArgs appends arguments to the `consul agent` command line, for
// example "-hcl=acl { enabled = true }".
func WithArgs(args ...string) Option {
	return func(o *options) { o.args = append(o.args, args...) }
}

// Server is a running Consul dev agent. Its methods must be called from the
// test's goroutine (or be otherwise serialized), except Client.
type Server struct {
	// HTTPAddr is the agent's HTTP API address, host:port.
	HTTPAddr string
	// NodeName is the agent's node name, unique per Server.
	NodeName string

	t      testing.TB
	bin    string
	opts   options
	ports  ports
	dir    string
	client *api.Client

	// grpcTLSHCL configures the gRPC TLS port's certificate (WithPeering).
	grpcTLSHCL string

	// hasGRPCTLS: the agent has -grpc-tls-port (Consul 1.14 on), which
	// must be set, or it binds 8503.
	hasGRPCTLS bool

	mu     sync.Mutex
	proc   *testproc.Process // nil while stopped
	starts int               // number of processes started, names log files
	logs   []string          // log file of every process started
}

// Start runs a Consul dev agent for the test and waits until it is ready.
// It fails the test (never skips it) when no consul binary can be found.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin, err := FindBinary()
	if err != nil {
		t.Fatalf("consultest: %v", err)
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), NodeName: uniqueNodeName()}
	for _, o := range opts {
		o(&s.opts)
	}
	if s.hasGRPCTLS, err = agentHasFlag(bin, "grpc-tls-port"); err != nil {
		t.Fatalf("consultest: %v", err)
	}
	if s.opts.peering && !s.hasGRPCTLS {
		t.Fatalf("consultest: %s has no -grpc-tls-port: cluster peering needs Consul 1.14 or later", bin)
	}
	t.Cleanup(s.cleanup)

	var lastErr error
	for range startAttempts {
		if s.ports, lastErr = freePorts(); lastErr != nil {
			t.Fatalf("consultest: %v", lastErr)
		}
		s.setAddrs()
		lastErr = s.start()
		if lastErr == nil {
			return s
		}
		if !isPortCollision(lastErr) {
			break
		}
		t.Logf("consultest: port collision, retrying: %v", lastErr)
	}
	t.Fatalf("consultest: start consul: %v", lastErr)
	return nil
}

// Client returns an API client for the agent. The same client keeps working
// across Stop and Restart, since the agent comes back on the same ports.
func (s *Server) Client() *api.Client { return s.client }

// Stop stops the agent (SIGTERM, then SIGKILL after a grace period) and
// waits for it to exit. A dev agent keeps its state in memory, so the
// catalog is lost. Stop on a stopped Server does nothing.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return
	}
	if err := s.proc.Stop(); err != nil {
		s.t.Logf("consultest: stop consul: %v", err)
	}
	s.proc = nil
}

// Restart stops the agent if it is running and starts a new one on the
// same ports with the same node name, waiting until it is ready. The new
// agent starts with an empty catalog.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("consultest: restart consul: %v", err)
	}
}

func (s *Server) setAddrs() {
	s.HTTPAddr = hostPort(s.ports.http)
	cfg := api.DefaultConfig()
	cfg.Address = s.HTTPAddr
	cfg.Scheme = "http"
	cfg.Token = ""
	client, err := api.NewClient(cfg)
	if err != nil {
		s.t.Fatalf("consultest: api client: %v", err)
	}
	s.client = client
}

// start launches one agent process and waits until it is ready; on failure
// the process is stopped and the error carries the reason.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starts++
	logPath := filepath.Join(s.dir, fmt.Sprintf("consul-%d.log", s.starts))
	s.logs = append(s.logs, logPath)
	proc, err := testproc.Start(testproc.Spec{Name: "consul", Args: append([]string{s.bin}, s.args()...), Log: logPath, StopGrace: stopGracePeriod})
	if err != nil {
		return err
	}
	if err := waitReady(s.client, s.NodeName, proc, startTimeout); err != nil {
		_ = proc.Stop()
		return withLog(err, logPath)
	}
	s.proc = proc
	return nil
}

func (s *Server) args() []string {
	p := s.ports
	args := []string{
		"agent", "-dev",
		"-node=" + s.NodeName,
		"-bind=127.0.0.1",
		"-client=127.0.0.1",
		"-advertise=127.0.0.1",
		"-http-port=" + strconv.Itoa(p.http),
		"-serf-lan-port=" + strconv.Itoa(p.serfLAN),
		"-serf-wan-port=" + strconv.Itoa(p.serfWAN),
		"-server-port=" + strconv.Itoa(p.server),
		"-datacenter=" + s.Datacenter(),
		"-grpc-port=-1",
		"-dns-port=-1",
		"-log-level=info",
		// Consul 1.14 panics ("unknown kind" in convert_pbstruct.go) when a
		// blocking health query goes through its streaming backend for a
		// service whose merged upstream config holds unset fields; later
		// releases fixed it. Weft's watches use plain blocking queries.
		"-hcl=use_streaming_backend = false",
	}
	if s.hasGRPCTLS { // Consul 1.14 on; before it, -grpc-port=-1 closes every gRPC port
		args = append(args, "-grpc-tls-port="+strconv.Itoa(s.grpcTLSPort()))
	}
	if s.opts.peering {
		args = append(args, "-hcl="+s.grpcTLSConfig())
	}
	return append(args, s.opts.args...)
}

// Datacenter is the agent's datacenter.
func (s *Server) Datacenter() string {
	if s.opts.datacenter != "" {
		return s.opts.datacenter
	}
	return Datacenter
}

func (s *Server) grpcTLSPort() int {
	if !s.opts.peering {
		return -1
	}
	return s.ports.grpcTLS
}

// cleanup stops the agent and, when the test failed, logs its output.
func (s *Server) cleanup() {
	s.Stop()
	if !s.t.Failed() {
		return
	}
	for _, path := range s.logs {
		out, err := os.ReadFile(path)
		if err != nil {
			s.t.Logf("consultest: read %s: %v", path, err)
			continue
		}
		s.t.Logf("consultest: output of %s:\n%s", filepath.Base(path), out)
	}
}

// agentFlags caches, per binary, the flags `consul agent -h` lists.
var agentFlags sync.Map // binary path → string (the usage text)

// agentHasFlag reports whether the agent of bin takes -name: the suite
// runs against any Consul a user points WEFT_CONSUL_BIN at, and older
// agents refuse flags they do not know.
func agentHasFlag(bin, name string) (bool, error) {
	usage, ok := agentFlags.Load(bin)
	if !ok {
		out, err := exec.Command(bin, "agent", "-h").CombinedOutput()
		if err != nil && !bytes.Contains(out, []byte("-dev")) {
			return false, fmt.Errorf("%s agent -h: %v: %s", bin, err, out)
		}
		usage, _ = agentFlags.LoadOrStore(bin, string(out))
	}
	return usageHasFlag(usage.(string), name), nil
}

// usageHasFlag reports whether an agent's usage text lists -name:
// Consul 1.14 prints "  -name=<value>", 1.13 "  -name value".
func usageHasFlag(usage, name string) bool {
	for _, end := range []string{"=", " ", "\n"} {
		if strings.Contains(usage, "\n  -"+name+end) {
			return true
		}
	}
	return false
}

// FindBinary locates the consul binary: $WEFT_CONSUL_BIN, else bin/consul
// in the nearest directory above the working directory holding go.mod,
// else consul on $PATH.
func FindBinary() (string, error) {
	if bin := os.Getenv("WEFT_CONSUL_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("WEFT_CONSUL_BIN=%q: %w", bin, err)
		}
		return bin, nil
	}
	if root, ok := moduleRoot(); ok {
		bin := filepath.Join(root, "bin", "consul")
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	if bin, err := exec.LookPath("consul"); err == nil {
		return bin, nil
	}
	return "", fmt.Errorf("no consul binary: set WEFT_CONSUL_BIN, or run `make consul` to build bin/consul")
}

func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func hostPort(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

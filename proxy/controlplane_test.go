package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/log"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/proxy"
	"github.com/weft-mesh/weft/proxy/listener"
	"github.com/weft-mesh/weft/proxy/xds"
)

const (
	nodeID = "web-1-sidecar-proxy"
	wait   = 15 * time.Second
)

// testLog writes to t.Log until the test's cleanup has run; goroutines of
// the servers under test may outlive it by a little.
type testLog struct {
	t    testing.TB
	done atomic.Bool
}

func newTestLog(t testing.TB) *testLog {
	l := &testLog{t: t}
	t.Cleanup(func() { l.done.Store(true) })
	return l
}

func (l *testLog) Write(p []byte) (int, error) {
	if !l.done.Load() {
		l.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (l *testLog) slog() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *testLog) cpLogger() log.Logger {
	logf := func(format string, args ...any) { fmt.Fprintf(l, "control plane: "+format+"\n", args...) }
	return log.LoggerFuncs{InfoFunc: logf, WarnFunc: logf, ErrorFunc: logf}
}

// controlPlane is a real go-control-plane ADS server on loopback.
type controlPlane struct {
	t     testing.TB
	log   *testLog
	addr  string
	cache cachev3.SnapshotCache
	srv   *grpc.Server

	mu     sync.Mutex
	reqs   []*discoveryv3.DiscoveryRequest // every request, as OnStreamRequest saw it
	reqsAt []streamEvent                   // when and on which stream each of reqs arrived
	sent   []sentResponse                  // every response, as it was about to be sent
}

// streamEvent is when something happened on which ADS stream.
type streamEvent struct {
	stream int64
	at     time.Time
}

// sentResponse is a response the control plane sent.
type sentResponse struct {
	streamEvent
	typeURL, version, nonce string
}

// startControlPlane serves ADS on addr; register adds other services (the
// certificate service) to the same gRPC server.
func startControlPlane(t testing.TB, tl *testLog, addr string, register ...func(*grpc.Server)) *controlPlane {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("control plane listen: %v", err)
	}
	cp := &controlPlane{t: t, log: tl, addr: ln.Addr().String(), cache: cachev3.NewSnapshotCache(true, cachev3.IDHash{}, tl.cpLogger())}
	callbacks := serverv3.CallbackFuncs{
		StreamRequestFunc: func(stream int64, req *discoveryv3.DiscoveryRequest) error {
			at := time.Now()
			cp.mu.Lock()
			defer cp.mu.Unlock()
			cp.reqs = append(cp.reqs, proto.Clone(req).(*discoveryv3.DiscoveryRequest))
			cp.reqsAt = append(cp.reqsAt, streamEvent{stream, at})
			return nil
		},
		// Called immediately before the response is sent.
		StreamResponseFunc: func(_ context.Context, stream int64, _ *discoveryv3.DiscoveryRequest, resp *discoveryv3.DiscoveryResponse) {
			at := time.Now()
			cp.mu.Lock()
			defer cp.mu.Unlock()
			cp.sent = append(cp.sent, sentResponse{streamEvent{stream, at}, resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce()})
		},
	}
	cp.srv = grpc.NewServer(grpc.WaitForHandlers(true))
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(cp.srv, serverv3.NewServer(context.Background(), cp.cache, callbacks))
	for _, r := range register {
		r(cp.srv)
	}
	go cp.srv.Serve(ln)
	t.Cleanup(cp.srv.Stop)
	return cp
}

// stop kills the server and every open stream.
func (cp *controlPlane) stop() { cp.srv.Stop() }

// set publishes a consistent snapshot for the proxy.
func (cp *controlPlane) set(version string, resources map[resourcev3.Type][]types.Resource) {
	cp.t.Helper()
	cp.setFor(nodeID, version, resources)
}

// setFor publishes a consistent snapshot for the proxy with node ID node.
func (cp *controlPlane) setFor(node, version string, resources map[resourcev3.Type][]types.Resource) {
	cp.t.Helper()
	snap, err := cachev3.NewSnapshot(version, resources)
	if err != nil {
		cp.t.Fatal(err)
	}
	if err := snap.Consistent(); err != nil {
		cp.t.Fatalf("snapshot %s: %v", version, err)
	}
	if err := cp.cache.SetSnapshot(context.Background(), node, snap); err != nil {
		cp.t.Fatal(err)
	}
}

// waitRequest polls until the proxy has sent a request matching match.
func (cp *controlPlane) waitRequest(what string, match func(*discoveryv3.DiscoveryRequest) bool) *discoveryv3.DiscoveryRequest {
	cp.t.Helper()
	var found *discoveryv3.DiscoveryRequest
	poll.UntilTrue(cp.t, wait, what, func() bool {
		cp.mu.Lock()
		defer cp.mu.Unlock()
		for _, r := range cp.reqs {
			if match(r) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// nackLatency is the time from the control plane sending the first
// typeURL response of version to the proxy's NACK of it (the request
// on the same stream carrying its nonce and an error) arriving; false if
// there is no such pair yet.
func (cp *controlPlane) nackLatency(typeURL, version string) (time.Duration, bool) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for _, r := range cp.sent {
		if r.typeURL != typeURL || r.version != version {
			continue
		}
		for i, req := range cp.reqs {
			if cp.reqsAt[i].stream == r.stream && req.GetResponseNonce() == r.nonce && req.GetErrorDetail() != nil {
				return cp.reqsAt[i].at.Sub(r.at), true
			}
		}
		return 0, false
	}
	return 0, false
}

// runningProxy is a weft-proxy under test.
type runningProxy struct {
	t     testing.TB
	admin string
}

// startProxy starts a proxy on state-of-the-world ADS, whose requests
// (ACKs, NACKs with their versions) the tests using it inspect; delta ADS
// is covered by proxy/xds and the end-to-end tests.
func startProxy(t *testing.T, tl *testLog, xdsAddrs ...string) *runningProxy {
	t.Helper()
	return startProxyWith(t, proxy.Options{ProxyID: nodeID, XDSAddrs: xdsAddrs, XDSProtocol: proxy.XDSStateOfTheWorld, Logger: tl.slog()})
}

// startProxyWith runs a proxy with opts; the admin address, drain timeout
// and backoff get test values when zero.
func startProxyWith(t testing.TB, opts proxy.Options) *runningProxy {
	t.Helper()
	if opts.AdminAddr == "" {
		opts.AdminAddr = "127.0.0.1:0"
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = wait
	}
	if opts.XDSBackoff == (xds.Backoff{}) {
		opts.XDSBackoff = xds.Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond}
	}
	p, err := proxy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("proxy.Run: %v", err)
		}
	})
	select {
	case <-p.Started():
	case err := <-done:
		t.Fatalf("proxy.Run: %v", err)
	}
	return &runningProxy{t: t, admin: p.AdminAddr().String()}
}

func (p *runningProxy) adminGet(path string) (int, []byte) {
	p.t.Helper()
	resp, err := http.Get("http://" + p.admin + path)
	if err != nil {
		p.t.Fatalf("admin GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func (p *runningProxy) waitReady() {
	p.t.Helper()
	poll.UntilTrue(p.t, wait, "/ready", func() bool { code, _ := p.adminGet("/ready"); return code == http.StatusOK })
}

// listenerAddr waits for the named listener to be bound and returns its
// bound address.
func (p *runningProxy) listenerAddr(name string) string {
	p.t.Helper()
	var addr string
	poll.UntilTrue(p.t, wait, "listener "+name, func() bool {
		_, body := p.adminGet("/listeners")
		var ls []listener.Info
		json.Unmarshal(body, &ls)
		for _, l := range ls {
			if l.Name == name && l.BoundAddress != "" {
				addr = l.BoundAddress
				return true
			}
		}
		return false
	})
	return addr
}

func (p *runningProxy) xdsStatus() xds.Status {
	p.t.Helper()
	_, body := p.adminGet("/config_dump")
	var dump struct{ XDS xds.Status }
	if err := json.Unmarshal(body, &dump); err != nil {
		p.t.Fatalf("config_dump: %v", err)
	}
	return dump.XDS
}

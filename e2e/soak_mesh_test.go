package e2e

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"

	"github.com/weft-mesh/weft/internal/consultest"
	"github.com/weft-mesh/weft/internal/poll"
)

// soakMesh is the soak's topology, with one-minute leaves:
//
//	web-1 ──▶ api (http: api-1, api-2, api-3)
//	      ──▶ grpcapi (grpc: grpc-1)
//	      ──▶ echo (tcp: echo-1)
//
// each instance behind its own weft-proxy. The test plays web-1's app.
type soakMesh struct {
	*mesh
	grpcPort  int
	instances []soakInstance
	upstreams []api.Upstream // web-1's
	http1     *http.Client
	h2c       *http.Client
	grpcConn  *grpc.ClientConn
	load      *soakLoad // while the load runs
}

// soakInstance is a registered instance and its app's port.
type soakInstance struct {
	id, service string
	port        int
}

var soakAPIs = []string{"api-1", "api-2", "api-3"}

// soakDestinations are web-1's upstream services, the intentions' targets.
var soakDestinations = []string{"api", "grpcapi", "echo"}

// soakEndpoints is how many healthy endpoints web-1's sidecar holds when
// every instance is registered.
const soakEndpoints = 5

const soakWeb = "web-1-sidecar-proxy"

func startSoakMesh(t *testing.T) *soakMesh {
	t.Helper()
	// Sampling at the control plane's default (1 %), not the 100 % other
	// e2e tests use to find their traces: the soak measures the mesh as
	// it runs.
	m := newMesh(t, meshOptions{leafTTL: soakLeafTTL, traceSampling: "1"})
	s := &soakMesh{mesh: m, grpcPort: freePort(t)}
	for _, id := range soakAPIs {
		s.hits[id] = &atomic.Int64{}
		s.instances = append(s.instances, soakInstance{id, "api", startNameServer(t, id, s.hits[id])})
	}
	s.instances = append(s.instances,
		soakInstance{"grpc-1", "grpcapi", startServe(t, serveTestService)},
		soakInstance{"echo-1", "echo", startEchoServer(t, &atomic.Int64{})},
		soakInstance{"web-1", "web", freePort(t)})
	s.upstreams = []api.Upstream{
		{DestinationName: "api", LocalBindAddress: "127.0.0.1", LocalBindPort: s.apiPort},
		{DestinationName: "grpcapi", LocalBindAddress: "127.0.0.1", LocalBindPort: s.grpcPort},
		{DestinationName: "echo", LocalBindAddress: "127.0.0.1", LocalBindPort: s.echoPort},
	}
	s.registerAll(t)
	for _, in := range s.instances {
		s.startProxy(t, in.id+"-sidecar-proxy")
	}
	s.waitRegistered(t)
	s.dialClients(t)
	return s
}

func serveTestService(l net.Listener) {
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, testService{})
	srv.Serve(l)
}

// registerAll writes the config entries and registers every instance.
func (s *soakMesh) registerAll(t *testing.T) {
	t.Helper()
	s.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"})
	s.setEntry(t, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "grpcapi", Protocol: "grpc"})
	s.setIntentions(t, api.IntentionActionAllow)
	for _, in := range s.instances {
		s.registerInstance(t, in)
	}
}

func (s *soakMesh) registerInstance(t *testing.T, in soakInstance) {
	t.Helper()
	var ups []api.Upstream
	if in.service == "web" {
		ups = s.upstreams
	}
	s.register(t, in.id, in.service, in.port, ups)
}

func (s *soakMesh) instance(id string) soakInstance {
	for _, in := range s.instances {
		if in.id == id {
			return in
		}
	}
	panic("no soak instance " + id)
}

// setIntentions sets web's intention to every destination, through
// setEntry so that a Consul restart replays the latest.
func (s *soakMesh) setIntentions(t *testing.T, action api.IntentionAction) {
	t.Helper()
	for _, dest := range soakDestinations {
		s.setEntry(t, &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: dest,
			Sources: []*api.SourceIntention{{Name: "web", Action: action}}})
	}
}

// waitRegistered waits until Consul passes every instance and web-1's
// sidecar holds all their endpoints.
func (s *soakMesh) waitRegistered(t *testing.T) {
	t.Helper()
	client := s.consul.Client()
	consultest.WaitForPassing(t, client, "api", len(soakAPIs))
	consultest.WaitForPassing(t, client, "grpcapi", 1)
	consultest.WaitForPassing(t, client, "echo", 1)
	s.waitEndpoints(t, soakWeb, soakEndpoints)
}

func (s *soakMesh) dialClients(t *testing.T) {
	t.Helper()
	conn, err := dialGRPC(addr(s.grpcPort))
	if err != nil {
		t.Fatal(err)
	}
	s.grpcConn, s.http1, s.h2c = conn, http1Client(), h2cClient()
	t.Cleanup(s.closeClients)
}

// closeClients closes the clients' connections, so that the sidecars'
// goroutines serving them can end.
func (s *soakMesh) closeClients() {
	s.grpcConn.Close()
	s.http1.CloseIdleConnections()
	s.h2c.CloseIdleConnections()
}

func (s *soakMesh) senders() map[string]sender {
	url := "http://" + addr(s.apiPort) + "/"
	return map[string]sender{
		protoHTTP1: httpSender(s.http1, url, 1),
		protoHTTP2: httpSender(s.h2c, url, 2),
		protoGRPC:  grpcSender(testpb.NewTestServiceClient(s.grpcConn)),
		protoTCP:   tcpSender(addr(s.echoPort)),
	}
}

// waitServing waits until every protocol's request succeeds.
func (s *soakMesh) waitServing(t *testing.T) {
	t.Helper()
	for proto, send := range s.senders() {
		poll.Until(t, 30*time.Second, proto+" served through the mesh", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), soakRequestTimeout)
			defer cancel()
			_, err := send(ctx)
			return err
		})
	}
}

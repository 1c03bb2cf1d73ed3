package consultest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/pkitest"
)

// grpcTLSConfig writes a CA and a server certificate for 127.0.0.1 into
// the agent's directory and returns the HCL that serves gRPC TLS with
// them. Consul only needs the port to speak TLS: peering streams are
// verified with the peers' Connect CA roots, exchanged in the token.
// The files are written once per Server, so Restart reuses them.
func (s *Server) grpcTLSConfig() string {
	if s.grpcTLSHCL != "" {
		return s.grpcTLSHCL
	}
	dir := filepath.Join(s.dir, "grpc-tls")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		s.t.Fatalf("consultest: %v", err)
	}
	ca := pkitest.NewCA(s.t, "consul-agent-ca")
	caFile := filepath.Join(dir, "ca.pem")
	pkitest.WriteFile(s.t, caFile, ca.PEM())
	pair := ca.IssueFiles(s.t, dir, "server", pkitest.LeafSpec{
		DNSNames: []string{"server." + s.Datacenter() + ".consul", "localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	s.grpcTLSHCL = fmt.Sprintf(`tls { grpc { ca_file = %q cert_file = %q key_file = %q } }`, caFile, pair.CertFile, pair.KeyFile)
	return s.grpcTLSHCL
}

// peerTimeout bounds how long Peer waits for a peering to turn ACTIVE.
const peerTimeout = 60 * time.Second

// Peer peers two agents started WithPeering, as an operator does with
// Consul's HTTP API: acceptor generates a token for a peer it calls
// dialerName, dialer establishes it under the name acceptorName. It waits
// until both sides see the peering ACTIVE.
func Peer(t testing.TB, acceptor *Server, dialerName string, dialer *Server, acceptorName string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), peerTimeout)
	defer cancel()
	tok, _, err := acceptor.Client().Peerings().GenerateToken(ctx, api.PeeringGenerateTokenRequest{PeerName: dialerName}, nil)
	if err != nil {
		t.Fatalf("consultest: generate a peering token on %s: %v", acceptor.Datacenter(), err)
	}
	if _, _, err := dialer.Client().Peerings().Establish(ctx, api.PeeringEstablishRequest{PeerName: acceptorName, PeeringToken: tok.PeeringToken}, nil); err != nil {
		t.Fatalf("consultest: establish the peering on %s: %v", dialer.Datacenter(), err)
	}
	for _, side := range []struct {
		s    *Server
		name string
	}{{dialer, acceptorName}, {acceptor, dialerName}} {
		if err := waitFor(func(q *api.QueryOptions) (uint64, bool, error) {
			p, meta, err := side.s.Client().Peerings().Read(q.Context(), side.name, q.WithContext(ctx))
			if err != nil {
				return 0, false, err
			}
			return meta.LastIndex, p != nil && p.State == api.PeeringStateActive, nil
		}); err != nil {
			t.Fatalf("consultest: peering %q on %s did not turn ACTIVE: %v", side.name, side.s.Datacenter(), err)
		}
	}
}

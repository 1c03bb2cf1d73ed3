package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/testnet"
)

// certService is a CertificateService that signs for tokens it knows.
type certService struct {
	certsv1.UnimplementedCertificateServiceServer
	ca    *pkitest.CA
	token string

	mu       sync.Mutex
	proxyIDs []string
	services []string
}

func (s *certService) Sign(ctx context.Context, req *certsv1.SignRequest) (*certsv1.SignResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if got := md.Get(TokenHeader); len(got) != 1 || got[0] != s.token {
		return nil, status.Errorf(codes.Unauthenticated, "bad token %q", got)
	}
	s.mu.Lock()
	s.proxyIDs = append(s.proxyIDs, req.GetProxyId())
	s.services = append(s.services, req.GetService())
	s.mu.Unlock()
	der, err := s.ca.SignCSR(req.GetCsr(), web, time.Hour)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	return &certsv1.SignResponse{Certificate: der, SpiffeId: web}, nil
}

func serveCerts(t *testing.T, svc *certService) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	certsv1.RegisterCertificateServiceServer(srv, svc)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func csr(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestGRPCSignerSendsTokenAndFailsOver(t *testing.T) {
	svc := &certService{ca: pkitest.NewCA(t, "root"), token: "s3cret"}
	addr := serveCerts(t, svc)
	signer := NewGRPCSigner(SignerOptions{Addrs: []string{testnet.ClosedPort(t), addr}, ProxyID: "web-1-sidecar-proxy", Token: StaticToken("s3cret")})
	t.Cleanup(signer.Close)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for range 2 {
		resp, err := signer.Sign(ctx, csr(t))
		if err != nil || resp.GetSpiffeId() != web {
			t.Fatalf("Sign = %v, %v", resp, err)
		}
	}
	if signer.next != 1 {
		t.Errorf("signer starts at address %d, want the one that worked (1)", signer.next)
	}
	if len(svc.proxyIDs) != 2 || svc.proxyIDs[0] != "web-1-sidecar-proxy" {
		t.Errorf("server saw proxy IDs %q", svc.proxyIDs)
	}
}

// TestGRPCSignerForService: a linked service's signer names the proxy and
// the service; the proxy's own names only the proxy.
func TestGRPCSignerForService(t *testing.T) {
	svc := &certService{ca: pkitest.NewCA(t, "root"), token: "s3cret"}
	signer := NewGRPCSigner(SignerOptions{Addrs: []string{serveCerts(t, svc)}, ProxyID: "tgw-1", Token: StaticToken("s3cret")})
	t.Cleanup(signer.Close)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for _, s := range []Signer{signer.ForService("ext"), signer} {
		if _, err := s.Sign(ctx, csr(t)); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(svc.proxyIDs, []string{"tgw-1", "tgw-1"}) || !slices.Equal(svc.services, []string{"ext", ""}) {
		t.Errorf("server saw proxy IDs %q and services %q; want tgw-1 twice, with ext then none", svc.proxyIDs, svc.services)
	}
}

func TestGRPCSignerDoesNotFailOverOnBadToken(t *testing.T) {
	good := &certService{ca: pkitest.NewCA(t, "root"), token: "right"}
	signer := NewGRPCSigner(SignerOptions{Addrs: []string{serveCerts(t, good), serveCerts(t, good)}, Token: StaticToken("wrong")})
	t.Cleanup(signer.Close)
	_, err := signer.Sign(context.Background(), csr(t))
	if status.Code(errorsUnwrapLast(err)) != codes.Unauthenticated || strings.Count(err.Error(), "bad token") != 1 {
		t.Errorf("Sign error = %v, want one Unauthenticated answer", err)
	}
	if signer.next != 0 {
		t.Errorf("moved to address %d after an answer every server would give", signer.next)
	}
}

func TestFileTokenIsReadOnEveryCall(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	src := FileToken(path)
	if _, err := src(); err == nil {
		t.Error("missing token file: no error")
	}
	for _, tok := range []string{"one", "two"} {
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := src(); err != nil || got != tok {
			t.Errorf("token = %q, %v; want %q", got, err, tok)
		}
	}
}

func errorsUnwrapLast(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs := j.Unwrap()
		return errorsUnwrapLast(errs[len(errs)-1])
	}
	if u, ok := err.(interface{ Unwrap() error }); ok && u.Unwrap() != nil {
		return errorsUnwrapLast(u.Unwrap())
	}
	return err
}

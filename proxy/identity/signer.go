package identity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
)

// TokenHeader is the gRPC metadata key carrying the Consul ACL token.
const TokenHeader = "x-consul-token"

// attemptTimeout bounds a Sign call to one server.
const attemptTimeout = 10 * time.Second

// SignerOptions configure a GRPCSigner.
type SignerOptions struct {
	// Addrs are the control plane's addresses ("host:port"), the same as
	// the xDS servers'. At least one.
	Addrs []string
	// ProxyID is the sidecar's Consul service ID (the xDS node ID).
	ProxyID string
	// Token returns the Consul ACL token sent with every request; nil or
	// an empty token sends none.
	Token func() (string, error)
	// DialOptions replace the default plaintext transport credentials.
	DialOptions []grpc.DialOption
}

// GRPCSigner calls weft.certs.v1.CertificateService/Sign on the control
// plane. Like the xDS client it fails over: a call that fails for want of
// a server moves on to the next address, and the next call starts at the
// address that last worked.
type GRPCSigner struct {
	opts SignerOptions

	mu    sync.Mutex
	conns []*grpc.ClientConn // by address index, created on first use
	next  int
}

var _ Signer = (*GRPCSigner)(nil)

// NewGRPCSigner returns a signer. It connects lazily.
func NewGRPCSigner(opts SignerOptions) *GRPCSigner {
	if len(opts.DialOptions) == 0 {
		opts.DialOptions = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	return &GRPCSigner{opts: opts, conns: make([]*grpc.ClientConn, len(opts.Addrs))}
}

// Sign has the CSR signed for the proxy's own service: it sends it to
// each server in turn until one answers.
func (s *GRPCSigner) Sign(ctx context.Context, csrDER []byte) (*certsv1.SignResponse, error) {
	return s.sign(ctx, &certsv1.SignRequest{ProxyId: s.opts.ProxyID, Csr: csrDER})
}

// ForService returns a Signer of leaves for service, a service this proxy
// presents besides its own — a terminating gateway's linked service: its
// requests carry the proxy's ID and the service, and go through s's
// connections.
func (s *GRPCSigner) ForService(service string) Signer { return serviceSigner{s: s, service: service} }

type serviceSigner struct {
	s       *GRPCSigner
	service string
}

func (ss serviceSigner) Sign(ctx context.Context, csrDER []byte) (*certsv1.SignResponse, error) {
	return ss.s.sign(ctx, &certsv1.SignRequest{ProxyId: ss.s.opts.ProxyID, Service: ss.service, Csr: csrDER})
}

// sign sends req to each server in turn until one answers.
func (s *GRPCSigner) sign(ctx context.Context, req *certsv1.SignRequest) (*certsv1.SignResponse, error) {
	if len(s.opts.Addrs) == 0 {
		return nil, errors.New("no certificate service address")
	}
	if s.opts.Token != nil {
		token, err := s.opts.Token()
		if err != nil {
			return nil, err
		}
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, TokenHeader, token)
		}
	}
	var errs []error
	for range s.opts.Addrs {
		i, cc, err := s.current()
		if err == nil {
			var resp *certsv1.SignResponse
			resp, err = s.call(ctx, cc, req)
			if err == nil {
				return resp, nil
			}
		}
		errs = append(errs, fmt.Errorf("%s: %w", s.opts.Addrs[i], err))
		if !failOver(err) || ctx.Err() != nil {
			break
		}
		s.advance(i)
	}
	return nil, errors.Join(errs...)
}

func (s *GRPCSigner) call(ctx context.Context, cc *grpc.ClientConn, req *certsv1.SignRequest) (*certsv1.SignResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	return certsv1.NewCertificateServiceClient(cc).Sign(ctx, req)
}

// Conn returns the connection to the control plane the signer uses now,
// for other streams to share (the tap stream: one connection per sidecar
// less for the control plane to hold), and a function that moves the
// signer to the next address after that connection failed.
func (s *GRPCSigner) Conn() (*grpc.ClientConn, func(), error) {
	if len(s.opts.Addrs) == 0 {
		return nil, nil, errors.New("no control plane address")
	}
	i, cc, err := s.current()
	return cc, func() { s.advance(i) }, err
}

// current returns the address to try and its connection.
func (s *GRPCSigner) current() (int, *grpc.ClientConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.next
	if s.conns[i] == nil {
		cc, err := grpc.NewClient(s.opts.Addrs[i], s.opts.DialOptions...)
		if err != nil {
			return i, nil, err
		}
		s.conns[i] = cc
	}
	return i, s.conns[i], nil
}

func (s *GRPCSigner) advance(from int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next == from {
		s.next = (from + 1) % len(s.opts.Addrs)
	}
}

// failOver reports whether another server might succeed where this one
// failed: not for answers every server would give (bad token, bad CSR).
func failOver(err error) bool {
	switch status.Code(err) {
	case codes.Unauthenticated, codes.PermissionDenied, codes.InvalidArgument, codes.NotFound, codes.Canceled:
		return false
	}
	return true
}

// Close closes the connections.
func (s *GRPCSigner) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, cc := range s.conns {
		if cc != nil {
			cc.Close()
			s.conns[i] = nil
		}
	}
}

// StaticToken returns a token source for a fixed token.
func StaticToken(token string) func() (string, error) {
	return func() (string, error) { return token, nil }
}

// FileToken returns a token source that reads the token from path on
// every call, so that a rotated token file is picked up.
func FileToken(path string) func() (string, error) {
	return func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("read token file: %w", err)
		}
		return strings.TrimSpace(string(b)), nil
	}
}

package proxy_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/proxy"
	"github.com/weft-mesh/weft/proxy/internal/xdstest"
)

// testService is grpc.testing.TestService: every call reports the
// deadline it saw in the x-deadline-ms header, ends with an x-trailer
// trailer, and answers with the status its request asks for.
type testService struct {
	testpb.UnimplementedTestServiceServer
}

func deadlineHeader(ctx context.Context) metadata.MD {
	ms := "none"
	if d, ok := ctx.Deadline(); ok {
		ms = strconv.FormatInt(time.Until(d).Milliseconds(), 10)
	}
	return metadata.Pairs("x-deadline-ms", ms)
}

func echoStatus(s *testpb.EchoStatus) error {
	if s == nil || s.GetCode() == 0 {
		return nil
	}
	return status.Error(codes.Code(s.GetCode()), s.GetMessage())
}

func (testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	grpc.SetHeader(ctx, deadlineHeader(ctx))
	grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "unary"))
	if err := echoStatus(req.GetResponseStatus()); err != nil {
		return nil, err
	}
	return &testpb.SimpleResponse{Payload: req.GetPayload()}, nil
}

func (testService) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, s testpb.TestService_StreamingOutputCallServer) error {
	s.SetHeader(deadlineHeader(s.Context()))
	s.SetTrailer(metadata.Pairs("x-trailer", "server-stream"))
	for _, p := range req.GetResponseParameters() {
		if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return echoStatus(req.GetResponseStatus())
}

func (testService) StreamingInputCall(s testpb.TestService_StreamingInputCallServer) error {
	s.SetTrailer(metadata.Pairs("x-trailer", "client-stream"))
	total := 0
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return s.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(req.GetPayload().GetBody())
	}
}

func (testService) FullDuplexCall(s testpb.TestService_FullDuplexCallServer) error {
	s.SetTrailer(metadata.Pairs("x-trailer", "bidi"))
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := echoStatus(req.GetResponseStatus()); err != nil {
			return err
		}
		if err := s.Send(&testpb.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
}

// grpcMesh is a gRPC client → web sidecar → (mTLS, HTTP/2) → api sidecar
// → (h2c) → gRPC server, the sidecars with the HTTP/2 server and client
// h2 (proxy.HTTP2Lean or proxy.HTTP2NetHTTP).
func grpcMesh(t testing.TB, h2 string) testpb.TestServiceClient {
	t.Helper()
	tl := newTestLog(t)
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, testService{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)

	certs := &certService{}
	ca := newCA(t)
	certs.ca.Store(ca)
	roots := bundle(ca)
	cp := startControlPlane(t, tl, "127.0.0.1:0", func(s *grpc.Server) { certsv1.RegisterCertificateServiceServer(s, certs) })

	// Streams live longer than the default route timeout would allow.
	localRoute := xdstest.Routes("local_app", xdstest.Route(xdstest.Prefix("/"), withRouteTimeout(xdstest.ToCluster("local_app"), 0)))
	public := xdstest.WithListenerTLS(xdstest.Listener(publicHTTP, "127.0.0.1:0", xdstest.HCM(&hcmv3.HttpConnectionManager{
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: localRoute},
	})), xdstest.DownstreamTLS(trustDomain.String(), "h2", "http/1.1"))
	cp.setFor(apiNode, "v1", map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {public},
		resourcev3.ClusterType:  {xdstest.WithHTTP2(xdstest.StaticCluster("local_app", xdstest.Endpoint(ln.Addr().String())))},
		resourcev3.SecretType:   {xdstest.RootsSecretOf(roots)},
	})
	api := startProxyWith(t, proxy.Options{ProxyID: apiNode, XDSAddrs: []string{cp.addr}, Token: aclToken, HTTP2Client: h2, HTTP2Server: h2, Logger: tl.slog().With("proxy", "api")})
	api.waitReady()

	upstream := xdstest.WithHTTP2(xdstest.WithClusterTLS(xdstest.EDSCluster(apiHTTP), xdstest.UpstreamTLS(apiHTTP, serviceID(t, "api"), "h2")))
	cp.setFor(webNode, "v1", map[resourcev3.Type][]types.Resource{
		resourcev3.ListenerType: {xdstest.HTTPListenerRDS(webToAPI, "127.0.0.1:0", "api")},
		resourcev3.RouteType:    {xdstest.Routes("api", xdstest.Route(xdstest.Prefix("/"), withRouteTimeout(xdstest.ToCluster(apiHTTP), 0)))},
		resourcev3.ClusterType:  {upstream},
		resourcev3.EndpointType: {loadAssignment(apiHTTP, []string{api.listenerAddr(publicHTTP)})},
		resourcev3.SecretType:   {xdstest.RootsSecretOf(roots)},
	})
	web := startProxyWith(t, proxy.Options{ProxyID: webNode, XDSAddrs: []string{cp.addr}, Token: aclToken, HTTP2Client: h2, HTTP2Server: h2, Logger: tl.slog().With("proxy", "web")})
	web.waitReady()

	conn, err := grpc.NewClient("passthrough:///"+web.listenerAddr(webToAPI), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return testpb.NewTestServiceClient(conn)
}

func withRouteTimeout(a *routev3.RouteAction, d time.Duration) *routev3.RouteAction {
	a.Timeout = durationpb.New(d)
	return a
}

func wantTrailer(t *testing.T, md metadata.MD, want string) {
	t.Helper()
	if got := md.Get("x-trailer"); len(got) != 1 || got[0] != want {
		t.Errorf("trailer x-trailer = %q, want %q", got, want)
	}
}

// TestGRPCThroughTwoSidecars runs each kind of gRPC call through two
// sidecars, with their lean HTTP/2 server and client, then with
// net/http's.
func TestGRPCThroughTwoSidecars(t *testing.T) {
	for _, h2 := range []string{proxy.HTTP2Lean, proxy.HTTP2NetHTTP} {
		t.Run(h2, func(t *testing.T) { testGRPCThroughTwoSidecars(t, h2) })
	}
}

func testGRPCThroughTwoSidecars(t *testing.T, h2 string) {
	client := grpcMesh(t, h2)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()

	t.Run("unary, trailers and the deadline", func(t *testing.T) {
		var header, trailer metadata.MD
		callCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		resp, err := client.UnaryCall(callCtx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hi")}}, grpc.Header(&header), grpc.Trailer(&trailer))
		if err != nil || string(resp.GetPayload().GetBody()) != "hi" {
			t.Fatalf("UnaryCall = %v, %v", resp, err)
		}
		wantTrailer(t, trailer, "unary")
		ms, err := strconv.Atoi(first(header.Get("x-deadline-ms")))
		if err != nil || ms <= 0 || ms > 3000 {
			t.Errorf("server saw deadline %q, want the client's 3 s, less the time spent", header.Get("x-deadline-ms"))
		}
	})
	t.Run("unary error status and message", func(t *testing.T) {
		var trailer metadata.MD
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.FailedPrecondition), Message: "not now: 100% busy"}}, grpc.Trailer(&trailer))
		if s := status.Convert(err); s.Code() != codes.FailedPrecondition || s.Message() != "not now: 100% busy" {
			t.Errorf("status = %v, want FailedPrecondition with its message", s)
		}
		wantTrailer(t, trailer, "unary")
	})
	t.Run("server streaming", func(t *testing.T) {
		stream, err := client.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{
			ResponseParameters: []*testpb.ResponseParameters{{Size: 10}, {Size: 100 << 10}, {Size: 1}},
			ResponseStatus:     &testpb.EchoStatus{Code: int32(codes.ResourceExhausted), Message: "done"},
		})
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		for {
			resp, err := stream.Recv()
			if err != nil {
				if s := status.Convert(err); s.Code() != codes.ResourceExhausted || s.Message() != "done" {
					t.Errorf("stream ended with %v, want ResourceExhausted done", s)
				}
				break
			}
			sizes = append(sizes, len(resp.GetPayload().GetBody()))
		}
		if len(sizes) != 3 || sizes[1] != 100<<10 {
			t.Errorf("received sizes %v", sizes)
		}
		wantTrailer(t, stream.Trailer(), "server-stream")
	})
	t.Run("client streaming", func(t *testing.T) {
		stream, err := client.StreamingInputCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 1000, 64 << 10} {
			if err := stream.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, n)}}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := stream.CloseAndRecv()
		if err != nil || resp.GetAggregatedPayloadSize() != 1+1000+64<<10 {
			t.Errorf("CloseAndRecv = %v, %v", resp, err)
		}
		wantTrailer(t, stream.Trailer(), "client-stream")
	})
	t.Run("bidirectional streaming, full duplex", func(t *testing.T) {
		stream, err := client.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Each message is answered before the next is sent: the proxy
		// must forward both directions at once.
		for i := range 20 {
			msg := []byte("ping " + strconv.Itoa(i))
			if err := stream.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: msg}}); err != nil {
				t.Fatal(err)
			}
			resp, err := stream.Recv()
			if err != nil || string(resp.GetPayload().GetBody()) != string(msg) {
				t.Fatalf("echo %d = %v, %v", i, resp, err)
			}
		}
		stream.Send(&testpb.StreamingOutputCallRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.Aborted), Message: "bye"}})
		if _, err := stream.Recv(); status.Code(err) != codes.Aborted {
			t.Errorf("bidi stream ended with %v, want Aborted", err)
		}
		wantTrailer(t, stream.Trailer(), "bidi")
	})
	t.Run("deadline exceeded on an open stream", func(t *testing.T) {
		callCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		stream, err := client.StreamingInputCall(callCtx) // never half-closed: the deadline ends it
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		// Wait for the answer without half-closing: CloseAndRecv after
		// the deadline races grpc-go's own cancellation, and a half-close
		// that wins lets the server answer OK before the deadline lands.
		if err := stream.RecvMsg(new(testpb.StreamingInputCallResponse)); status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("stream past its deadline ended with %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("deadline took %s", d)
		}
	})
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

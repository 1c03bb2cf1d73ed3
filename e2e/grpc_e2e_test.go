package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/internal/poll"
)

// testService implements grpc.testing.TestService: the four call shapes,
// status echo with a trailer, and a report of the deadline it saw.
type testService struct {
	testpb.UnimplementedTestServiceServer
}

func (testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	if dl, ok := ctx.Deadline(); ok {
		grpc.SetTrailer(ctx, metadata.Pairs("x-deadline-ms", strconv.FormatInt(time.Until(dl).Milliseconds(), 10)))
	}
	if st := req.GetResponseStatus(); st != nil && st.GetCode() != 0 {
		grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "kept"))
		return nil, status.Error(codes.Code(st.GetCode()), st.GetMessage())
	}
	return &testpb.SimpleResponse{Payload: req.GetPayload()}, nil
}

func (testService) StreamingOutputCall(req *testpb.StreamingOutputCallRequest, stream testpb.TestService_StreamingOutputCallServer) error {
	for _, p := range req.GetResponseParameters() {
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: &testpb.Payload{Body: make([]byte, p.GetSize())}}); err != nil {
			return err
		}
	}
	return nil
}

func (testService) StreamingInputCall(stream testpb.TestService_StreamingInputCallServer) error {
	total := 0
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return stream.SendAndClose(&testpb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += len(req.GetPayload().GetBody())
	}
}

func (testService) FullDuplexCall(stream testpb.TestService_FullDuplexCallServer) error {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&testpb.StreamingOutputCallResponse{Payload: req.GetPayload()}); err != nil {
			return err
		}
	}
}

// grpcMesh runs web → api, both of protocol grpc, api-1 serving
// testService, and returns a client dialing web's upstream listener (as
// web's app does); the connection closes with the test.
func grpcMesh(t *testing.T) (*mesh, testpb.TestServiceClient) {
	t.Helper()
	serve := func(l net.Listener) {
		s := grpc.NewServer()
		testpb.RegisterTestServiceServer(s, testService{})
		s.Serve(l)
	}
	m := l7Mesh(t, []instance{{id: "api-1", service: "api", serve: serve}},
		&api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "grpc"},
		&api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "web", Protocol: "grpc"})
	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", m.apiPort), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return m, testpb.NewTestServiceClient(conn)
}

// TestGRPCThroughTwoSidecars runs every gRPC call shape from the test (as
// web's app) through web's and api's sidecars, over mTLS between them.
func TestGRPCThroughTwoSidecars(t *testing.T) {
	_, client := grpcMesh(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	poll.Until(t, 30*time.Second, "first unary call", func() error {
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{})
		return err
	})
	runGRPCShapes(t, ctx, client)
}

// runGRPCShapes runs every gRPC call shape through client, checking
// payloads, statuses with trailers, and the deadline the server saw.
func runGRPCShapes(t *testing.T, ctx context.Context, client testpb.TestServiceClient) {
	t.Run("unary", func(t *testing.T) {
		resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("hello")}})
		if err != nil || string(resp.GetPayload().GetBody()) != "hello" {
			t.Fatalf("unary: %v, %q", err, resp.GetPayload().GetBody())
		}
	})
	t.Run("status and trailers", func(t *testing.T) {
		var trailer metadata.MD
		_, err := client.UnaryCall(ctx, &testpb.SimpleRequest{ResponseStatus: &testpb.EchoStatus{Code: int32(codes.NotFound), Message: "no such item"}},
			grpc.Trailer(&trailer))
		st, _ := status.FromError(err)
		if st.Code() != codes.NotFound || st.Message() != "no such item" {
			t.Fatalf("status = %v %q, want NotFound %q", st.Code(), st.Message(), "no such item")
		}
		if got := trailer.Get("x-trailer"); len(got) != 1 || got[0] != "kept" {
			t.Fatalf("trailer x-trailer = %v, want [kept]", got)
		}
	})
	t.Run("deadline propagates", func(t *testing.T) {
		dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
		defer dcancel()
		var trailer metadata.MD
		if _, err := client.UnaryCall(dctx, &testpb.SimpleRequest{}, grpc.Trailer(&trailer)); err != nil {
			t.Fatal(err)
		}
		got := trailer.Get("x-deadline-ms")
		if len(got) != 1 {
			t.Fatal("the server saw no deadline")
		}
		if ms, _ := strconv.Atoi(got[0]); ms <= 0 || ms > 2000 {
			t.Fatalf("server saw %s ms left; want (0, 2000]", got[0])
		}
	})
	t.Run("server streaming", func(t *testing.T) {
		stream, err := client.StreamingOutputCall(ctx, &testpb.StreamingOutputCallRequest{ResponseParameters: []*testpb.ResponseParameters{{Size: 1}, {Size: 10}, {Size: 100}, {Size: 1 << 16}}})
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, len(resp.GetPayload().GetBody()))
		}
		if fmt.Sprint(sizes) != "[1 10 100 65536]" {
			t.Fatalf("streamed sizes %v", sizes)
		}
	})
	t.Run("client streaming", func(t *testing.T) {
		stream, err := client.StreamingInputCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 10, 100, 1 << 16} {
			if err := stream.Send(&testpb.StreamingInputCallRequest{Payload: &testpb.Payload{Body: make([]byte, n)}}); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := stream.CloseAndRecv()
		if err != nil || resp.GetAggregatedPayloadSize() != 1+10+100+1<<16 {
			t.Fatalf("client streaming: %v, %d", err, resp.GetAggregatedPayloadSize())
		}
	})
	t.Run("bidirectional streaming", func(t *testing.T) {
		stream, err := client.FullDuplexCall(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 { // strictly ping-pong: each answer before the next send
			msg := []byte(strconv.Itoa(i))
			if err := stream.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: msg}}); err != nil {
				t.Fatal(err)
			}
			resp, err := stream.Recv()
			if err != nil || string(resp.GetPayload().GetBody()) != string(msg) {
				t.Fatalf("ping %d: %v %q", i, err, resp.GetPayload().GetBody())
			}
		}
		stream.CloseSend()
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("after CloseSend: %v, want EOF", err)
		}
	})
}

package router

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	gstatus "google.golang.org/grpc/status"

	"github.com/weft-mesh/weft/proxy/config"
)

type bidiSvc struct {
	testpb.UnimplementedTestServiceServer
}

func (bidiSvc) FullDuplexCall(s testpb.TestService_FullDuplexCallServer) error {
	for {
		req, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if req.GetResponseStatus() != nil {
			return gstatus.Error(codes.Aborted, "bye")
		}
		s.Send(&testpb.StreamingOutputCallResponse{Payload: req.GetPayload()})
	}
}

// TestGRPCStreamEndedByServer: a bidirectional stream the server ends
// while the client's side is still open reaches the client with its
// status at once.
func TestGRPCStreamEndedByServer(t *testing.T) {
	srv := grpc.NewServer()
	testpb.RegisterTestServiceServer(srv, bidiSvc{})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Stop()
	e := newEnv(t)
	c := staticCluster("c", ln.Addr().String())
	c.Protocol = config.HTTP2
	e.setClusters(c)
	e.routes(to("c", withTimeout(0)))
	conn, _ := grpc.NewClient("passthrough:///"+e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := testpb.NewTestServiceClient(conn).FullDuplexCall(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.Send(&testpb.StreamingOutputCallRequest{Payload: &testpb.Payload{Body: []byte("x")}})
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	st.Send(&testpb.StreamingOutputCallRequest{ResponseStatus: &testpb.EchoStatus{Code: 10}})
	_, err = st.Recv()
	if gstatus.Code(err) != codes.Aborted {
		t.Errorf("stream ended with %v, want the server's Aborted", err)
	}
}

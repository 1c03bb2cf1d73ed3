package xds

import (
	"net"
	"testing"
	"time"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeADS is a management server whose streams the test drives by hand.
type fakeADS struct {
	discoveryv3.UnimplementedAggregatedDiscoveryServiceServer
	addr    string
	streams chan *fakeStream
}

// fakeStream is one ADS stream as the server sees it.
type fakeStream struct {
	reqs  chan *discoveryv3.DiscoveryRequest
	resps chan *discoveryv3.DiscoveryResponse
	kill  chan struct{}
}

func startFakeADS(t *testing.T) *fakeADS {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeADS{addr: ln.Addr().String(), streams: make(chan *fakeStream, 10)}
	srv := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(srv, f)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return f
}

func (f *fakeADS) StreamAggregatedResources(s discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	fs := &fakeStream{
		reqs:  make(chan *discoveryv3.DiscoveryRequest, 100),
		resps: make(chan *discoveryv3.DiscoveryResponse),
		kill:  make(chan struct{}),
	}
	f.streams <- fs
	go func() {
		for {
			req, err := s.Recv()
			if err != nil {
				return
			}
			fs.reqs <- req
		}
	}()
	for {
		select {
		case resp := <-fs.resps:
			if err := s.Send(resp); err != nil {
				return err
			}
		case <-fs.kill:
			return status.Error(codes.Unavailable, "killed by test")
		case <-s.Context().Done():
			return nil
		}
	}
}

const wait = 10 * time.Second

func (f *fakeADS) nextStream(t *testing.T) *fakeStream {
	t.Helper()
	select {
	case s := <-f.streams:
		return s
	case <-time.After(wait):
		t.Fatal("no ADS stream opened")
		return nil
	}
}

func (s *fakeStream) next(t *testing.T) *discoveryv3.DiscoveryRequest {
	t.Helper()
	select {
	case r := <-s.reqs:
		return r
	case <-time.After(wait):
		t.Fatal("no DiscoveryRequest received")
		return nil
	}
}

func (s *fakeStream) send(t *testing.T, resp *discoveryv3.DiscoveryResponse) {
	t.Helper()
	select {
	case s.resps <- resp:
	case <-time.After(wait):
		t.Fatal("stream not accepting responses")
	}
}

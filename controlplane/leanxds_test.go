package controlplane

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/status"
)

// TestDeltaStreamStatus: what a delta stream ends with reaches the
// client as the same gRPC status on both transports — a status the
// server returns (a request without a type URL), after messages
// (trailers) and before any (Trailers-Only) — and the client's own end
// of the stream ends it cleanly.
func TestDeltaStreamStatus(t *testing.T) {
	forEachXDSServer(t, func(t *testing.T, server string) {
		s, src := startServerWith(t, Config{XDSServer: server})
		src <- testCatalog()
		node := &corev3.Node{Id: "web-1-sidecar-proxy"}
		tests := []struct {
			name     string
			requests []*discoveryv3.DeltaDiscoveryRequest
		}{
			{"before any response", []*discoveryv3.DeltaDiscoveryRequest{{Node: node}}},
			{"after a response", []*discoveryv3.DeltaDiscoveryRequest{{Node: node, TypeUrl: resourcev3.ListenerType}, {}}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				c := dialDelta(t, s.XDSAddr().String())
				for i, req := range tc.requests {
					c.send(req)
					if i < len(tc.requests)-1 {
						c.recv()
					}
				}
				_, err := c.stream.Recv()
				if got := status.Code(err); got != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "type URL is required") {
					t.Fatalf("stream ended with %v, want InvalidArgument: type URL is required", err)
				}
			})
		}
		t.Run("client ends its side", func(t *testing.T) {
			c := dialDelta(t, s.XDSAddr().String())
			c.send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType})
			c.recv()
			if err := c.stream.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if _, err := c.stream.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("after CloseSend the stream ended with %v, want io.EOF (status OK)", err)
			}
		})
	})
}

// TestDeltaCompressedRequests: a delta request compressed with gzip (the
// compressor grpc-go's clients offer) is read on both transports; the
// answer comes uncompressed.
func TestDeltaCompressedRequests(t *testing.T) {
	forEachXDSServer(t, func(t *testing.T, server string) {
		s, src := startServerWith(t, Config{XDSServer: server})
		src <- testCatalog()
		_, ads, ctx := xdsClient(t, s.XDSAddr().String())
		stream, err := ads.DeltaAggregatedResources(ctx, grpc.UseCompressor(grpcgzip.Name))
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "web-1-sidecar-proxy"}, TypeUrl: resourcev3.ListenerType}); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil || len(resp.Resources) != 2 {
			t.Fatalf("answer to a gzip-compressed request: %v, %d listeners; want the 2 listeners", err, len(resp.GetResources()))
		}
	})
}

// TestGunzipBoundsTheMessage: a compressed message that decompresses past
// the receive bound is refused with ResourceExhausted, and one that is
// not gzip with Internal.
func TestGunzipBoundsTheMessage(t *testing.T) {
	var big bytes.Buffer
	zw := gzip.NewWriter(&big)
	zw.Write(make([]byte, maxRecvMessage+1))
	zw.Close()
	if _, err := gunzip(big.Bytes()); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a message decompressing to %d bytes: %v, want ResourceExhausted", maxRecvMessage+1, err)
	}
	if _, err := gunzip([]byte("not gzip")); status.Code(err) != codes.Internal {
		t.Errorf("a message that is not gzip: %v, want Internal", err)
	}
}

// TestSetUserTimeout: the lean server gives accepted connections gRPC's
// keepalive wait as TCP_USER_TIMEOUT, as grpc-go does.
func TestSetUserTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	setUserTimeout(c, xdsKeepalive.Timeout)
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var gerr error
	rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT) })
	if gerr != nil || got != int(xdsKeepalive.Timeout.Milliseconds()) {
		t.Fatalf("TCP_USER_TIMEOUT = %d ms (%v), want %d", got, gerr, xdsKeepalive.Timeout.Milliseconds())
	}
}

// TestStopEndsOtherStreams: a stream of another method than delta ADS (a
// state-of-the-world ADS stream here, which its handler never ends on
// its own) does not keep the control plane from stopping: once the
// shutdown grace has passed, Run returns on both transports.
func TestStopEndsOtherStreams(t *testing.T) {
	forEachXDSServer(t, func(t *testing.T, server string) {
		s, stop := stoppableServer(t, Config{ShutdownGrace: 200 * time.Millisecond, XDSServer: server})
		_, ads, ctx := xdsClient(t, s.XDSAddr().String())
		openSotWListeners(t, ads, ctx, "web-1-sidecar-proxy")
		stop(30*time.Second, "an open state-of-the-world stream")
	})
}

// identityCompressor is a compressor by a name the lean transport does
// not read, which leaves messages as they are.
type identityCompressor struct{}

func (identityCompressor) Compress(w io.Writer) (io.WriteCloser, error) {
	return nopWriteCloser{w}, nil
}
func (identityCompressor) Decompress(r io.Reader) (io.Reader, error) { return r, nil }
func (identityCompressor) Name() string                              { return "weft-test-identity" }

// Compressors are registered before anything runs, as grpc-go requires.
func init() { encoding.RegisterCompressor(identityCompressor{}) }

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// TestLeanDeltaRefusesUnknownCompression: a delta request compressed
// other than with gzip ends the stream with Unimplemented, naming the
// compression, rather than as if the client had ended it.
func TestLeanDeltaRefusesUnknownCompression(t *testing.T) {
	s, src := startServerWith(t, Config{XDSServer: XDSServerLean})
	src <- testCatalog()
	_, ads, ctx := xdsClient(t, s.XDSAddr().String())
	stream, err := ads.DeltaAggregatedResources(ctx, grpc.UseCompressor(identityCompressor{}.Name()))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&discoveryv3.DeltaDiscoveryRequest{Node: &corev3.Node{Id: "web-1-sidecar-proxy"}, TypeUrl: resourcev3.ListenerType}); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "weft-test-identity") {
		t.Fatalf("a request compressed with an unknown compressor ended the stream with %v, want Unimplemented naming it", err)
	}
}

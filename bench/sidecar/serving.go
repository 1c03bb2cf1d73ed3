package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/weft-mesh/weft/internal/poll"
)

// waitOK waits until url answers 200.
func waitOK(url string, within time.Duration) error {
	return poll.Wait(within, "200 from "+url, func() error { return getOK(url) })
}

// waitServing waits until a request of the backend's kind succeeds
// through addr.
func waitServing(b backend, addr string, within time.Duration) error {
	return poll.Wait(within, b.String()+" through "+addr, func() error { return probe(b, addr) })
}

// probeClient opens a connection per request, so that a probe never
// reuses a connection a restarted proxy closed.
var probeClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func getOK(url string) error {
	resp, err := probeClient.Get(url)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return nil
}

// probe makes one request of the backend's kind to addr: an HTTP GET, a
// gRPC health check, or 1 KiB echoed over TCP.
func probe(b backend, addr string) error {
	switch b {
	case httpBackend:
		return getOK("http://" + addr + "/")
	case grpcBackend:
		return grpcHealthy(addr)
	}
	return echoes(addr)
}

func grpcHealthy(addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("gRPC health %s", resp.GetStatus())
	}
	return nil
}

func echoes(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	msg := bytes.Repeat([]byte("echo"), 256)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("echo from %s: %w", addr, err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo from %s differs", addr)
	}
	return nil
}

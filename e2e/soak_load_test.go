package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"
)

// The soak's load: one open-loop client per protocol, each sending at a
// fixed rate whatever the answers (a slow answer does not slow the
// sender), with no retry, through web-1's upstream listeners.
const (
	protoHTTP1 = "http1"
	protoHTTP2 = "http2"
	protoGRPC  = "grpc"
	protoTCP   = "tcp"
)

var soakProtocols = []string{protoHTTP1, protoHTTP2, protoGRPC, protoTCP}

// soakRequestTimeout bounds one request: a request that takes longer is
// a failure.
const soakRequestTimeout = 5 * time.Second

// outcome is how one request ended, as the calling app saw it.
type outcome int

const (
	outcomeOK     outcome = iota
	outcomeDenied         // refused by an intention: counted apart from failures
	outcomeFailed
)

// sample is one request of the load.
type sample struct {
	proto   string
	at      time.Duration // when it was sent, from the load's start
	took    time.Duration
	outcome outcome
	err     string
}

// sender sends one request and says how it ended.
type sender func(ctx context.Context) (outcome, error)

// soakLoad runs the open-loop clients and records every request.
type soakLoad struct {
	start time.Time
	stopc chan struct{}
	wg    sync.WaitGroup // the senders and every request in flight

	mu      sync.Mutex
	samples []sample

	// tcpIntent is what intentions say of TCP: a TCP client sees a denial
	// only as a closed connection, so one that fails while denied counts
	// as denied. After the allow is written, denials go on until it
	// reaches the sidecars, so the first TCP success ends them.
	tcpIntent atomic.Int32
}

// TCP intention states of soakLoad.tcpIntent.
const (
	tcpAllowed int32 = iota
	tcpDenied
	tcpLifting // allow written, not yet seen applied
)

// startSoakLoad starts a sender per protocol at rate requests a second.
func startSoakLoad(rate int, senders map[string]sender) *soakLoad {
	l := &soakLoad{start: time.Now(), stopc: make(chan struct{})}
	for proto, send := range senders {
		l.wg.Add(1)
		go l.run(proto, rate, send)
	}
	return l
}

// run sends at the fixed rate until stop, each request on its own
// goroutine so that the rate holds while answers are slow.
func (l *soakLoad) run(proto string, rate int, send sender) {
	defer l.wg.Done()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for {
		select {
		case <-l.stopc:
			return
		case <-tick.C:
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			l.one(proto, send)
		}()
	}
}

func (l *soakLoad) one(proto string, send sender) {
	ctx, cancel := context.WithTimeout(context.Background(), soakRequestTimeout)
	defer cancel()
	sent := time.Now()
	out, err := send(ctx)
	s := sample{proto: proto, at: sent.Sub(l.start), took: time.Since(sent), outcome: out}
	if proto == protoTCP {
		s.outcome = l.classifyTCP(out)
	}
	if err != nil {
		s.err = err.Error()
	}
	l.mu.Lock()
	l.samples = append(l.samples, s)
	l.mu.Unlock()
}

func (l *soakLoad) classifyTCP(out outcome) outcome {
	switch {
	case out == outcomeOK:
		l.tcpIntent.CompareAndSwap(tcpLifting, tcpAllowed)
	case l.tcpIntent.Load() != tcpAllowed:
		return outcomeDenied
	}
	return out
}

// stop ends the load, waits for the requests in flight and returns every
// sample; it may be called twice.
func (l *soakLoad) stop() []sample {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.samples
}

// httpSender GETs url; a 403 with x-weft-error rbac_denied is a denial.
// wantMajor is the HTTP version the answer must come in.
func httpSender(client *http.Client, url string, wantMajor int) sender {
	return func(ctx context.Context) (outcome, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return outcomeFailed, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return outcomeFailed, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		reason := resp.Header.Get("x-weft-error")
		switch {
		case err != nil:
			return outcomeFailed, err
		case resp.StatusCode == http.StatusForbidden && reason == "rbac_denied":
			return outcomeDenied, nil
		case resp.StatusCode != http.StatusOK:
			return outcomeFailed, fmt.Errorf("HTTP %d (x-weft-error %q): %s", resp.StatusCode, reason, bytes.TrimSpace(body))
		case resp.ProtoMajor != wantMajor:
			return outcomeFailed, fmt.Errorf("answered over %s, want HTTP/%d", resp.Proto, wantMajor)
		}
		return outcomeOK, nil
	}
}

// http1Client keeps connections alive, as an app's client would.
func http1Client() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
}

// h2cClient speaks HTTP/2 with prior knowledge over plain TCP, as an app
// does to its sidecar's upstream listener.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// grpcSender makes a unary call; PERMISSION_DENIED is a denial. The
// client does not retry, not even transparently.
func grpcSender(client testpb.TestServiceClient) sender {
	payload := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("soak")}}
	return func(ctx context.Context) (outcome, error) {
		resp, err := client.UnaryCall(ctx, payload)
		switch {
		case status.Code(err) == codes.PermissionDenied:
			return outcomeDenied, nil
		case err != nil:
			return outcomeFailed, err
		case string(resp.GetPayload().GetBody()) != "soak":
			return outcomeFailed, fmt.Errorf("payload %q, want soak", resp.GetPayload().GetBody())
		}
		return outcomeOK, nil
	}
}

func dialGRPC(address string) (*grpc.ClientConn, error) {
	return grpc.NewClient(address, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDisableRetry())
}

// tcpSender opens a connection per request, sends a line and reads it
// back from the echo server.
func tcpSender(address string) sender {
	msg := []byte("soak over tcp\n")
	return func(ctx context.Context) (outcome, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", address)
		if err != nil {
			return outcomeFailed, err
		}
		defer conn.Close()
		if dl, ok := ctx.Deadline(); ok {
			conn.SetDeadline(dl)
		}
		if _, err := conn.Write(msg); err != nil {
			return outcomeFailed, err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(conn, got); err != nil {
			return outcomeFailed, err
		}
		if !bytes.Equal(got, msg) {
			return outcomeFailed, fmt.Errorf("echoed %q", got)
		}
		return outcomeOK, nil
	}
}

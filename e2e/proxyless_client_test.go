package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	_ "google.golang.org/grpc/xds" // registers the xds:/// resolver and balancers
)

// proxylessClientEnv makes the test binary act as a proxyless gRPC client:
// a separate process that reads GRPC_XDS_BOOTSTRAP at start, as any
// grpc-go service does. It reads service names from stdin, one a line,
// and for each dials xds:///<service> and calls UnaryCall in a loop, until
// stdin closes or WEFT_PROXYLESS_DURATION passes. It prints one line per
// call: "<unix nanos> <service> <instance>" or
// "<unix nanos> <service> error <message>".
const proxylessClientEnv = "WEFT_PROXYLESS_CLIENT"

func runProxylessClient() int {
	d, err := time.ParseDuration(os.Getenv("WEFT_PROXYLESS_DURATION"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "WEFT_PROXYLESS_DURATION:", err)
		return 2
	}
	creds, err := xdscreds.NewClientCredentials(xdscreds.ClientOptions{FallbackCreds: insecure.NewCredentials()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out := &lineWriter{}
	var wg sync.WaitGroup
	stdin := bufio.NewScanner(os.Stdin)
	for stdin.Scan() {
		target := strings.TrimSpace(stdin.Text())
		wg.Go(func() { callLoop(ctx, target, creds, out) })
	}
	cancel()
	wg.Wait()
	return 0
}

// callLoop dials xds:///<target> and calls it until ctx ends.
func callLoop(ctx context.Context, target string, creds credentials.TransportCredentials, out *lineWriter) {
	conn, err := grpc.NewClient("xds:///"+target, grpc.WithTransportCredentials(creds))
	if err != nil {
		out.print(target, "error "+err.Error())
		return
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)
	for ctx.Err() == nil {
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := client.UnaryCall(callCtx, &testpb.SimpleRequest{}, grpc.WaitForReady(true))
		cancel()
		if err != nil {
			out.print(target, "error "+err.Error())
			// A channel whose listener does not exist fails calls at
			// once; try again when its state changes, or in 100 ms.
			waitCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			conn.WaitForStateChange(waitCtx, conn.GetState())
			cancel()
			continue
		}
		out.print(target, string(resp.GetPayload().GetBody()))
	}
}

// lineWriter prints whole lines to stdout from many goroutines.
type lineWriter struct{ mu sync.Mutex }

func (w *lineWriter) print(target, what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintln(os.Stdout, strconv.FormatInt(time.Now().UnixNano(), 10), target, strings.ReplaceAll(what, "\n", " "))
}

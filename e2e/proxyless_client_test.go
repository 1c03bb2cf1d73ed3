package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	xdscreds "google.golang.org/grpc/credentials/xds"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	_ "google.golang.org/grpc/xds" // registers the xds:/// resolver and balancers
)

// proxylessClientEnv makes the test binary act as a proxyless gRPC client:
// a separate process that reads GRPC_XDS_BOOTSTRAP at start, as any
// grpc-go service does. It dials xds:///<target> and, for the duration in
// WEFT_PROXYLESS_DURATION, calls UnaryCall in a loop, printing one line per
// call: "<unix nanos> <instance>" or "<unix nanos> error <message>".
const proxylessClientEnv = "WEFT_PROXYLESS_TARGET"

func runProxylessClient() int {
	target := os.Getenv(proxylessClientEnv)
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
	conn, err := grpc.NewClient("xds:///"+target, grpc.WithTransportCredentials(creds))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer conn.Close()
	client := testpb.NewTestServiceClient(conn)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for end := time.Now().Add(d); time.Now().Before(end); {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := client.UnaryCall(ctx, &testpb.SimpleRequest{}, grpc.WaitForReady(true))
		cancel()
		now := strconv.FormatInt(time.Now().UnixNano(), 10)
		if err != nil {
			fmt.Fprintln(out, now, "error", err)
			continue
		}
		fmt.Fprintln(out, now, string(resp.GetPayload().GetBody()))
	}
	return 0
}

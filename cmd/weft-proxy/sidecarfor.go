package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/internal/backoff"
)

// sidecarForWait bounds how long --sidecar-for waits for a registration
// the control plane does not know yet (it may have been made just before
// the sidecar started, and reach the control plane a moment later).
const sidecarForWait = 30 * time.Second

var resolveBackoff = backoff.Policy{Base: 100 * time.Millisecond, Max: 2 * time.Second, Jitter: 0.2}

// resolveSidecarFor asks the control plane which sidecar proxy is
// registered for the service instance serviceID, trying each xDS address
// in turn. It retries while the control plane is unreachable or does not
// know the instance yet (for at most sidecarForWait), and fails at once
// when the answer is final: two sidecars, or a token that may not run it.
func resolveSidecarFor(ctx context.Context, addrs []string, token, tokenFile, serviceID string, logger *slog.Logger) (string, error) {
	deadline := time.Now().Add(sidecarForWait)
	var last error
	for attempt := 0; ; attempt++ {
		addr := addrs[attempt%len(addrs)]
		id, err := askSidecarFor(ctx, addr, token, tokenFile, serviceID)
		if err == nil {
			logger.Info("resolved --sidecar-for", "service_id", serviceID, "proxy_id", id, "control_plane", addr)
			return id, nil
		}
		switch status.Code(err) {
		case codes.FailedPrecondition, codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument:
			return "", fmt.Errorf("--sidecar-for %q: %s", serviceID, status.Convert(err).Message())
		}
		last = err
		if time.Now().After(deadline) {
			break
		}
		logger.Debug("resolving --sidecar-for; retrying", "service_id", serviceID, "control_plane", addr, "error", err)
		if !backoff.Sleep(ctx, resolveBackoff.Delay(attempt)) {
			return "", ctx.Err()
		}
	}
	if status.Code(last) == codes.NotFound {
		return "", fmt.Errorf("--sidecar-for %q: %s", serviceID, status.Convert(last).Message())
	}
	return "", fmt.Errorf("--sidecar-for %q: no control plane answered within %s: %w", serviceID, sidecarForWait, last)
}

func askSidecarFor(ctx context.Context, addr, token, tokenFile, serviceID string) (string, error) {
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return "", status.Errorf(codes.InvalidArgument, "read token file: %v", err)
		}
		token = strings.TrimSpace(string(b))
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", status.Errorf(codes.InvalidArgument, "control plane address %q: %v", addr, err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-consul-token", token)
	}
	resp, err := certsv1.NewCertificateServiceClient(cc).ResolveSidecar(ctx, &certsv1.ResolveSidecarRequest{ServiceId: serviceID})
	if err != nil {
		return "", err
	}
	if resp.GetProxyId() == "" {
		return "", errors.New("the control plane named no proxy")
	}
	return resp.GetProxyId(), nil
}

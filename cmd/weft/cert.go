package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	certsv1 "github.com/weft-mesh/weft/api/certs/v1"
	"github.com/weft-mesh/weft/controlplane/bootstrap"
)

type certFlags struct {
	service, proxyID, xdsAddr, token, tokenFile, out string
	watch                                            bool
}

func newCertCommand() *cobra.Command {
	f := &certFlags{}
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Get a mesh certificate for a workload without weft-proxy (proxyless gRPC, Envoy)",
		Long: `Generate a private key here, send a CSR to the control plane's certificate
service with a Consul ACL token, and write cert.pem (leaf and
intermediates), key.pem (mode 0600) and ca.pem (the trust bundle) to --out.
The key never leaves this host. With --watch it keeps renewing at about
2/3 of each certificate's lifetime; gRPC's file_watcher certificate
provider and Envoy pick the new files up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runCert(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.service, "service", "", "the service to get an identity for (the token needs service:write on it)")
	fl.StringVar(&f.proxyID, "proxy-id", "", "instead of --service: a registered sidecar's ID (for Envoy as the sidecar)")
	fl.StringVar(&f.xdsAddr, "xds-addr", "127.0.0.1:15010", "the control plane's gRPC address")
	fl.StringVar(&f.token, "token", os.Getenv("CONSUL_HTTP_TOKEN"), "Consul ACL token (env CONSUL_HTTP_TOKEN)")
	fl.StringVar(&f.tokenFile, "token-file", os.Getenv("CONSUL_HTTP_TOKEN_FILE"), "file holding the token (env CONSUL_HTTP_TOKEN_FILE)")
	fl.StringVar(&f.out, "out", "", "directory to write cert.pem, key.pem and ca.pem into (required)")
	fl.BoolVar(&f.watch, "watch", false, "keep renewing until stopped")
	cmd.MarkFlagRequired("out")
	return cmd
}

func runCert(ctx context.Context, f *certFlags) error {
	if (f.service == "") == (f.proxyID == "") {
		return errors.New("give exactly one of --service and --proxy-id")
	}
	conn, err := grpc.NewClient(f.xdsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("control plane %s: %w", f.xdsAddr, err)
	}
	defer conn.Close()
	client := certsv1.NewCertificateServiceClient(conn)
	for {
		leaf, err := issue(ctx, client, f)
		if err != nil {
			return err
		}
		life := leaf.NotAfter.Sub(time.Now())
		fmt.Fprintf(os.Stderr, "wrote %s: %s valid until %s\n", f.out, leaf.URIs[0], leaf.NotAfter.Format(time.RFC3339))
		if !f.watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(life * 2 / 3):
		}
	}
}

// issue gets one leaf and writes the three files.
func issue(ctx context.Context, client certsv1.CertificateServiceClient, f *certFlags) (*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, err
	}
	token := f.token
	if f.tokenFile != "" {
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	callCtx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, "x-consul-token", token), 30*time.Second)
	defer cancel()
	resp, err := client.Sign(callCtx, &certsv1.SignRequest{Service: f.service, ProxyId: f.proxyID, Csr: csr})
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	leaf, err := x509.ParseCertificate(resp.GetCertificate())
	if err != nil {
		return nil, fmt.Errorf("control plane sent a bad certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(f.out, 0o700); err != nil {
		return nil, err
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{bootstrap.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600},
		{bootstrap.CertFile, pemCerts(append([][]byte{resp.GetCertificate()}, resp.GetIntermediates()...)), 0o644},
		{bootstrap.CAFile, pemCerts(resp.GetRoots()), 0o644},
	}
	for _, file := range files {
		if err := writeFileAtomic(filepath.Join(f.out, file.name), file.data, file.mode); err != nil {
			return nil, err
		}
	}
	return leaf, nil
}

func pemCerts(ders [][]byte) []byte {
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return out
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

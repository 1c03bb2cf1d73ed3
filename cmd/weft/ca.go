package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weft-mesh/weft/certs"
	"github.com/weft-mesh/weft/controlplane"
)

func newCACommand() *cobra.Command {
	var adminAddr string
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Inspect and rotate the mesh certificate authority",
	}
	cmd.PersistentFlags().StringVar(&adminAddr, "admin-addr", "127.0.0.1:15000", "the control plane's admin address")
	cmd.AddCommand(newCARootsCommand(&adminAddr), newCARotateCommand(&adminAddr), newCALeafCommand())
	return cmd
}

func newCARootsCommand(adminAddr *string) *cobra.Command {
	return &cobra.Command{
		Use:   "roots",
		Short: "Show the trust domain, rotation phase and roots of the trust bundle",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var info controlplane.CAInfo
			if err := getJSON(cmd.Context(), "http://"+*adminAddr+"/ca", &info); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "trust domain:   %s\nrotation phase: %s\n", info.TrustDomain, info.Phase)
			for _, r := range info.Roots {
				role := "trusted"
				if r.Signing {
					role = "signing"
				}
				fmt.Fprintf(out, "root [%s] %s\n  sha256 %s\n  valid  %s → %s\n", role, r.Subject, r.Fingerprint,
					r.NotBefore.Format(time.RFC3339), r.NotAfter.Format(time.RFC3339))
			}
			return nil
		},
	}
}

func newCARotateCommand(adminAddr *string) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate the root CA with no failed request",
		Long: `Rotate the root CA in three steps, each waiting for every connected sidecar:
the new root joins every trust bundle; it starts signing and every sidecar
renews its leaf under it; the old root leaves the bundles. If a step times
out, run the command again: it resumes where the rotation stands.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url := fmt.Sprintf("http://%s/ca/rotate?timeout=%s", *adminAddr, timeout)
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, url, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("rotate: %w", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				return fmt.Errorf("rotate: %s: %s", resp.Status, strings.TrimSpace(string(b)))
			}
			var last string
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				last = sc.Text()
				fmt.Fprintln(cmd.OutOrStdout(), last)
			}
			if strings.HasPrefix(last, "error:") {
				return errors.New("rotation did not finish")
			}
			return sc.Err()
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for sidecars before giving up (resumable)")
	return cmd
}

func newCALeafCommand() *cobra.Command {
	var proxyAdmin string
	cmd := &cobra.Command{
		Use:   "leaf [CERT.pem]",
		Short: "Show a leaf certificate: from a PEM file, or a running sidecar's (--proxy-admin)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if proxyAdmin != "" {
				var v any
				if err := getJSON(cmd.Context(), "http://"+proxyAdmin+"/certs", &v); err != nil {
					return err
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			if len(args) != 1 {
				return errors.New("give a PEM file or --proxy-admin HOST:PORT")
			}
			return printLeafFile(cmd.OutOrStdout(), args[0])
		},
	}
	cmd.Flags().StringVar(&proxyAdmin, "proxy-admin", "", "a weft-proxy admin address, e.g. 127.0.0.1:19000")
	return cmd
}

func printLeafFile(out io.Writer, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return fmt.Errorf("%s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	id := "none"
	if ident, err := certs.IdentityOfCert(c); err == nil {
		id = ident.String()
	} else {
		id = "invalid: " + err.Error()
	}
	fmt.Fprintf(out, "SPIFFE ID: %s\nissuer:    %s\nserial:    %s\nvalid:     %s → %s (%s left)\nsha256:    %s\n",
		id, c.Issuer, c.SerialNumber.Text(16), c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339),
		time.Until(c.NotAfter).Round(time.Second), certs.Fingerprint(c))
	return nil
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

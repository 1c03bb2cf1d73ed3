package bootstrap

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/weft-mesh/weft/controlplane/translate"
)

// GRPC describes a proxyless gRPC client to bootstrap.
type GRPC struct {
	NodeID   string // unique per client process, e.g. "proxyless/web/host-1"
	Service  string // the client's own service
	XDSAddrs []string
	// CertDir, when set, holds cert.pem, key.pem and ca.pem (written by
	// `weft cert`); the bootstrap defines the file_watcher certificate
	// provider the control plane's clusters name, for mTLS to sidecars.
	CertDir string
}

// Certificate files in a CertDir.
const (
	CertFile = "cert.pem"
	KeyFile  = "key.pem"
	CAFile   = "ca.pem"
)

// GRPCJSON renders a gRPC xDS bootstrap (gRFC A27, with A29 certificate
// providers) pointing at the control plane.
func GRPCJSON(g GRPC) ([]byte, error) {
	if g.NodeID == "" || g.Service == "" || len(g.XDSAddrs) == 0 {
		return nil, fmt.Errorf("grpc bootstrap: node ID, service and at least one xDS address are required")
	}
	type server struct {
		URI      string              `json:"server_uri"`
		Creds    []map[string]string `json:"channel_creds"`
		Features []string            `json:"server_features"`
	}
	doc := map[string]any{
		"node": map[string]any{
			"id":       g.NodeID,
			"cluster":  g.Service,
			"metadata": map[string]any{"weft.proxyless": true, "weft.service": g.Service},
			"locality": map[string]string{},
		},
	}
	var servers []server
	for _, a := range g.XDSAddrs {
		servers = append(servers, server{URI: a, Creds: []map[string]string{{"type": "insecure"}}, Features: []string{"xds_v3"}})
	}
	doc["xds_servers"] = servers
	if g.CertDir != "" {
		doc["certificate_providers"] = map[string]any{
			translate.ProxylessCertProvider: map[string]any{
				"plugin_name": "file_watcher",
				"config": map[string]string{
					"certificate_file":    filepath.Join(g.CertDir, CertFile),
					"private_key_file":    filepath.Join(g.CertDir, KeyFile),
					"ca_certificate_file": filepath.Join(g.CertDir, CAFile),
					"refresh_interval":    "60s",
				},
			},
		}
	}
	return json.MarshalIndent(doc, "", "  ")
}

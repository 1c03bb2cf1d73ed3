package cluster

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/outlier"
)

// TestOriginatesTLSOutsideTheMesh: a cluster whose TLS context presents no
// certificate (a terminating gateway's, to a linked service) speaks HTTP
// over TLS to a server outside the mesh, verifying it against the
// configured CA and its DNS name against the SNI; another CA or another
// name fails the dial.
func TestOriginatesTLSOutsideTheMesh(t *testing.T) {
	ca := pkitest.NewCA(t, "external")
	const host = "billing.example.com"
	sawClientCert := make(chan bool, 10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawClientCert <- len(r.TLS.PeerCertificates) > 0
		w.Write([]byte(r.Proto + " " + r.TLS.ServerName))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{host}})}, ClientAuth: tls.RequestClientCert}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "https://")
	external := func(caPEM []byte, sni string) *config.Cluster {
		trust, err := mtls.NewInlineCA(caPEM)
		if err != nil {
			t.Fatal(err)
		}
		return &config.Cluster{Name: "billing", ConnectTimeout: 5 * time.Second,
			Endpoints: []config.Endpoint{{Address: addr, Healthy: true, Weight: 1}},
			TLS:       &mtls.Client{SNI: sni, MinVersion: tls.VersionTLS12, Inline: trust, External: true}}
	}
	tests := []struct {
		name    string
		cfg     *config.Cluster
		want    string
		wantErr string
	}{
		{"the server's CA and name", external(ca.PEM(), host), "HTTP/1.1 " + host, ""},
		{"HTTP/2 by ALPN", withProtocol(external(ca.PEM(), host), config.Auto), "HTTP/2.0 " + host, ""},
		{"another CA", external(pkitest.NewCA(t, "other").PEM(), host), "", "unknown authority"},
		{"another name", external(ca.PEM(), "db.example.com"), "", "not db.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The mesh credentials hold no leaf at all: none is needed.
			c := newCluster(tt.cfg, Options{Credentials: mtls.Credentials{}, Clock: outlier.SystemClock{}})
			got, err := roundTrip(t, c, addr)
			switch {
			case tt.wantErr == "" && (err != nil || got != tt.want):
				t.Fatalf("round trip = %q, %v; want %q", got, err, tt.want)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("round trip = %q, %v; want an error containing %q", got, err, tt.wantErr)
			case tt.wantErr == "" && <-sawClientCert:
				t.Error("the cluster presented a client certificate")
			}
		})
	}
}

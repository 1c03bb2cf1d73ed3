package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/config"
	"github.com/weft-mesh/weft/proxy/match"
	"github.com/weft-mesh/weft/proxy/mtls"
	"github.com/weft-mesh/weft/proxy/outlier"
)

// mesh is a CA with a trust store holding it, and the web workload's leaf.
type mesh struct {
	ca    *pkitest.CA
	creds mtls.Credentials
}

func newMesh(t *testing.T) *mesh {
	t.Helper()
	ca := pkitest.NewCA(t, "root")
	b, err := mtls.ParseBundle(ca.PEM())
	if err != nil {
		t.Fatal(err)
	}
	trust := &mtls.Trust{}
	trust.Set(map[string]*mtls.Bundle{"weft-roots": b})
	return &mesh{ca: ca, creds: mtls.Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, pkitest.ID("web"))), Trust: trust}}
}

// server is an HTTPS server presenting the api identity that speaks h2
// and HTTP/1.1 and echoes the protocol and the client's SPIFFE ID.
func (m *mesh) server(t *testing.T, id string) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		peer, _ := mtls.PeerID(r.TLS)
		io.WriteString(w, r.Proto+" "+peer.String())
	}))
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{m.ca.Leaf(t, id)}, ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "https://")
}

func tlsCluster(addr, wantID string, alpn ...string) *config.Cluster {
	return &config.Cluster{Name: "api", ConnectTimeout: 5 * time.Second,
		Endpoints: []config.Endpoint{{Address: addr, Healthy: true, Weight: 1}},
		TLS: &mtls.Client{SNI: "api.default.dc1", MinVersion: tls.VersionTLS12, ALPN: alpn, TrustBundle: "weft-roots",
			PeerURISANs: []match.String{match.MustString(match.Exact, wantID, false)}}}
}

func withProtocol(c *config.Cluster, p config.Protocol) *config.Cluster {
	c.Protocol = p
	return c
}

func roundTrip(t *testing.T, c *Cluster, addr string) (string, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", c.Scheme()+"://"+addr+"/", nil)
	resp, err := c.Transport(false).RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), nil
}

func TestHTTPOverMTLSNegotiatesH2(t *testing.T) {
	m := newMesh(t)
	api := pkitest.ID("api")
	addr := m.server(t, api)
	tests := []struct {
		name string
		cfg  *config.Cluster
		want string
	}{
		{"HTTP/1.1 cluster offers only http/1.1", tlsCluster(addr, api, "h2", "http/1.1"), "HTTP/1.1 " + pkitest.ID("web")},
		{"HTTP/2 cluster", withProtocol(tlsCluster(addr, api, "http/1.1"), config.HTTP2), "HTTP/2.0 " + pkitest.ID("web")},
		{"auto negotiates h2", withProtocol(tlsCluster(addr, api), config.Auto), "HTTP/2.0 " + pkitest.ID("web")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCluster(tt.cfg, Options{Credentials: m.creds, Clock: outlier.SystemClock{}})
			if c.Scheme() != "https" {
				t.Errorf("Scheme = %q", c.Scheme())
			}
			got, err := roundTrip(t, c, addr)
			if err != nil || got != tt.want {
				t.Errorf("round trip = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestRejectsWrongUpstreamIdentity: the server's SPIFFE ID must be the one
// the control plane named, even when its DNS SAN matches the SNI.
func TestRejectsWrongUpstreamIdentity(t *testing.T) {
	m := newMesh(t)
	impostor := m.ca.Issue(t, pkitest.LeafSpec{URIs: []string{pkitest.ID("db")}, DNSNames: []string{"api.default.dc1"}})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("request reached the impostor") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{impostor}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "https://")

	c := newCluster(tlsCluster(addr, pkitest.ID("api"), "h2", "http/1.1"), Options{Credentials: m.creds, Clock: outlier.SystemClock{}})
	_, err := roundTrip(t, c, addr)
	var op *net.OpError
	if err == nil || !errors.As(err, &op) || op.Op != "dial" || !strings.Contains(err.Error(), "is not allowed") {
		t.Errorf("round trip error = %v, want a dial error about the SPIFFE ID", err)
	}
	if _, err := c.Dial(context.Background(), addr); err == nil || !strings.Contains(err.Error(), "is not allowed") {
		t.Errorf("Dial error = %v, want the SPIFFE ID rejected", err)
	}
}

func TestDialTCPOverMTLS(t *testing.T) {
	m := newMesh(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{m.ca.Leaf(t, pkitest.ID("api"))}, ClientAuth: tls.RequireAnyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c := newCluster(tlsCluster(ln.Addr().String(), pkitest.ID("api")), Options{Credentials: m.creds, Clock: outlier.SystemClock{}})
	conn, err := c.Dial(context.Background(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "ping")
	got := make([]byte, 4)
	if _, err := io.ReadFull(conn, got); err != nil || string(got) != "ping" {
		t.Errorf("echo over mTLS = %q, %v", got, err)
	}
}

func TestTransportKeptWhileTLSUnchanged(t *testing.T) {
	m := newMesh(t)
	c := newCluster(tlsCluster("127.0.0.1:1", pkitest.ID("api"), "h2"), Options{Credentials: m.creds, Clock: outlier.SystemClock{}})
	tr := c.Transport(false)
	c.update(tlsCluster("127.0.0.1:2", pkitest.ID("api"), "h2")) // equal TLS context, new pointers
	if c.Transport(false) != tr {
		t.Error("transport replaced although the TLS context is the same")
	}
	c.update(tlsCluster("127.0.0.1:2", pkitest.ID("other"), "h2"))
	if c.Transport(false) == tr {
		t.Error("transport kept although the expected SPIFFE ID changed")
	}
}

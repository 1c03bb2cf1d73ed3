package mtls

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/match"
)

const roots = "weft-roots"

var (
	web = pkitest.ID("web")
	api = pkitest.ID("api")
)

func trustOf(t *testing.T, cas ...*pkitest.CA) *Trust {
	t.Helper()
	b, err := ParseBundle(pkitest.Bundle(cas...))
	if err != nil {
		t.Fatal(err)
	}
	tr := &Trust{}
	tr.Set(map[string]*Bundle{roots: b})
	return tr
}

func serverParams() *Server {
	return &Server{
		MinVersion: tls.VersionTLS12, ALPN: []string{"h2", "http/1.1"}, RequireClientCert: true, TrustBundle: roots,
		PeerURISANs: []match.String{match.MustString(match.Prefix, "spiffe://"+pkitest.TrustDomain+"/", false)},
	}
}

func clientParams(want string) *Client {
	return &Client{SNI: "api.default.dc1", MinVersion: tls.VersionTLS12, TrustBundle: roots,
		PeerURISANs: []match.String{match.MustString(match.Exact, want, false)}}
}

// handshake runs a handshake over loopback TCP; the server writes one
// byte after its handshake so that the client receives TLS 1.3 session
// tickets.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error, cs tls.ConnectionState) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		c.SetDeadline(deadline)
		srv := tls.Server(c, server)
		defer srv.Close()
		err = srv.Handshake()
		if err == nil {
			_, err = srv.Write([]byte{1})
		}
		done <- err
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(deadline)
	cli := tls.Client(raw, client)
	defer cli.Close()
	clientErr = cli.Handshake()
	if clientErr == nil {
		_, clientErr = io.ReadFull(cli, make([]byte, 1))
		cs = cli.ConnectionState()
	}
	return <-done, clientErr, cs
}

func TestServerRejects(t *testing.T) {
	ca, foreign := pkitest.NewCA(t, "mesh"), pkitest.NewCA(t, "foreign")
	server := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, api)), Trust: trustOf(t, ca)}.ServerConfig(serverParams())
	tests := []struct {
		name    string
		cert    *tls.Certificate // nil: no client certificate
		wantErr string
	}{
		{"no client certificate", nil, "client didn't provide a certificate"},
		{"foreign CA", ptr(foreign.Leaf(t, web)), "certificate signed by unknown authority"},
		{"expired", ptr(ca.Issue(t, pkitest.LeafSpec{URIs: []string{web}, NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})), "expired"},
		{"right CA, other trust domain", ptr(ca.Leaf(t, "spiffe://evil.local/ns/default/dc/dc1/svc/web")), "is not allowed"},
		{"DNS SAN instead of URI SAN", ptr(ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{"web.default.dc1"}})), "no URI SAN"},
		{"two URI SANs", ptr(ca.Issue(t, pkitest.LeafSpec{URIs: []string{web, api}})), "more than one URI SAN"},
		{"URI SAN that is not a SPIFFE ID", ptr(ca.Issue(t, pkitest.LeafSpec{URIs: []string{"https://weft.local/web"}})), "scheme"},
		{"a CA certificate as leaf", &tls.Certificate{Certificate: [][]byte{ca.Cert.Raw}, PrivateKey: ca.Key}, "CA certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := &tls.Config{InsecureSkipVerify: true, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if tt.cert == nil {
					return &tls.Certificate{}, nil
				}
				return tt.cert, nil
			}}
			serverErr, clientErr, _ := handshake(t, server, client)
			if serverErr == nil || !strings.Contains(serverErr.Error(), tt.wantErr) {
				t.Errorf("server handshake error = %v, want one containing %q", serverErr, tt.wantErr)
			}
			if clientErr == nil {
				t.Error("client completed a handshake the server rejected")
			}
		})
	}
}

func TestServerAcceptsMeshClient(t *testing.T) {
	ca := pkitest.NewCA(t, "mesh")
	server := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, api)), Trust: trustOf(t, ca)}.ServerConfig(serverParams())
	client := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, web)), Trust: trustOf(t, ca)}.ClientConfig(clientParams(api))
	client.NextProtos = []string{"h2", "http/1.1"}
	serverErr, clientErr, cs := handshake(t, server, client)
	if serverErr != nil || clientErr != nil {
		t.Fatalf("handshake: server %v, client %v", serverErr, clientErr)
	}
	if cs.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN = %q, want h2", cs.NegotiatedProtocol)
	}
	if id, ok := PeerID(&cs); !ok || id.String() != api {
		t.Errorf("client sees peer %v, %v; want %s", id, ok, api)
	}
}

func TestServerWithoutBundleFailsHandshakes(t *testing.T) {
	ca := pkitest.NewCA(t, "mesh")
	server := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, api)), Trust: &Trust{}}.ServerConfig(serverParams())
	client := &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{ca.Leaf(t, web)}}
	serverErr, _, _ := handshake(t, server, client)
	if serverErr == nil || !strings.Contains(serverErr.Error(), `trust bundle "weft-roots" has not been received`) {
		t.Errorf("server handshake error = %v, want a missing bundle", serverErr)
	}
}

// TestClientChecksSPIFFEIDNotDNS: an upstream presenting another
// service's identity is rejected even though its DNS SAN matches the SNI.
func TestClientChecksSPIFFEIDNotDNS(t *testing.T) {
	ca, foreign := pkitest.NewCA(t, "mesh"), pkitest.NewCA(t, "foreign")
	tests := []struct {
		name    string
		cert    tls.Certificate
		wantErr string
	}{
		{"wrong SPIFFE ID, matching DNS SAN", ca.Issue(t, pkitest.LeafSpec{URIs: []string{pkitest.ID("db")}, DNSNames: []string{"api.default.dc1"}}), "is not allowed"},
		{"DNS SAN only", ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{"api.default.dc1"}}), "no URI SAN"},
		{"foreign CA with the right SPIFFE ID", foreign.Leaf(t, api), "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := &tls.Config{Certificates: []tls.Certificate{tt.cert}}
			client := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, web)), Trust: trustOf(t, ca)}.ClientConfig(clientParams(api))
			_, clientErr, _ := handshake(t, server, client)
			if clientErr == nil || !strings.Contains(clientErr.Error(), tt.wantErr) {
				t.Errorf("client handshake error = %v, want one containing %q", clientErr, tt.wantErr)
			}
		})
	}
}

// TestResumedSessionFromRemovedCAFails (RELIABILITY #7): the server
// checks a resumed session's client certificate against the bundle of the
// moment, so removing a CA ends resumptions with its certificates.
func TestResumedSessionFromRemovedCAFails(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			old, next := pkitest.NewCA(t, "old"), pkitest.NewCA(t, "new")
			trust := trustOf(t, old, next)
			server := Credentials{Leaf: pkitest.NewStaticLeaf(next.Leaf(t, api)), Trust: trust}.ServerConfig(serverParams())
			client := Credentials{Leaf: pkitest.NewStaticLeaf(old.Leaf(t, web)), Trust: trustOf(t, old, next)}.ClientConfig(clientParams(api))
			client.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			client.MaxVersion = version

			if s, c, cs := handshake(t, server, client); s != nil || c != nil || cs.DidResume {
				t.Fatalf("first handshake: server %v, client %v, resumed %v", s, c, cs.DidResume)
			}
			if s, c, cs := handshake(t, server, client); s != nil || c != nil || !cs.DidResume {
				t.Fatalf("second handshake: server %v, client %v, resumed %v; want a resumed session", s, c, cs.DidResume)
			}
			b, err := ParseBundle(pkitest.Bundle(next))
			if err != nil {
				t.Fatal(err)
			}
			trust.Set(map[string]*Bundle{roots: b})
			if s, _, _ := handshake(t, server, client); s == nil || !strings.Contains(s.Error(), "unknown authority") {
				t.Errorf("resumption after the client's CA was removed: server error %v, want unknown authority", s)
			}
		})
	}
}

func TestParseBundle(t *testing.T) {
	a, b := pkitest.NewCA(t, "a"), pkitest.NewCA(t, "b")
	got, err := ParseBundle(pkitest.Bundle(a, b))
	if err != nil || len(got.Roots) != 2 || !got.Roots[0].Equal(a.Cert) {
		t.Fatalf("ParseBundle = %v, %v; want a then b", got, err)
	}
	if info := got.Info(); info[0].Subject != "CN=a" || len(info[0].SHA256) != 64 {
		t.Errorf("Info = %+v", info)
	}
	for name, in := range map[string]string{
		"empty":       "",
		"garbage":     "not pem",
		"private key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"bad cert":    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
	} {
		if _, err := ParseBundle([]byte(in)); err == nil {
			t.Errorf("ParseBundle(%s) succeeded", name)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestMeshTLSVersionsAndSuites: the versions and TLS 1.2 cipher suites of
// mesh TLS (Consul's mesh entry) bound both ends' handshakes: a server
// taking TLS 1.3 only refuses a client capped at 1.2; a server and client
// agreeing on one 1.2 suite use it; a client offering only another suite
// is refused.
func TestMeshTLSVersionsAndSuites(t *testing.T) {
	ca := pkitest.NewCA(t, "mesh")
	serverCreds := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, api)), Trust: trustOf(t, ca)}
	clientCreds := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, web)), Trust: trustOf(t, ca)}
	gcm128 := tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
	gcm256 := tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
	tests := []struct {
		name   string
		server func(*Server)
		client func(*Client)
		ok     bool
		suite  uint16
	}{
		{name: "TLS 1.3 server, 1.2 client", server: func(s *Server) { s.MinVersion = tls.VersionTLS13 },
			client: func(c *Client) { c.MaxVersion = tls.VersionTLS12 }},
		{name: "one agreed 1.2 suite", ok: true, suite: gcm128,
			server: func(s *Server) { s.MaxVersion, s.CipherSuites = tls.VersionTLS12, []uint16{gcm128} },
			client: func(c *Client) { c.MaxVersion, c.CipherSuites = tls.VersionTLS12, []uint16{gcm256, gcm128} }},
		{name: "no common 1.2 suite",
			server: func(s *Server) { s.MaxVersion, s.CipherSuites = tls.VersionTLS12, []uint16{gcm128} },
			client: func(c *Client) { c.MaxVersion, c.CipherSuites = tls.VersionTLS12, []uint16{gcm256} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, cp := serverParams(), clientParams(api)
			tt.server(sp)
			tt.client(cp)
			serverErr, clientErr, cs := handshake(t, serverCreds.ServerConfig(sp), clientCreds.ClientConfig(cp))
			if ok := serverErr == nil && clientErr == nil; ok != tt.ok {
				t.Fatalf("handshake: server %v, client %v; want success %v", serverErr, clientErr, tt.ok)
			}
			if tt.ok && cs.CipherSuite != tt.suite {
				t.Errorf("cipher suite %s, want %s", tls.CipherSuiteName(cs.CipherSuite), tls.CipherSuiteName(tt.suite))
			}
		})
	}
}

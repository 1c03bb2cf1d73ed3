package mtls

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/match"
)

// TestServerPresentsTheNamedLeaf: a Server naming a linked service
// presents that service's leaf, looked up at each handshake; while there
// is none the handshake fails with an error naming the service.
func TestServerPresentsTheNamedLeaf(t *testing.T) {
	ca := pkitest.NewCA(t, "mesh")
	ext, gateway := pkitest.ID("ext"), pkitest.ID("tgw")
	leaves := &Leaves{}
	creds := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, gateway)), Linked: leaves, Trust: trustOf(t, ca)}
	tests := []struct {
		name    string
		leaf    string
		linked  map[string]Leaf
		wantID  string // the identity the client sees; "" for a failed handshake
		wantErr string // in the server's error
	}{
		{"own leaf", "", nil, gateway, ""},
		{"linked leaf", "ext", map[string]Leaf{"ext": pkitest.NewStaticLeaf(ca.Leaf(t, ext))}, ext, ""},
		{"linked leaf not there yet", "ext", map[string]Leaf{"db": pkitest.NewStaticLeaf(ca.Leaf(t, pkitest.ID("db")))}, "", `no leaf certificate for service "ext"`},
		{"linked manager without a leaf", "ext", map[string]Leaf{"ext": failingLeaf{}}, "", `leaf certificate of service "ext": not yet`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaves.Set(tt.linked)
			p := serverParams()
			p.Leaf = tt.leaf
			want := tt.wantID
			if want == "" {
				want = ext
			}
			client := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, web)), Trust: trustOf(t, ca)}.ClientConfig(clientParams(want))
			serverErr, clientErr, cs := handshake(t, creds.ServerConfig(p), client)
			if tt.wantID == "" {
				if serverErr == nil || !strings.Contains(serverErr.Error(), tt.wantErr) {
					t.Errorf("server handshake error = %v, want one containing %q", serverErr, tt.wantErr)
				}
				return
			}
			if serverErr != nil || clientErr != nil {
				t.Fatalf("handshake: server %v, client %v", serverErr, clientErr)
			}
			if id, ok := PeerID(&cs); !ok || id.String() != tt.wantID {
				t.Errorf("client sees %v, want %s", id, tt.wantID)
			}
		})
	}
}

// TestClientPresentsTheNamedLeaf: a mesh Client naming a linked service
// presents its leaf.
func TestClientPresentsTheNamedLeaf(t *testing.T) {
	ca := pkitest.NewCA(t, "mesh")
	ext := pkitest.ID("ext")
	leaves := &Leaves{}
	leaves.Set(map[string]Leaf{"ext": pkitest.NewStaticLeaf(ca.Leaf(t, ext))})
	server := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, api)), Trust: trustOf(t, ca)}.ServerConfig(serverParams())
	p := clientParams(api)
	p.Leaf = "ext"
	client := Credentials{Leaf: pkitest.NewStaticLeaf(ca.Leaf(t, web)), Linked: leaves, Trust: trustOf(t, ca)}.ClientConfig(p)
	var seen string
	verify := server.VerifyConnection
	server.VerifyConnection = func(cs tls.ConnectionState) error {
		if id, ok := PeerID(&cs); ok {
			seen = id.String()
		}
		return verify(cs)
	}
	if s, c, _ := handshake(t, server, client); s != nil || c != nil {
		t.Fatalf("handshake: server %v, client %v", s, c)
	}
	if seen != ext {
		t.Errorf("server saw client %q, want %s", seen, ext)
	}
}

// TestExternalClient: TLS to a server outside the mesh presents no
// certificate and verifies the server as any TLS client does: chain to the
// configured CA, DNS name against the SNI or the DNS SAN matchers.
func TestExternalClient(t *testing.T) {
	ca, other := pkitest.NewCA(t, "external"), pkitest.NewCA(t, "other")
	const name = "billing.example.com"
	inline := func(c *pkitest.CA) *InlineTrust {
		tr, err := NewInlineCA(c.PEM())
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	exact := func(s string) []match.String { return []match.String{match.MustString(match.Exact, s, false)} }
	gateway := ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{"gateway.example.com"}})
	tests := []struct {
		name    string
		cert    tls.Certificate
		trust   *InlineTrust
		sni     string
		dnsSANs []match.String
		present *tls.Certificate // the client certificate; nil for none
		wantErr string           // in the client's error; "" for success
	}{
		{"DNS SAN is the SNI", ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{name}}), inline(ca), name, nil, nil, ""},
		{"wildcard certificate", ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{"*.example.com"}}), inline(ca), name, nil, nil, ""},
		{"other CA", other.Issue(t, pkitest.LeafSpec{DNSNames: []string{name}}), inline(ca), name, nil, nil, "unknown authority"},
		{"other name", ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{"evil.example.org"}}), inline(ca), name, nil, nil, "not billing.example.com"},
		{"SPIFFE ID only", ca.Leaf(t, pkitest.ID("billing")), inline(ca), name, nil, nil, "certificate is not valid for any names"},
		{"DNS SAN matcher", ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{"db.internal"}}), inline(ca), name, exact("db.internal"), nil, ""},
		{"DNS SAN matcher, no match", ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{name}}), inline(ca), name, exact("db.internal"), nil, "match none of the subject alt names"},
		{"client certificate", ca.Issue(t, pkitest.LeafSpec{DNSNames: []string{name}}), inline(ca), name, nil, &gateway, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sawClientCert := make(chan bool, 1)
			server := &tls.Config{Certificates: []tls.Certificate{tt.cert}, ClientAuth: tls.RequestClientCert,
				VerifyConnection: func(cs tls.ConnectionState) error { sawClientCert <- len(cs.PeerCertificates) > 0; return nil }}
			p := &Client{SNI: tt.sni, MinVersion: tls.VersionTLS12, Inline: tt.trust, External: true, PeerDNSSANs: tt.dnsSANs, ExternalCert: tt.present}
			client := Credentials{}.ClientConfig(p)
			_, clientErr, _ := handshake(t, server, client)
			switch {
			case tt.wantErr == "" && clientErr != nil:
				t.Fatalf("client handshake: %v", clientErr)
			case tt.wantErr != "" && (clientErr == nil || !strings.Contains(clientErr.Error(), tt.wantErr)):
				t.Fatalf("client handshake error = %v, want one containing %q", clientErr, tt.wantErr)
			}
			select {
			case got := <-sawClientCert:
				if got != (tt.present != nil) {
					t.Errorf("the server saw a client certificate: %v, want %v", got, tt.present != nil)
				}
			default:
			}
		})
	}
}

func TestClientEqualSeesLeafAndExternal(t *testing.T) {
	base := clientParams(api)
	for name, edit := range map[string]func(*Client){
		"leaf":          func(c *Client) { c.Leaf = "ext" },
		"external":      func(c *Client) { c.External = true },
		"DNS SANs":      func(c *Client) { c.PeerDNSSANs = []match.String{match.MustString(match.Exact, "x", false)} },
		"client cert":   func(c *Client) { c.ExternalCert = &tls.Certificate{Certificate: [][]byte{{1}}} },
		"server's leaf": nil,
	} {
		if edit == nil {
			s, o := serverParams(), serverParams()
			o.Leaf = "ext"
			if s.Equal(o) {
				t.Errorf("%s: Servers presenting different leaves are Equal", name)
			}
			continue
		}
		other := clientParams(api)
		edit(other)
		if base.Equal(other) {
			t.Errorf("%s: Clients differing in it are Equal", name)
		}
	}
}

type failingLeaf struct{}

func (failingLeaf) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return nil, errNotYet
}

func (failingLeaf) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return nil, errNotYet
}

var errNotYet = errors.New("not yet")

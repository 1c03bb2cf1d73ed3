package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/pkitest"
)

// TestSPIFFETrustPairsDomainsWithRoots: under the SPIFFE validator a peer
// cluster's CA vouches only for its own trust domain, never for the local
// one; trusted_ca vouches for any.
func TestSPIFFETrustPairsDomainsWithRoots(t *testing.T) {
	local, peer := pkitest.NewCA(t, "local"), pkitest.NewCA(t, "peer")
	const localTD, peerTD = "local.consul", "peer.consul"
	id := func(td, svc string) string { return "spiffe://" + td + "/ns/default/dc/dc1/svc/" + svc }
	spiffe, err := NewSPIFFETrust(map[string][]byte{localTD: local.PEM(), peerTD: peer.PEM()})
	if err != nil {
		t.Fatal(err)
	}
	peerOnly, err := NewInlineCA(peer.PEM())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		trust   *InlineTrust
		ca      *pkitest.CA
		id      string
		wantErr string
	}{
		{"local CA, local identity", spiffe, local, id(localTD, "web"), ""},
		{"peer CA, peer identity", spiffe, peer, id(peerTD, "web"), ""},
		{"peer CA claiming a local identity", spiffe, peer, id(localTD, "admin"), "certificate signed by unknown authority"},
		{"local CA claiming a peer identity", spiffe, local, id(peerTD, "web"), "certificate signed by unknown authority"},
		{"unknown trust domain", spiffe, local, id("other.consul", "web"), `peer trust domain "other.consul" is not trusted`},
		{"trusted_ca: the peer's roots, any domain", peerOnly, peer, id(peerTD, "api"), ""},
		{"trusted_ca: the local CA is not trusted", peerOnly, local, id(peerTD, "api"), "certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leaf := tt.ca.Leaf(t, tt.id)
			cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf.Leaf}}
			got, err := verifyPeer(cs, tt.trust.bundleFor, nil, x509.ExtKeyUsageClientAuth)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("verify %s: %v", tt.id, err)
			case tt.wantErr == "" && got.String() != tt.id:
				t.Fatalf("verified as %s, want %s", got, tt.id)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("verify %s: %v; want an error containing %q", tt.id, err, tt.wantErr)
			}
		})
	}
}

func TestInlineTrustEqual(t *testing.T) {
	a, b := pkitest.NewCA(t, "a"), pkitest.NewCA(t, "b")
	mk := func(m map[string][]byte) *InlineTrust {
		tr, err := NewSPIFFETrust(m)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	x := mk(map[string][]byte{"a": a.PEM(), "b": b.PEM()})
	if !x.Equal(mk(map[string][]byte{"b": b.PEM(), "a": a.PEM()})) {
		t.Error("the same domains and roots are not Equal")
	}
	if x.Equal(mk(map[string][]byte{"a": b.PEM(), "b": a.PEM()})) {
		t.Error("swapped roots are Equal")
	}
	if _, err := NewSPIFFETrust(map[string][]byte{"a": []byte("not PEM")}); err == nil || !strings.Contains(err.Error(), `trust domain "a"`) {
		t.Errorf("bad PEM: %v, want an error naming the trust domain", err)
	}
}

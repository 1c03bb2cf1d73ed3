package mtls

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"strings"
	"testing"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/proxy/match"
)

// FuzzVerifyPeer issues leaves with fuzzed URI and DNS SANs under the
// mesh CA and checks the one rule upstream verification rests on
// (RELIABILITY #5): a peer is accepted only when its certificate carries
// exactly one URI SAN and that SAN is the SPIFFE ID the control plane
// named. DNS SANs never count.
func FuzzVerifyPeer(f *testing.F) {
	f.Add(api, "", "")
	f.Add(api+"\n"+web, "", "")
	f.Add(web, "", "api.service.consul")
	f.Add("", "", "spiffe://"+pkitest.TrustDomain+"/ns/default/dc/dc1/svc/api")
	f.Add("spiffe://"+pkitest.TrustDomain+"/ns/default/dc/dc1/svc/api/", "", "")
	f.Add("SPIFFE://"+pkitest.TrustDomain+"/ns/default/dc/dc1/svc/api", "", "")
	f.Add(api+"?x=1", api, "")
	ca := pkitest.NewCA(f, "mesh")
	b, err := ParseBundle(pkitest.Bundle(ca))
	if err != nil {
		f.Fatal(err)
	}
	want := []match.String{match.MustString(match.Exact, api, false)}
	f.Fuzz(func(t *testing.T, uris, moreURIs, dns string) {
		var sans []string
		for _, u := range strings.Split(uris+"\n"+moreURIs, "\n") {
			if u == "" {
				continue
			}
			if !ia5(u) {
				t.Skip()
			}
			if _, err := url.Parse(u); err != nil {
				t.Skip()
			}
			sans = append(sans, u)
		}
		var dnsNames []string
		if dns != "" {
			if !ia5(dns) {
				t.Skip()
			}
			dnsNames = []string{dns}
		}
		leaf, err := ca.TryIssue(pkitest.LeafSpec{URIs: sans, DNSNames: dnsNames})
		if err != nil {
			t.Skip() // not a certificate x509 can make
		}
		cs := tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf.Leaf}}
		id, err := verifyPeer(cs, func(*x509.Certificate) (*Bundle, error) { return b, nil }, want, x509.ExtKeyUsageServerAuth)
		accepted := err == nil
		shouldAccept := len(leaf.Leaf.URIs) == 1 && leaf.Leaf.URIs[0].String() == api
		if accepted != shouldAccept {
			t.Fatalf("URI SANs %q, DNS SANs %q: accepted=%v (id %v, err %v), want accepted=%v",
				sans, dnsNames, accepted, id, err, shouldAccept)
		}
		if accepted && id.String() != api {
			t.Fatalf("accepted as %s, want %s", id, api)
		}
	})
}

// ia5 reports whether s can be encoded in a certificate's SAN (IA5String).
func ia5(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

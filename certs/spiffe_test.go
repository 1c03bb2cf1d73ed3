package certs

import (
	"crypto/x509"
	"net/url"
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestParseServiceID(t *testing.T) {
	td := spiffeid.RequireTrustDomainFromString("weft.local")
	tests := []struct {
		in      string
		want    ServiceIdentity
		wantErr string
	}{
		{in: "spiffe://weft.local/ns/default/dc/dc1/svc/web", want: ServiceIdentity{td, "default", "dc1", "web"}},
		{in: "spiffe://weft.local/ns/default/dc/dc1/svc", wantErr: "want path"},
		{in: "spiffe://weft.local/ns/default/dc/dc1/agent/web", wantErr: "want path"},
		{in: "https://weft.local/ns/default/dc/dc1/svc/web", wantErr: "scheme"},
		{in: "spiffe://WEFT.local/ns/default/dc/dc1/svc/web", wantErr: "trust domain"},
		{in: "spiffe://weft.local/ns/default/dc/dc1/svc/web/extra", wantErr: "want path"},
		{in: "", wantErr: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseServiceID(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseServiceID(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			if got.String() != tt.in {
				t.Fatalf("round trip %q → %q", tt.in, got.String())
			}
		})
	}
}

func TestIdentityOfCertNeedsOneURISAN(t *testing.T) {
	u := func(s string) *url.URL { v, _ := url.Parse(s); return v }
	tests := []struct {
		name    string
		uris    []*url.URL
		wantErr bool
	}{
		{"one", []*url.URL{u("spiffe://weft.local/ns/default/dc/dc1/svc/api")}, false},
		{"none", nil, true},
		{"two", []*url.URL{u("spiffe://weft.local/ns/default/dc/dc1/svc/api"), u("spiffe://weft.local/ns/default/dc/dc1/svc/web")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := IdentityOfCert(&x509.Certificate{URIs: tt.uris})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

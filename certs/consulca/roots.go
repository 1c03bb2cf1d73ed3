package consulca

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/certs"
)

// rootList is Consul's GET /v1/connect/ca/roots answer, with the
// intermediates of each root, which the API package leaves out.
type rootList struct {
	TrustDomain string
	Roots       []struct {
		ID                string
		RootCert          string
		IntermediateCerts []string
		Active            bool
	}
}

// readRoots reads Consul's CA roots; q may hold a blocking query's index.
func readRoots(ctx context.Context, client *api.Client, q *api.QueryOptions) (*rootList, uint64, error) {
	if q == nil {
		q = &api.QueryOptions{}
	}
	var out rootList
	meta, err := client.Raw().Query("/v1/connect/ca/roots", &out, q.WithContext(ctx))
	if err != nil {
		return nil, 0, err
	}
	return &out, meta.LastIndex, nil
}

func parseRoots(raw *rootList, index uint64) (consulRoots, error) {
	out := consulRoots{index: index}
	for _, r := range raw.Roots {
		c, err := parseCert(r.RootCert)
		if err != nil {
			return consulRoots{}, fmt.Errorf("Consul CA root %q: %w", r.ID, err)
		}
		out.all = append(out.all, c)
		if r.Active {
			out.active = c
			for _, p := range r.IntermediateCerts {
				ic, err := parseCert(p)
				if err != nil {
					return consulRoots{}, fmt.Errorf("Consul CA root %q intermediate: %w", r.ID, err)
				}
				out.intermediates = append(out.intermediates, ic)
			}
		}
	}
	if out.active == nil {
		return consulRoots{}, errors.New("Consul lists no active CA root")
	}
	return out, nil
}

func parseCert(p string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

func sameCert(a, b *x509.Certificate) bool {
	return a != nil && b != nil && a.Equal(b)
}

func sameCerts(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameCert(a[i], b[i]) {
			return false
		}
	}
	return true
}

func fingerprint(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	return certs.Fingerprint(c)
}

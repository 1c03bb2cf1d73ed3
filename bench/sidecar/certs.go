package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/certs"
)

// haproxyCerts are the files of the HAProxy pair's TLS hop: a CA, and a
// certificate with its key for each side (web, the client side, presents
// its own to api, the server side, which verifies it), as two sidecars
// of different services would hold.
type haproxyCerts struct{ ca, web, api string }

// writeHAProxyCerts writes a CA and the two sides' certificates into dir.
func writeHAProxyCerts(dir string) (haproxyCerts, error) {
	td := spiffeid.RequireTrustDomainFromString("bench.local")
	ca, err := certs.NewRootCA(td, time.Now(), 24*time.Hour)
	if err != nil {
		return haproxyCerts{}, err
	}
	c := haproxyCerts{ca: filepath.Join(dir, "haproxy-ca.pem")}
	if err := os.WriteFile(c.ca, certs.EncodeCerts(ca.Root()), 0o600); err != nil {
		return haproxyCerts{}, err
	}
	for service, path := range map[string]*string{"web": &c.web, "api": &c.api} {
		*path = filepath.Join(dir, "haproxy-"+service+".pem")
		if err := writeLeaf(ca, td, service, *path); err != nil {
			return haproxyCerts{}, err
		}
	}
	return c, nil
}

// writeLeaf writes service's certificate and key, in the one file HAProxy's
// crt takes.
func writeLeaf(ca *certs.CA, td spiffeid.TrustDomain, service, path string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return err
	}
	id, err := certs.ServiceIdentity{TrustDomain: td, Namespace: "default", Datacenter: "dc1", Service: service}.ID()
	if err != nil {
		return err
	}
	leaf, err := ca.Sign(csr, id, 24*time.Hour, time.Now())
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	combined := append(certs.EncodeCerts(leaf), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	return os.WriteFile(path, combined, 0o600)
}

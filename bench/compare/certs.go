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

// haproxyCerts writes a CA and a leaf (usable as server and client cert)
// for the HAProxy pair, which talks TLS between its two hops as sidecars do.
func haproxyCerts(dir string) (caFile, pemFile string, err error) {
	td := spiffeid.RequireTrustDomainFromString("bench.local")
	ca, err := certs.NewRootCA(td, time.Now(), time.Hour)
	if err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return "", "", err
	}
	id, _ := certs.ServiceIdentity{TrustDomain: td, Namespace: "default", Datacenter: "dc1", Service: "api"}.ID()
	leaf, err := ca.Sign(csr, id, time.Hour, time.Now())
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	caFile, pemFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "leaf.pem")
	if err := os.WriteFile(caFile, certs.EncodeCerts(ca.Root()), 0o600); err != nil {
		return "", "", err
	}
	combined := append(certs.EncodeCerts(leaf), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	return caFile, pemFile, os.WriteFile(pemFile, combined, 0o600)
}

package certs

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Files of a CA directory, named like a kubernetes.io/tls Secret's keys so
// a mounted Secret is a valid CA directory.
const (
	certFile = "tls.crt"
	keyFile  = "tls.key"
)

// RootTTL is the lifetime of a generated root.
const RootTTL = 10 * 365 * 24 * time.Hour

// LoadOrCreateRoot loads the root CA persisted in dir, or generates one and
// persists it there (key mode 0600) when dir holds neither file. The stored
// root's trust domain must be td: restarting the control plane never
// changes the mesh's identity.
func LoadOrCreateRoot(dir string, td spiffeid.TrustDomain, now time.Time) (ca *CA, created bool, err error) {
	certPath, keyPath := filepath.Join(dir, certFile), filepath.Join(dir, keyFile)
	certPEM, cerr := os.ReadFile(certPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	switch {
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
		ca, err := NewRootCA(td, now, RootTTL)
		if err != nil {
			return nil, false, err
		}
		if err := ca.save(dir); err != nil {
			return nil, false, err
		}
		return ca, true, nil
	case cerr != nil:
		return nil, false, fmt.Errorf("CA directory %s: %w", dir, cerr)
	case kerr != nil:
		return nil, false, fmt.Errorf("CA directory %s: %w", dir, kerr)
	}
	ca, err = fromPEM(certPEM, keyPEM, nil, td, now)
	if err != nil {
		return nil, false, fmt.Errorf("CA directory %s: %w", dir, err)
	}
	return ca, false, nil
}

// LoadPluggedCA loads an operator's intermediate CA: its certificate and key
// and a chain file holding the certificates above it, ending with the root.
func LoadPluggedCA(certPath, keyPath, chainPath string, td spiffeid.TrustDomain, now time.Time) (*CA, error) {
	var files [3][]byte
	for i, p := range []string{certPath, keyPath, chainPath} {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("plugged CA: %w", err)
		}
		files[i] = b
	}
	ca, err := fromPEM(files[0], files[1], files[2], td, now)
	if err != nil {
		return nil, fmt.Errorf("plugged CA %s: %w", certPath, err)
	}
	return ca, nil
}

func fromPEM(certPEM, keyPEM, chainPEM []byte, td spiffeid.TrustDomain, now time.Time) (*CA, error) {
	certs, err := parseCerts(certPEM)
	if err != nil {
		return nil, err
	}
	chain, err := parseCerts(chainPEM)
	if err != nil && chainPEM != nil {
		return nil, fmt.Errorf("chain: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	all := append(certs, chain...)
	ca := &CA{trustDomain: td, cert: all[0], root: all[len(all)-1], key: key}
	if len(all) > 2 {
		ca.chain = all[1 : len(all)-1]
	}
	return ca, ca.check(now)
}

// check verifies the CA can sign: a CA certificate whose key matches,
// chaining to a self-signed root, inside its validity period.
func (ca *CA) check(now time.Time) error {
	if !ca.cert.IsCA {
		return fmt.Errorf("certificate %q is not a CA (basic constraints CA=false)", ca.cert.Subject)
	}
	pub, ok := ca.key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(ca.cert.PublicKey) {
		return fmt.Errorf("key does not match certificate %q", ca.cert.Subject)
	}
	if err := ca.root.CheckSignatureFrom(ca.root); err != nil {
		return fmt.Errorf("root %q is not self-signed: %w", ca.root.Subject, err)
	}
	inter := x509.NewCertPool()
	for _, c := range ca.chain {
		inter.AddCert(c)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.root)
	_, err := ca.cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("certificate %q does not chain to root %q: %w", ca.cert.Subject, ca.root.Subject, err)
	}
	for _, u := range ca.root.URIs {
		if u.Scheme == "spiffe" && u.Host != ca.trustDomain.Name() {
			return fmt.Errorf("root belongs to trust domain %q, configured %q: refusing to change the mesh's identity", u.Host, ca.trustDomain.Name())
		}
	}
	return nil
}

// save writes the CA's certificate and key into dir atomically.
func (ca *CA) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("CA directory: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return fmt.Errorf("marshal CA key: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, keyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, certFile), EncodeCerts(ca.cert), 0o644)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// EncodeCerts PEM-encodes certificates in order.
func EncodeCerts(certs ...*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errNoCert
	}
	return out, nil
}

func parseKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM private key found")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key type %T cannot sign", key)
	}
	return signer, nil
}

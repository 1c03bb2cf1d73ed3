package identity

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/weft-mesh/weft/internal/pkitest"
)

// issued runs a manager until it has issued a leaf, and returns the leaf
// OnIssue saw.
func issued(t *testing.T, signer *fakeSigner) *Leaf {
	t.Helper()
	got := make(chan *Leaf, 10)
	m := start(t, Options{Signer: signer, OnIssue: func(l *Leaf) { got <- l }})
	m.Want()
	select {
	case l := <-got:
		if l != m.Current() {
			t.Error("OnIssue got a leaf other than the one installed")
		}
		return l
	case <-time.After(wait):
		t.Fatal("OnIssue not called")
		return nil
	}
}

func TestRestoreInstallsASavedLeaf(t *testing.T) {
	signer := newFakeSigner(pkitest.NewCA(t, "root"), time.Hour)
	leaf := issued(t, signer)
	saved, err := MarshalLeaf(leaf)
	if err != nil {
		t.Fatal(err)
	}

	m := New(Options{Signer: signer})
	restored, err := m.Restore(saved)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if restored.Serial() != leaf.Serial() || restored.ID != leaf.ID {
		t.Errorf("restored leaf %s %s, want %s %s", restored.Serial(), restored.ID, leaf.Serial(), leaf.ID)
	}
	cert, err := m.GetCertificate(nil)
	if err != nil || !bytes.Equal(cert.Certificate[0], leaf.Cert.Certificate[0]) {
		t.Fatalf("GetCertificate after Restore = %v, %v", cert, err)
	}
	if !cert.PrivateKey.(*ecdsa.PrivateKey).Equal(leaf.Cert.PrivateKey) {
		t.Error("restored private key differs from the issued one")
	}
	if st := m.Status(); st.Renewals != 0 || st.Leaf == nil || st.Leaf.RenewAt.IsZero() {
		t.Errorf("Status after Restore = %+v, want the leaf, a renewal time, and no renewal counted", st)
	}
	if n := signer.calls.Load(); n != 1 {
		t.Errorf("signer called %d times, want once (Restore must not sign)", n)
	}
}

func TestRestoreRefuses(t *testing.T) {
	ca := pkitest.NewCA(t, "root")
	signer := newFakeSigner(ca, time.Hour)
	good, err := MarshalLeaf(issued(t, signer))
	if err != nil {
		t.Fatal(err)
	}
	other, err := MarshalLeaf(issued(t, signer))
	if err != nil {
		t.Fatal(err)
	}
	blocks := func(b []byte) (certs, keys [][]byte) {
		for rest := b; ; {
			var blk *pem.Block
			if blk, rest = pem.Decode(rest); blk == nil {
				return certs, keys
			}
			enc := pem.EncodeToMemory(blk)
			if blk.Type == pemPrivateKey {
				keys = append(keys, enc)
			} else {
				certs = append(certs, enc)
			}
		}
	}
	goodCerts, goodKeys := blocks(good)
	_, otherKeys := blocks(other)
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	tests := []struct {
		name    string
		saved   []byte
		now     time.Time
		wantErr string
	}{
		{"expired", good, time.Now().Add(2 * time.Hour), "not valid now"},
		{"key of another leaf", join(goodCerts[0], otherKeys[0]), time.Time{}, "does not carry the CSR's public key"},
		{"no key", goodCerts[0], time.Time{}, "want at least one CERTIFICATE and a PRIVATE KEY"},
		{"no certificate", goodKeys[0], time.Time{}, "want at least one CERTIFICATE and a PRIVATE KEY"},
		{"two keys", join(good, otherKeys[0]), time.Time{}, "two private keys"},
		{"garbage", []byte("not PEM at all"), time.Time{}, "want at least one CERTIFICATE"},
		{"foreign block", join(good, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1}})), time.Time{}, `unexpected PEM block "RSA PRIVATE KEY"`},
		{"corrupt key", join(goodCerts[0], pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: []byte{1, 2}})), time.Time{}, "private key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{Signer: signer}
			if !tt.now.IsZero() {
				opts.Now = func() time.Time { return tt.now }
			}
			m := New(opts)
			if _, err := m.Restore(tt.saved); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Restore error = %v, want one containing %q", err, tt.wantErr)
			}
			if m.HasLeaf() {
				t.Error("a refused leaf was installed")
			}
		})
	}
}

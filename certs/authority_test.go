package certs

import (
	"crypto/x509"
	"testing"
	"time"
)

func TestAuthorityRotation(t *testing.T) {
	dir := t.TempDir()
	open := func() *Authority {
		a, err := OpenAuthority(AuthorityConfig{TrustDomain: testTD, Dir: dir, LeafTTL: time.Hour, Now: func() time.Time { return testNow }})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := open()
	oldRoot := a.ActiveRoot()
	signedBy := func(a *Authority, root *x509.Certificate) {
		t.Helper()
		leaf, _, err := a.Sign(csrFor(t, p256(t)), webID(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := leaf.CheckSignatureFrom(root); err != nil {
			t.Fatalf("leaf not signed by %s: %v", root.Subject, err)
		}
	}
	bundle := func(a *Authority, want ...*x509.Certificate) {
		t.Helper()
		got := a.Bundle()
		if len(got) != len(want) {
			t.Fatalf("bundle has %d roots, want %d", len(got), len(want))
		}
		for i := range want {
			if !got[i].Equal(want[i]) {
				t.Fatalf("bundle[%d] = %s, want %s", i, got[i].Subject, want[i].Subject)
			}
		}
	}

	if err := a.AddRoot(); err != nil {
		t.Fatal(err)
	}
	<-a.Changes()
	newRoot := a.Bundle()[1]
	bundle(a, oldRoot, newRoot)
	signedBy(a, oldRoot)
	if a.Phase() != PhaseAdding {
		t.Fatalf("phase %s, want adding", a.Phase())
	}
	bundle(open(), oldRoot, newRoot) // a restart resumes the rotation

	if err := a.SwitchRoot(); err != nil {
		t.Fatal(err)
	}
	bundle(a, newRoot, oldRoot)
	signedBy(a, newRoot)
	bundle(open(), newRoot, oldRoot)

	if err := a.RetireOld(); err != nil {
		t.Fatal(err)
	}
	bundle(a, newRoot)
	restarted := open()
	bundle(restarted, newRoot)
	signedBy(restarted, newRoot)
	if restarted.Phase() != PhaseStable {
		t.Fatalf("phase after retire %s, want stable", restarted.Phase())
	}
}

func TestAuthorityRejectsShortTTL(t *testing.T) {
	if _, err := OpenAuthority(AuthorityConfig{TrustDomain: testTD, Dir: t.TempDir(), LeafTTL: time.Second}); err == nil {
		t.Fatal("a 1 s leaf TTL must be rejected")
	}
}

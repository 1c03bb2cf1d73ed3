package controlplane

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/weft-mesh/weft/certs"
)

// RootRotator is the part of certs.Authority that rotates the root.
type RootRotator interface {
	Phase() string
	ActiveRoot() *x509.Certificate
	AddRoot() error
	SwitchRoot() error
	RetireOld() error
}

// rotateRoot drives a root rotation to its end from whatever phase it is
// in, waiting at each step for every connected proxy so that no request
// fails: (1) the new root joins every bundle; (2) it starts signing and
// every proxy gets a leaf under it; (3) the old root leaves the bundles.
// progress receives a line per step. It is safe to run again after a
// timeout: it resumes where the rotation stands.
func (s *Server) rotateRoot(ctx context.Context, progress func(string)) error {
	rot, ok := s.cfg.Authority.(RootRotator)
	if !ok {
		return errors.New("this control plane's CA cannot rotate its root")
	}
	for {
		switch phase := rot.Phase(); phase {
		case certs.PhaseStable:
			if err := s.rotationStep(ctx, progress, "adding a new root to every trust bundle", rot.AddRoot, s.bundlesAcked); err != nil {
				return err
			}
		case certs.PhaseAdding:
			if err := s.rotationStep(ctx, progress, "signing with the new root; sidecars renew their leaves", rot.SwitchRoot,
				func(before map[string]string) []string {
					return append(s.bundlesAcked(before), s.leavesUnder(rot.ActiveRoot())...)
				}); err != nil {
				return err
			}
		case certs.PhaseSwitched:
			// A CA shared with Consul keeps the old root in the bundle while
			// Consul still lists it (certs/consulca): then there is nothing
			// new to send, and nothing to wait for.
			bundle := bundleKey(s.cfg.Authority.Bundle())
			lagging := func(before map[string]string) []string {
				if bundleKey(s.cfg.Authority.Bundle()) == bundle {
					return nil
				}
				return s.bundlesAcked(before)
			}
			if err := s.rotationStep(ctx, progress, "retiring the old root from every trust bundle", rot.RetireOld, lagging); err != nil {
				return err
			}
			progress(fmt.Sprintf("done: root %s signs every leaf", certs.Fingerprint(rot.ActiveRoot())[:16]))
			return nil
		default:
			return fmt.Errorf("unknown rotation phase %q", phase)
		}
	}
}

// rotationStep applies one change and waits until lagging(before) lists
// no proxy, where before is every proxy's bundle version before the change.
func (s *Server) rotationStep(ctx context.Context, progress func(string), what string, apply func() error, lagging func(map[string]string) []string) error {
	before := map[string]string{}
	for id := range s.status.ackedVersions(resource.SecretType) {
		before[id] = s.publisher.secretVersion(id)
	}
	progress(what)
	if err := apply(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		waiting := lagging(before)
		if len(waiting) == 0 {
			progress("  every connected proxy is up to date")
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: still waiting for %v: %w (run the rotation again to resume)", what, waiting, ctx.Err())
		case <-tick.C:
		}
	}
}

// bundleKey identifies a trust bundle by its roots' fingerprints.
func bundleKey(roots []*x509.Certificate) string {
	var b strings.Builder
	for _, r := range roots {
		b.WriteString(certs.Fingerprint(r))
	}
	return b.String()
}

// bundlesAcked lists connected proxies that have not yet ACKed a trust
// bundle newer than the one they had before.
func (s *Server) bundlesAcked(before map[string]string) []string {
	var lag []string
	for id, acked := range s.status.ackedVersions(resource.SecretType) {
		published := s.publisher.secretVersion(id)
		if published == "" || published == before[id] || acked != published {
			lag = append(lag, id+" (trust bundle)")
		}
	}
	sort.Strings(lag)
	return lag
}

// leavesUnder lists connected proxies whose newest leaf is not under root.
func (s *Server) leavesUnder(root *x509.Certificate) []string {
	want := certs.Fingerprint(root)
	var lag []string
	for id := range s.status.ackedVersions(resource.SecretType) {
		if s.certs.issuedRoot(id) != want {
			lag = append(lag, id+" (leaf)")
		}
	}
	return lag
}

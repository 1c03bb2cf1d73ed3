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
			if err := s.rotationStep(ctx, progress, "adding a new root to every trust bundle", rot.AddRoot, s.bundlesLagging); err != nil {
				return err
			}
		case certs.PhaseAdding:
			if err := s.rotationStep(ctx, progress, "signing with the new root; sidecars renew their leaves", rot.SwitchRoot,
				func(before map[string]string, limit int) []string {
					lag := s.bundlesLagging(before, limit)
					return append(lag, s.leavesLagging(rot.ActiveRoot(), limit-len(lag))...)
				}); err != nil {
				return err
			}
		case certs.PhaseSwitched:
			// A CA shared with Consul keeps the old root in the bundle while
			// Consul still lists it (certs/consulca): then there is nothing
			// new to send, and nothing to wait for.
			bundle := bundleKey(s.cfg.Authority.Bundle())
			lagging := func(before map[string]string, limit int) []string {
				if bundleKey(s.cfg.Authority.Bundle()) == bundle {
					return nil
				}
				return s.bundlesLagging(before, limit)
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

// laggingFunc lists up to limit connected proxies a rotation step still
// waits for, as "<id> (<what>)"; before is every proxy's bundle version
// before the step.
type laggingFunc func(before map[string]string, limit int) []string

// rotationStep applies one change and waits until lagging lists no proxy.
// Each check stops at the first proxy that lags: at 10,000 sidecars a
// check of them all, ten times a second, was a tenth of the control
// plane's CPU while a rotation ran. Only a timeout lists the laggards.
func (s *Server) rotationStep(ctx context.Context, progress func(string), what string, apply func() error, lagging laggingFunc) error {
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
		if len(lagging(before, 1)) == 0 {
			progress("  every connected proxy is up to date")
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: still waiting for %s: %w (run the rotation again to resume)", what, laggards(lagging(before, -1)), ctx.Err())
		case <-tick.C:
		}
	}
}

// laggardsShown is how many laggards a timeout names.
const laggardsShown = 20

// laggards names the first laggardsShown of lag, sorted, and counts the rest.
func laggards(lag []string) string {
	sort.Strings(lag)
	if len(lag) <= laggardsShown {
		return fmt.Sprint(lag)
	}
	return fmt.Sprintf("%v and %d more", lag[:laggardsShown], len(lag)-laggardsShown)
}

// bundlesLagging lists up to limit (negative: no limit) connected proxies
// that have not yet ACKed a trust bundle newer than the one they had
// before.
func (s *Server) bundlesLagging(before map[string]string, limit int) []string {
	var lag []string
	s.status.eachAcked(resource.SecretType, func(id, acked string) bool {
		published := s.publisher.secretVersion(id)
		if published == "" || published == before[id] || acked != published {
			lag = append(lag, id+" (trust bundle)")
		}
		return limit < 0 || len(lag) < limit
	})
	return lag
}

// leavesLagging lists up to limit (negative: no limit; 0: none) connected
// proxies whose newest leaf is not under root.
func (s *Server) leavesLagging(root *x509.Certificate, limit int) []string {
	if limit == 0 {
		return nil
	}
	want := certs.Fingerprint(root)
	var lag []string
	s.status.eachAcked(resource.SecretType, func(id, _ string) bool {
		if s.certs.issuedRoot(id) != want {
			lag = append(lag, id+" (leaf)")
		}
		return limit < 0 || len(lag) < limit
	})
	return lag
}

// bundleKey identifies a trust bundle by its roots' fingerprints.
func bundleKey(roots []*x509.Certificate) string {
	var b strings.Builder
	for _, r := range roots {
		b.WriteString(certs.Fingerprint(r))
	}
	return b.String()
}

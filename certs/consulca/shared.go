// Package consulca shares one CA between Weft and Consul's Connect CA, so
// that Weft sidecars and proxies Consul configures (Envoy under `consul
// connect envoy`, `consul connect proxy`, Consul's gateways) trust each
// other's leaves.
//
// Weft's root becomes the root of Consul's built-in CA provider: Weft
// writes its root certificate and private key into Consul's CA
// configuration (PUT /v1/connect/ca/configuration, which needs
// operator:write). From then on:
//   - the trust domain and the SPIFFE IDs are Consul's (<cluster>.consul,
//     spiffe://<trust domain>/ns/default/dc/<dc>/svc/<service>), for both;
//   - Consul signs its proxies' leaves with that key (its agents generate
//     those proxies' keys, as always), and Weft's control plane signs Weft
//     sidecars' CSRs with the same key: sidecar keys never leave the
//     sidecars;
//   - the trust bundle Weft sends is Consul's roots (GET
//     /v1/connect/ca/roots, watched) plus a root a Weft rotation is adding.
//
// Key custody: the root private key is in Weft's CA directory and in
// Consul's servers' state (the built-in provider keeps its key there, as
// it does for a key Consul generates itself). Only Weft's control plane
// and Consul's servers hold it.
//
// Rotation is driven by Weft (`weft ca rotate`), in Weft's three steps:
// the new root first joins Weft's bundles; then it is written into
// Consul's CA configuration, which makes it Consul's active root (Consul
// keeps the old root listed and cross-signs the new one) and Weft signs
// with it; last, Weft drops the old root from its own list (Consul
// prunes it from its roots later; until then it stays in the bundle).
// A root made active in Consul by other means is one Weft holds no key
// for: Weft then refuses to sign (the error says why) until `weft ca
// rotate` makes a root it holds active again.
//
// An existing Weft mesh (Config.Legacy: its own root and trust domain)
// moves over as a rotation from its root, accepting both trust domains
// meanwhile (see moveFile).
package consulca

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/weft-mesh/weft/certs"
	"github.com/weft-mesh/weft/internal/backoff"
)

// Config configures a Shared CA.
type Config struct {
	Client *api.Client
	// Dir persists Weft's roots and rotation state (as certs.Authority).
	Dir     string
	LeafTTL time.Duration
	Logger  *slog.Logger
	// Legacy is the CA of an existing Weft mesh moving to the shared CA
	// (its own trust domain and root); nil for a new mesh. See Switching.
	Legacy *certs.Authority
}

// Shared is the CA Weft shares with Consul. It is safe for concurrent use.
type Shared struct {
	cfg  Config
	auth *certs.Authority
	td   spiffeid.TrustDomain

	mu     sync.Mutex
	roots  consulRoots
	notify chan struct{}
	// move is where the switch of an existing mesh stands: moveAdding,
	// moveSwitched, or "" when there is none (left) to make.
	move string
}

// consulRoots is what Consul's CA roots endpoint says.
type consulRoots struct {
	index  uint64
	active *x509.Certificate
	// intermediates of the active root, e.g. the cross-signed certificate
	// that lets peers trusting the previous root verify the new one.
	intermediates []*x509.Certificate
	all           []*x509.Certificate
}

var rootsBackoff = backoff.Policy{Base: 250 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.5}

// Open reads Consul's trust domain and roots, opens Weft's roots for that
// trust domain in cfg.Dir (creating one on first start) and, when
// Consul's active root is not Weft's, writes Weft's into Consul's CA
// configuration and waits until Consul uses it.
func Open(ctx context.Context, cfg Config) (*Shared, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("component", "consul-ca")
	raw, _, err := readRoots(ctx, cfg.Client, nil)
	if err != nil {
		return nil, fmt.Errorf("read Consul's CA roots: %w", err)
	}
	td, err := spiffeid.TrustDomainFromString(raw.TrustDomain)
	if err != nil {
		return nil, fmt.Errorf("Consul's trust domain %q: %w", raw.TrustDomain, err)
	}
	auth, err := certs.OpenAuthority(certs.AuthorityConfig{TrustDomain: td, Dir: cfg.Dir, LeafTTL: cfg.LeafTTL})
	if err != nil {
		return nil, err
	}
	s := &Shared{cfg: cfg, auth: auth, td: td, notify: make(chan struct{}, 1)}
	if s.move, err = loadMove(cfg); err != nil {
		return nil, err
	}
	if s.move != "" {
		cfg.Logger.Info("moving the mesh to Consul's trust domain: run weft ca rotate to finish", "from", cfg.Legacy.TrustDomain().String(),
			"to", td.String(), "step", s.move)
	}
	roots, err := parseRoots(raw, 0)
	if err != nil {
		return nil, err
	}
	s.roots = roots
	if !sameCert(roots.active, auth.ActiveRoot()) {
		cfg.Logger.Warn("making Weft's root the root of Consul's Connect CA", "trust_domain", td.String(),
			"consul_active_root", fingerprint(roots.active), "weft_root", certs.Fingerprint(auth.ActiveRoot()))
		if err := s.writeConsulCA(ctx, false); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Run watches Consul's roots until ctx ends, telling Changes about every
// change, and forwards the changes of Weft's own roots.
func (s *Shared) Run(ctx context.Context) error {
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.auth.Changes():
				s.changed()
			}
		}
	}()
	failures := 0
	for {
		s.mu.Lock()
		index := s.roots.index
		s.mu.Unlock()
		raw, last, err := readRoots(ctx, s.cfg.Client, &api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Minute})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			err = s.apply(raw, last)
		}
		if err != nil {
			s.cfg.Logger.Warn("watch Consul's CA roots; retrying", "error", err)
			if !backoff.Sleep(ctx, rootsBackoff.Delay(failures)) {
				return ctx.Err()
			}
			failures++
			continue
		}
		failures = 0
	}
}

func (s *Shared) apply(raw *rootList, index uint64) error {
	roots, err := parseRoots(raw, index)
	if err != nil {
		return err
	}
	if raw.TrustDomain != s.td.String() {
		return fmt.Errorf("Consul's trust domain changed from %s to %s: restart the control plane", s.td, raw.TrustDomain)
	}
	s.mu.Lock()
	changed := !sameCert(roots.active, s.roots.active) || len(roots.all) != len(s.roots.all) || !sameCerts(roots.intermediates, s.roots.intermediates)
	s.roots = roots
	s.mu.Unlock()
	if changed {
		s.cfg.Logger.Info("Consul's CA roots changed", "active", fingerprint(roots.active), "roots", len(roots.all))
		s.changed()
	}
	return nil
}

func (s *Shared) changed() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Changes receives a value after every change of the bundle or signer.
func (s *Shared) Changes() <-chan struct{} { return s.notify }

// TrustDomain is Consul's trust domain, or the legacy mesh's until a
// switch makes Consul's sign.
func (s *Shared) TrustDomain() spiffeid.TrustDomain {
	if s.moveStep() == moveAdding {
		return s.cfg.Legacy.TrustDomain()
	}
	return s.td
}

// TrustDomainAliases is the other trust domain whose identities are
// accepted while a switch is under way.
func (s *Shared) TrustDomainAliases() []spiffeid.TrustDomain {
	switch s.moveStep() {
	case moveAdding:
		return []spiffeid.TrustDomain{s.td}
	case moveSwitched:
		return []spiffeid.TrustDomain{s.cfg.Legacy.TrustDomain()}
	}
	return nil
}

// Sign issues a leaf for id with Weft's key of Consul's active root, and
// adds Consul's intermediates of that root (the cross-signed certificate
// after a rotation) to the chain. The CSR's DNS names must be among
// allowedDNS (see certs.CA.Sign).
func (s *Shared) Sign(csrDER []byte, id spiffeid.ID, allowedDNS []string) (*x509.Certificate, []*x509.Certificate, error) {
	if s.moveStep() == moveAdding {
		return s.cfg.Legacy.Sign(csrDER, id, allowedDNS)
	}
	s.mu.Lock()
	roots := s.roots
	s.mu.Unlock()
	if !sameCert(roots.active, s.auth.ActiveRoot()) {
		return nil, nil, fmt.Errorf("Consul's active CA root %s is not one Weft holds the key of (was Consul's CA rotated outside Weft?): run weft ca rotate to make a Weft root active again",
			fingerprint(roots.active))
	}
	leaf, chain, err := s.auth.Sign(csrDER, id, allowedDNS)
	if err != nil {
		return nil, nil, err
	}
	return leaf, append(chain, roots.intermediates...), nil
}

// Bundle is Consul's active root first, then a root Weft's rotation is
// adding, Weft's previous roots and every other root Consul lists.
func (s *Shared) Bundle() []*x509.Certificate {
	s.mu.Lock()
	roots := s.roots
	s.mu.Unlock()
	var out []*x509.Certificate
	add := func(c *x509.Certificate) {
		if c == nil {
			return
		}
		for _, have := range out {
			if sameCert(have, c) {
				return
			}
		}
		out = append(out, c)
	}
	move := s.moveStep()
	if move == moveAdding {
		for _, c := range s.cfg.Legacy.Bundle() {
			add(c)
		}
	}
	add(roots.active)
	for _, c := range s.auth.Bundle() {
		add(c)
	}
	for _, c := range roots.all {
		add(c)
	}
	if move == moveSwitched {
		for _, c := range s.cfg.Legacy.Bundle() {
			add(c)
		}
	}
	return out
}

// The root rotation steps, for controlplane's rotation (RootRotator).

// Phase is where Weft's rotation, or the switch of an existing mesh to
// the shared CA, stands: a switch is a rotation from the legacy root.
func (s *Shared) Phase() string {
	switch s.moveStep() {
	case moveAdding:
		return certs.PhaseAdding
	case moveSwitched:
		return certs.PhaseSwitched
	}
	return s.auth.Phase()
}

// ActiveRoot is the root Weft signs with.
func (s *Shared) ActiveRoot() *x509.Certificate {
	if s.moveStep() == moveAdding {
		return s.cfg.Legacy.ActiveRoot()
	}
	return s.auth.ActiveRoot()
}

// AddRoot adds a new root to Weft's bundles; Consul does not know it yet.
func (s *Shared) AddRoot() error { return s.auth.AddRoot() }

// SwitchRoot makes the new root Consul's active root, waits until Consul
// reports it, then signs with it.
func (s *Shared) SwitchRoot() error {
	if s.moveStep() == moveAdding {
		return s.setMove(moveSwitched)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.writeConsulCA(ctx, true); err != nil {
		return err
	}
	return s.auth.SwitchRoot()
}

// RetireOld drops Weft's previous roots; roots Consul still lists stay in
// the bundle until Consul prunes them.
func (s *Shared) RetireOld() error {
	if s.moveStep() == moveSwitched {
		return s.setMove(moveDone)
	}
	return s.auth.RetireOld()
}

// writeConsulCA writes Weft's active root (or, with next, the root a
// rotation added) and its key into Consul's CA configuration, keeping
// Consul's other settings, and waits until Consul's roots name it active.
func (s *Shared) writeConsulCA(ctx context.Context, next bool) error {
	certPEM, keyPEM, err := s.auth.SignerPEM(next)
	if err != nil {
		return err
	}
	want := s.auth.ActiveRoot()
	if next {
		want = s.auth.NextRoot()
	}
	conf, _, err := s.cfg.Client.Connect().CAGetConfig((&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		return fmt.Errorf("read Consul's CA configuration: %w", err)
	}
	if conf.Provider != "" && conf.Provider != "consul" {
		return fmt.Errorf("Consul's CA provider is %q: sharing the CA needs its built-in provider (\"consul\")", conf.Provider)
	}
	settings := map[string]any{}
	for k, v := range conf.Config {
		settings[k] = v
	}
	settings["PrivateKey"], settings["RootCert"] = string(keyPEM), string(certPEM)
	update := &api.CAConfig{Provider: "consul", Config: settings, ForceWithoutCrossSigning: false}
	if _, err := s.cfg.Client.Connect().CASetConfig(update, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
		return fmt.Errorf("write Weft's root into Consul's CA configuration (needs operator:write): %w", err)
	}
	for attempt := 0; ; attempt++ {
		raw, last, err := readRoots(ctx, s.cfg.Client, nil)
		if err == nil {
			if err := s.apply(raw, last); err != nil {
				return err
			}
			s.mu.Lock()
			active := s.roots.active
			s.mu.Unlock()
			if sameCert(active, want) {
				s.cfg.Logger.Info("Consul's Connect CA signs with Weft's root", "root", certs.Fingerprint(want))
				return nil
			}
		}
		if !backoff.Sleep(ctx, rootsBackoff.Delay(attempt)) {
			return fmt.Errorf("Consul did not make root %s active: %w", certs.Fingerprint(want), ctx.Err())
		}
	}
}

package config

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"github.com/weft-mesh/weft/proxy/mtls"
)

// splitSecrets sorts the compiled SDS secrets by kind: trust bundles and
// certificates, by name.
func splitSecrets(secrets map[string]compiledSecret) (map[string]*mtls.Bundle, map[string]*tls.Certificate) {
	bundles := make(map[string]*mtls.Bundle, len(secrets))
	certs := make(map[string]*tls.Certificate)
	for name, s := range secrets {
		if s.cert != nil {
			certs[name] = s.cert
		} else {
			bundles[name] = s.bundle
		}
	}
	return bundles, certs
}

// checkSecretKinds rejects a secret received as one kind and referenced
// as the other: a trust bundle presented as a certificate, or a
// certificate named as a trust bundle. Either would fail every handshake
// while looking configured.
func checkSecretKinds(rt *Runtime) []error {
	var errs []error
	for _, l := range allChains(rt.Listeners) {
		if l.TLS == nil {
			continue
		}
		for _, name := range l.TLS.Certificates {
			if rt.Secrets[name] != nil {
				errs = append(errs, fmt.Errorf("listener %q: secret %q is a trust bundle (validation_context); it is presented as a certificate", l.Name, name))
			}
		}
		if name := l.TLS.TrustBundle; name != "" && l.TLS.Inline == nil && rt.Certificates[name] != nil {
			errs = append(errs, fmt.Errorf("listener %q: secret %q is a certificate (tls_certificate); it is named as a trust bundle", l.Name, name))
		}
	}
	var clusterErrs namedErrors
	for name, c := range rt.Clusters {
		if b := trustBundleOf(c); b != "" && c.TLS.Inline == nil && rt.Certificates[b] != nil {
			clusterErrs.add(name, 0, fmt.Errorf("cluster %q: secret %q is a certificate (tls_certificate); it is named as a trust bundle", name, b))
		}
	}
	return append(errs, clusterErrs.sorted()...)
}

// namedErrors collects errors about resources met in map order, to be
// returned in the order of the resources' names (then of an index within
// one): a check over every cluster need not sort their names each time,
// only its errors, which are rare.
type namedErrors []namedError

type namedError struct {
	name  string
	index int
	err   error
}

func (e *namedErrors) add(name string, index int, err error) {
	*e = append(*e, namedError{name, index, err})
}

func (e namedErrors) sorted() []error {
	slices.SortFunc(e, func(a, b namedError) int {
		return cmp.Or(strings.Compare(a.name, b.name), cmp.Compare(a.index, b.index))
	})
	errs := make([]error, len(e))
	for i, ne := range e {
		errs[i] = ne.err
	}
	return errs
}

// MissingCertificates lists, in order, the certificates over SDS that l
// or one of its filter chains presents and rt has not received. As Envoy
// warms a listener until its secrets arrive, a listener that misses one
// is not served: it is bound once none is missing, and a running one
// keeps its previous configuration meanwhile.
func (rt *Runtime) MissingCertificates(l *Listener) []string {
	var missing []string
	for _, chain := range allChains([]*Listener{l}) {
		if chain.TLS == nil {
			continue
		}
		for _, name := range chain.TLS.Certificates {
			if rt.Certificates[name] == nil && !slices.Contains(missing, name) {
				missing = append(missing, name)
			}
		}
	}
	return missing
}

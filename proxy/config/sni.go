package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"

	"github.com/weft-mesh/weft/proxy/route"
)

const tlsInspectorFilterName = "envoy.filters.listener.tls_inspector"

var tlsInspectorType = typeURL(&tlsinspectorv3.TlsInspector{})

// SNIRouter is the compiled filter chains of a listener with the
// tls_inspector listener filter whose chains match on server_names: a mesh
// or terminating gateway's listener. A connection's TLS ClientHello is
// read first; its server name selects a tcp_proxy chain. A chain without
// TLS passes the bytes, ClientHello included, through untouched, so a mesh
// gateway never holds a key nor sees plaintext. A chain with TLS (a
// terminating gateway's, presenting a linked service's leaf) answers the
// ClientHello with its handshake, then runs its network RBAC on the
// peer's identity, as an inbound listener does. It is immutable; Match is
// safe for concurrent use and does not allocate.
type SNIRouter struct {
	// Chains are every filter chain, in order, then the default chain.
	Chains []*Listener
	exact  map[string]*Listener
	// wildcards are the "*.suffix" names, longest suffix first; each
	// suffix keeps its leading dot.
	wildcards []sniWildcard
	fallback  *Listener
}

type sniWildcard struct {
	suffix string
	chain  *Listener
}

// Match returns the chain for a ClientHello's server name, as Envoy
// selects by server_names: an exact name first, then the longest matching
// "*." wildcard, then the default chain (nil closes the connection).
// Names compare case-insensitively; serverName must be lower case, as
// crypto/tls reports it.
func (r *SNIRouter) Match(serverName string) *Listener {
	if l, ok := r.exact[serverName]; ok {
		return l
	}
	for _, w := range r.wildcards {
		if strings.HasSuffix(serverName, w.suffix) && len(serverName) > len(w.suffix) {
			return w.chain
		}
	}
	return r.fallback
}

// compileSNIListener compiles a listener whose one listener filter is
// tls_inspector: each filter chain is a tcp_proxy, matched by
// filter_chain_match.server_names (see compileSNIChain).
func compileSNIListener(l *listenerv3.Listener, tables map[string]*route.Table) (*Listener, error) {
	if err := checkOneListenerFilter(l.GetListenerFilters(), tlsInspectorFilterName, tlsInspectorType, &tlsinspectorv3.TlsInspector{}); err != nil {
		return nil, err
	}
	r := &SNIRouter{exact: map[string]*Listener{}}
	chains, err := compileMatchedChains(l, func(fc *listenerv3.FilterChain, where, addr string) (*Listener, error) {
		return compileSNIChain(fc, where, addr, tables)
	}, r.file)
	if err != nil {
		return nil, err
	}
	r.Chains, r.fallback = chains.all, chains.fallback
	return &Listener{Name: l.GetName(), Address: chains.addr, Mode: ModeSNI, SNI: r}, nil
}

// compileSNIChain compiles one chain of an SNI listener, as the one chain
// of a listener without listener filters is compiled (compileFilterChain),
// and keeps the two shapes a gateway serves: a tcp_proxy without transport
// socket, which passes TLS through (a mesh gateway: it cannot read what
// the chain carries, so network RBAC is refused), or a DownstreamTlsContext
// that terminates TLS followed by optional network RBAC and a tcp_proxy,
// as on an inbound listener (a terminating gateway). HTTP chains are
// refused: serving HTTP per SNI chain is not implemented.
func compileSNIChain(fc *listenerv3.FilterChain, where, addr string, tables map[string]*route.Table) (*Listener, error) {
	name := cmp.Or(fc.GetName(), where)
	stripped := &listenerv3.FilterChain{Filters: fc.GetFilters(), TransportSocket: fc.GetTransportSocket()}
	out := &Listener{Name: name, Address: addr}
	if err := compileFilterChain(stripped, tables, out); err != nil {
		return nil, fmt.Errorf("%s (%q): %w", where, name, err)
	}
	switch {
	case out.Mode != ModeTCP:
		return nil, fmt.Errorf("%s (%q): only tcp_proxy is supported with the %s filter, not http_connection_manager, with or without transport_socket", where, name, tlsInspectorFilterName)
	case out.TLS == nil && len(out.RBAC) > 0:
		return nil, fmt.Errorf("%s (%q): network RBAC needs a transport_socket with the %s filter: a chain that passes TLS through does not authenticate the peer", where, name, tlsInspectorFilterName)
	case fc.GetTransportSocketConnectTimeout() != nil:
		return nil, fmt.Errorf("%s (%q): transport_socket_connect_timeout is not supported", where, name)
	}
	return out, nil
}

// file adds a chain under its server_names, the only match supported.
func (r *SNIRouter) file(m *listenerv3.FilterChainMatch, chain *Listener) error {
	if err := onlyFields(m, "server_names"); err != nil {
		return err
	}
	names := m.GetServerNames()
	if len(names) == 0 {
		if r.fallback != nil {
			return fmt.Errorf("no server_names, as filter chain %q", r.fallback.Name)
		}
		r.fallback = chain
		return nil
	}
	for i, n := range names {
		n = strings.ToLower(n)
		if suffix, ok := strings.CutPrefix(n, "*"); ok {
			if !strings.HasPrefix(suffix, ".") || len(suffix) < 2 || strings.Contains(suffix, "*") {
				return fmt.Errorf("server_names[%d] %q: a wildcard must be \"*.\" followed by a domain", i, names[i])
			}
			for _, w := range r.wildcards {
				if w.suffix == suffix {
					return fmt.Errorf("server_names[%d] %q: also matched by filter chain %q", i, names[i], w.chain.Name)
				}
			}
			r.wildcards = append(r.wildcards, sniWildcard{suffix, chain})
			continue
		}
		if n == "" || strings.Contains(n, "*") {
			return fmt.Errorf("server_names[%d] %q: not a server name", i, names[i])
		}
		if other, dup := r.exact[n]; dup {
			return fmt.Errorf("server_names[%d] %q: also matched by filter chain %q", i, names[i], other.Name)
		}
		r.exact[n] = chain
	}
	slices.SortStableFunc(r.wildcards, func(a, b sniWildcard) int { return cmp.Compare(len(b.suffix), len(a.suffix)) })
	return nil
}

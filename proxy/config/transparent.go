package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	origdstv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"

	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/route"
)

const originalDstFilterName = "envoy.filters.listener.original_dst"

var originalDstType = typeURL(&origdstv3.OriginalDst{})

// Transparent is the compiled filter chains of a listener with the
// original_dst listener filter: the listener of a transparent proxy, to
// which iptables redirects the application's outbound TCP. Each chain is a
// *Listener of mode ModeTCP, ModeHTTP or ModeOriginalDst (passthrough). It
// is immutable; Match is safe for concurrent use and does not allocate.
type Transparent struct {
	// Chains are every filter chain, in order, then the default chain.
	Chains []*Listener
	// byPort holds the chains with a destination_port; anyPort the others.
	byPort  map[uint32]*chainSet
	anyPort *chainSet
	// fallback is the default_filter_chain; nil closes what matches no chain.
	fallback *Listener
}

// chainSet is the chains of one destination port, by destination IP.
type chainSet struct {
	exact    map[netip.Addr]*Listener // single-address prefixes (/32, /128)
	prefixes []prefixChain            // the others, longest first
	all      *Listener                // the chain without prefix_ranges
}

type prefixChain struct {
	prefix netip.Prefix
	chain  *Listener
}

// Match returns the chain serving a connection whose original destination
// is dst, as Envoy selects filter chains: the chains of dst's port if any
// has it, else those without a port; among them the longest prefix
// containing dst's address, else the chain without prefix_ranges. When no
// chain matches it returns the default chain, which may be nil.
func (t *Transparent) Match(dst netip.AddrPort) *Listener {
	set := t.byPort[uint32(dst.Port())]
	if set == nil {
		set = t.anyPort
	}
	if set != nil {
		if l := set.match(dst.Addr().Unmap()); l != nil {
			return l
		}
	}
	return t.fallback
}

func (s *chainSet) match(ip netip.Addr) *Listener {
	if l, ok := s.exact[ip]; ok {
		return l
	}
	for _, p := range s.prefixes {
		if p.prefix.Contains(ip) {
			return p.chain
		}
	}
	return s.all
}

// add files a chain under its match, rejecting a second chain with the
// same match as Envoy does.
func (s *chainSet) add(prefixes []netip.Prefix, l *Listener) error {
	if len(prefixes) == 0 {
		if s.all != nil {
			return fmt.Errorf("same filter_chain_match as filter chain %q", s.all.Name)
		}
		s.all = l
		return nil
	}
	for _, p := range prefixes {
		if p.IsSingleIP() {
			if other, dup := s.exact[p.Addr()]; dup {
				return fmt.Errorf("prefix_ranges %s: also matched by filter chain %q", p, other.Name)
			}
			s.exact[p.Addr()] = l
			continue
		}
		if i := slices.IndexFunc(s.prefixes, func(pc prefixChain) bool { return pc.prefix == p }); i >= 0 {
			return fmt.Errorf("prefix_ranges %s: also matched by filter chain %q", p, s.prefixes[i].chain.Name)
		}
		s.prefixes = append(s.prefixes, prefixChain{p, l})
	}
	slices.SortStableFunc(s.prefixes, func(a, b prefixChain) int { return cmp.Compare(b.prefix.Bits(), a.prefix.Bits()) })
	return nil
}

// compileTransparentListener compiles a listener with listener filters:
// the only one supported is original_dst, and with it filter_chain_match
// (prefix_ranges, destination_port) and default_filter_chain.
func compileTransparentListener(l *listenerv3.Listener, tables map[string]*route.Table) (*Listener, error) {
	if err := checkOneListenerFilter(l.GetListenerFilters(), originalDstFilterName, originalDstType, &origdstv3.OriginalDst{}); err != nil {
		return nil, err
	}
	t := &Transparent{byPort: map[uint32]*chainSet{}}
	chains, err := compileMatchedChains(l, func(fc *listenerv3.FilterChain, where, addr string) (*Listener, error) {
		return compileTransparentChain(fc, where, addr, tables)
	}, t.file)
	if err != nil {
		return nil, err
	}
	t.Chains, t.fallback = chains.all, chains.fallback
	return &Listener{Name: l.GetName(), Address: chains.addr, Mode: ModeTransparent, Transparent: t}, nil
}

// checkOneListenerFilter accepts exactly one listener filter, the one
// named name (or of type typ), whose typed_config, if any, decodes into an
// empty cfg: Weft supports none of its settings.
func checkOneListenerFilter(fs []*listenerv3.ListenerFilter, name, typ string, cfg proto.Message) error {
	if len(fs) != 1 {
		return fmt.Errorf("has %d listener filters; only one, %s, is supported", len(fs), name)
	}
	f := fs[0]
	typed := f.GetTypedConfig()
	switch {
	case f.GetConfigDiscovery() != nil:
		return fmt.Errorf("listener filter %q: config_discovery is not supported", f.GetName())
	case f.GetFilterDisabled() != nil:
		return fmt.Errorf("listener filter %q: filter_disabled is not supported", f.GetName())
	case extensionType(f.GetName(), typed) != typ && !(typed == nil && f.GetName() == name):
		return fmt.Errorf("listener filter %q is not supported here; only %s is", f.GetName(), name)
	case typed != nil:
		if err := unpack(f.GetName(), typed, cfg); err != nil {
			return err
		}
		if err := onlyFields(cfg); err != nil {
			return fmt.Errorf("listener filter %q: %w", f.GetName(), err)
		}
	}
	return nil
}

// compileTransparentChain compiles one filter chain of a transparent
// listener into a *Listener of its own. Such chains carry outbound
// traffic: a transport_socket or network RBAC on them is rejected.
func compileTransparentChain(fc *listenerv3.FilterChain, where, addr string, tables map[string]*route.Table) (*Listener, error) {
	name := cmp.Or(fc.GetName(), where)
	stripped := &listenerv3.FilterChain{Filters: fc.GetFilters(), TransportSocket: fc.GetTransportSocket()}
	out := &Listener{Name: name, Address: addr}
	if err := compileFilterChain(stripped, tables, out); err != nil {
		return nil, fmt.Errorf("%s (%q): %w", where, name, err)
	}
	switch {
	case out.TLS != nil:
		return nil, fmt.Errorf("%s (%q): transport_socket is not supported on a listener with the %s filter", where, name, originalDstFilterName)
	case len(out.RBAC) > 0:
		return nil, fmt.Errorf("%s (%q): network RBAC is not supported on a listener with the %s filter", where, name, originalDstFilterName)
	case fc.GetTransportSocketConnectTimeout() != nil:
		return nil, fmt.Errorf("%s (%q): transport_socket_connect_timeout is not supported", where, name)
	}
	return out, nil
}

// file adds a chain under its filter_chain_match, of which prefix_ranges
// and destination_port are supported.
func (t *Transparent) file(m *listenerv3.FilterChainMatch, chain *Listener) error {
	if err := onlyFields(m, "prefix_ranges", "destination_port"); err != nil {
		return err
	}
	var prefixes []netip.Prefix
	for i, r := range m.GetPrefixRanges() {
		ip, err := netip.ParseAddr(r.GetAddressPrefix())
		if err != nil {
			return fmt.Errorf("prefix_ranges[%d]: address_prefix %q is not an IP address", i, r.GetAddressPrefix())
		}
		bits := int(r.GetPrefixLen().GetValue())
		p, err := ip.Unmap().Prefix(bits)
		if err != nil {
			return fmt.Errorf("prefix_ranges[%d]: prefix_len %d: %w", i, bits, err)
		}
		prefixes = append(prefixes, p)
	}
	set := t.anyPort
	if m.GetDestinationPort() != nil {
		port := m.GetDestinationPort().GetValue()
		if port == 0 || port > 65535 {
			return fmt.Errorf("destination_port %d: want 1-65535", port)
		}
		set = t.byPort[port]
		if set == nil {
			set = &chainSet{exact: map[netip.Addr]*Listener{}}
			t.byPort[port] = set
		}
	} else if set == nil {
		set = &chainSet{exact: map[netip.Addr]*Listener{}}
		t.anyPort = set
	}
	return set.add(prefixes, chain)
}

// compileOriginalDstCluster compiles Consul's passthrough cluster: type
// ORIGINAL_DST, lb_policy CLUSTER_PROVIDED, a connect_timeout and nothing
// else.
func compileOriginalDstCluster(c *clusterv3.Cluster) (*Cluster, error) {
	if err := onlyFields(c, "name", "type", "lb_policy", "connect_timeout", "alt_stat_name", "per_connection_buffer_limit_bytes"); err != nil {
		return nil, fmt.Errorf("ORIGINAL_DST cluster: %w", err)
	}
	if c.GetLbPolicy() != clusterv3.Cluster_CLUSTER_PROVIDED {
		return nil, fmt.Errorf("ORIGINAL_DST cluster: lb_policy %s, want CLUSTER_PROVIDED", c.GetLbPolicy())
	}
	out := &Cluster{Name: c.GetName(), ConnectTimeout: DefaultConnectTimeout, OriginalDst: true, LB: LB{Policy: RoundRobin}, Limits: DefaultLimits()}
	if d := c.GetConnectTimeout(); d != nil {
		out.ConnectTimeout = d.AsDuration()
	}
	return out, nil
}

// checkOriginalDst rejects a listener without the original_dst listener
// filter whose tcp_proxy uses an ORIGINAL_DST cluster. Unknown clusters
// are left to fail at connection time, as for every tcp_proxy.
func checkOriginalDst(l *Listener, clusters map[string]*Cluster) error {
	if c := clusters[l.Cluster]; l.Transparent == nil && l.Mode == ModeTCP && c != nil && c.OriginalDst {
		return fmt.Errorf("tcp_proxy: ORIGINAL_DST cluster %q needs the %s listener filter", c.Name, originalDstFilterName)
	}
	if l.SNI != nil {
		for _, chain := range l.SNI.Chains {
			if err := checkOriginalDst(chain, clusters); err != nil {
				return fmt.Errorf("filter chain %q: %w", chain.Name, err)
			}
		}
	}
	return nil
}

// resolveOriginalDst turns the tcp_proxy chains of a newly compiled
// transparent listener that name an ORIGINAL_DST cluster into passthrough
// chains.
func resolveOriginalDst(l *Listener, clusters map[string]*Cluster) {
	if l.Transparent == nil {
		return
	}
	for _, chain := range l.Transparent.Chains {
		chain.Mode, chain.ConnectTimeout = passthrough(chain, clusters)
	}
}

// originalDstResolved reports whether l's chains are as resolveOriginalDst
// makes them with clusters, so that l, resolved against the clusters of
// an earlier configuration, may serve with these.
func originalDstResolved(l *Listener, clusters map[string]*Cluster) bool {
	if l.Transparent == nil {
		return true
	}
	for _, chain := range l.Transparent.Chains {
		if mode, timeout := passthrough(chain, clusters); mode != chain.Mode || timeout != chain.ConnectTimeout {
			return false
		}
	}
	return true
}

// passthrough returns the mode and connect timeout of a transparent
// listener's chain: a tcp_proxy to an ORIGINAL_DST cluster passes through
// to the original destination within the cluster's connect_timeout.
func passthrough(chain *Listener, clusters map[string]*Cluster) (Mode, time.Duration) {
	if chain.Mode != ModeTCP && chain.Mode != ModeOriginalDst {
		return chain.Mode, chain.ConnectTimeout
	}
	if c := clusters[chain.Cluster]; c != nil && c.OriginalDst {
		return ModeOriginalDst, c.ConnectTimeout
	}
	return ModeTCP, 0
}

// allChains lists every listener and every filter chain of transparent
// and SNI listeners.
func allChains(ls []*Listener) []*Listener {
	out := make([]*Listener, 0, len(ls))
	for _, l := range ls {
		out = append(out, l)
		if l.Transparent != nil {
			out = append(out, l.Transparent.Chains...)
		}
		if l.SNI != nil {
			out = append(out, l.SNI.Chains...)
		}
	}
	return out
}

package config

import (
	"fmt"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
)

// matchedChains are the filter chains of a listener with a listener
// filter that selects one per connection — a transparent proxy's
// (original_dst: by destination) or a mesh gateway's (tls_inspector: by
// server name) — as compileMatchedChains returns them.
type matchedChains struct {
	addr string
	// all are every chain in order, then the default chain.
	all      []*Listener
	fallback *Listener // the default_filter_chain; nil closes what matches none
}

// compileMatchedChains checks the listener fields no such listener
// supports, compiles each filter chain with compile and files it under its
// filter_chain_match with file, then compiles the default chain.
func compileMatchedChains(l *listenerv3.Listener,
	compile func(fc *listenerv3.FilterChain, where, addr string) (*Listener, error),
	file func(*listenerv3.FilterChainMatch, *Listener) error,
) (matchedChains, error) {
	var out matchedChains
	plain := &listenerv3.Listener{UseOriginalDst: l.GetUseOriginalDst(), FilterChainMatcher: l.GetFilterChainMatcher(),
		AdditionalAddresses: l.GetAdditionalAddresses(), ListenerSpecifier: l.GetListenerSpecifier(), UdpListenerConfig: l.GetUdpListenerConfig()}
	if err := unsupportedListenerFields(plain); err != nil {
		return out, err
	}
	var err error
	if out.addr, err = socketAddress(l.GetAddress(), true); err != nil {
		return out, fmt.Errorf("address: %w", err)
	}
	for i, fc := range l.GetFilterChains() {
		chain, err := compile(fc, fmt.Sprintf("filter_chains[%d]", i), out.addr)
		if err != nil {
			return out, err
		}
		if err := file(fc.GetFilterChainMatch(), chain); err != nil {
			return out, fmt.Errorf("filter chain %q: filter_chain_match: %w", chain.Name, err)
		}
		out.all = append(out.all, chain)
	}
	if fc := l.GetDefaultFilterChain(); fc != nil {
		if fc.GetFilterChainMatch() != nil {
			return out, fmt.Errorf("default_filter_chain: filter_chain_match is not allowed")
		}
		if out.fallback, err = compile(fc, "default_filter_chain", out.addr); err != nil {
			return out, err
		}
		out.all = append(out.all, out.fallback)
	}
	if len(out.all) == 0 {
		return out, fmt.Errorf("no filter_chains and no default_filter_chain")
	}
	return out, nil
}

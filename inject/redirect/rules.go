// Package redirect installs the iptables rules of transparent proxying: TCP
// leaving the pod (or VM) goes to the sidecar's outbound port, TCP arriving
// goes to its inbound port, and the sidecar recovers where a connection was
// headed with SO_ORIGINAL_DST. It is weft redirect.
//
// Rules live in the nat table, in chains of their own (WEFT_*), jumped to
// from PREROUTING (inbound) and OUTPUT (outbound). Never redirected:
// traffic of the proxy's user (or it would loop), loopback traffic, and
// excluded ports. Only IPv4 is redirected.
package redirect

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Chains this package owns in the nat table.
const (
	chainInbound    = "WEFT_INBOUND"
	chainInRedirect = "WEFT_IN_REDIRECT"
	chainOutput     = "WEFT_OUTPUT"
	chainRedirect   = "WEFT_REDIRECT"
)

var chains = []string{chainInbound, chainInRedirect, chainOutput, chainRedirect}

// Config is one network namespace's redirection. Validate before use.
type Config struct {
	// ProxyUID is the user (ID or name) the sidecar runs as; its traffic is
	// never redirected.
	ProxyUID string
	// ExcludeUIDs are more users whose traffic is never redirected (on a
	// VM, the Consul agent's).
	ExcludeUIDs []string
	// OutboundPort receives outbound TCP; 0 leaves outbound alone.
	OutboundPort int
	// InboundPort receives inbound TCP; 0 leaves inbound alone.
	InboundPort int
	// InboundPorts, when set, limits inbound redirection to these
	// destination ports (on a VM: the app's), else all TCP is redirected.
	InboundPorts []int
	// ExcludeOutboundPorts and ExcludeInboundPorts are destination ports
	// never redirected.
	ExcludeOutboundPorts []int
	ExcludeInboundPorts  []int
}

// Validate reports every field that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.ProxyUID == "" {
		errs = append(errs, errors.New("proxy UID: empty (the proxy's own traffic would loop)"))
	}
	if c.OutboundPort == 0 && c.InboundPort == 0 {
		errs = append(errs, errors.New("outbound and inbound port both 0: nothing to redirect"))
	}
	check := func(what string, ports ...int) {
		for _, p := range ports {
			if p < 0 || p > 65535 {
				errs = append(errs, fmt.Errorf("%s %d: want 1-65535", what, p))
			}
		}
	}
	check("outbound port", c.OutboundPort)
	check("inbound port", c.InboundPort)
	check("inbound ports", c.InboundPorts...)
	check("excluded outbound port", c.ExcludeOutboundPorts...)
	check("excluded inbound port", c.ExcludeInboundPorts...)
	return errors.Join(errs...)
}

// Rules returns the iptables-restore input that installs c, for use with
// --noflush: it declares (and so empties) the WEFT_* chains, fills them,
// and jumps to them from PREROUTING and OUTPUT.
func (c Config) Rules() string {
	var b strings.Builder
	add := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	add("*nat")
	for _, ch := range chains {
		add(":%s - [0:0]", ch)
	}
	if c.InboundPort != 0 {
		add("-A %s -p tcp -j REDIRECT --to-ports %d", chainInRedirect, c.InboundPort)
		for _, p := range c.ExcludeInboundPorts {
			add("-A %s -p tcp --dport %d -j RETURN", chainInbound, p)
		}
		if len(c.InboundPorts) == 0 {
			add("-A %s -p tcp -j %s", chainInbound, chainInRedirect)
		}
		for _, p := range c.InboundPorts {
			add("-A %s -p tcp --dport %d -j %s", chainInbound, p, chainInRedirect)
		}
		add("-A PREROUTING -p tcp -j %s", chainInbound)
	}
	if c.OutboundPort != 0 {
		add("-A %s -p tcp -j REDIRECT --to-ports %d", chainRedirect, c.OutboundPort)
		add("-A %s -o lo -j RETURN", chainOutput)
		add("-A %s -d 127.0.0.1/32 -j RETURN", chainOutput)
		for _, uid := range append([]string{c.ProxyUID}, c.ExcludeUIDs...) {
			add("-A %s -m owner --uid-owner %s -j RETURN", chainOutput, uid)
		}
		for _, p := range c.ExcludeOutboundPorts {
			add("-A %s -p tcp --dport %d -j RETURN", chainOutput, p)
		}
		add("-A %s -j %s", chainOutput, chainRedirect)
		add("-A OUTPUT -p tcp -j %s", chainOutput)
	}
	add("COMMIT")
	return b.String()
}

// ParsePorts parses "80,443" (spaces allowed; empty is none).
func ParsePorts(s string) ([]int, error) {
	var ports []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p, err := strconv.Atoi(f)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("port %q: want 1-65535", f)
		}
		ports = append(ports, p)
	}
	return ports, nil
}

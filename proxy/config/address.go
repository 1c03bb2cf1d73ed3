package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// socketAddress returns "host:port" for a TCP socket address. When
// requireIP is set the host must be an IP literal (listeners and STATIC
// clusters); otherwise it may be a DNS name (STRICT_DNS clusters).
func socketAddress(a *corev3.Address, requireIP bool) (string, error) {
	switch {
	case a == nil:
		return "", fmt.Errorf("missing address")
	case a.GetPipe() != nil:
		return "", fmt.Errorf("pipe address %q is not supported", a.GetPipe().GetPath())
	case a.GetSocketAddress() == nil:
		return "", fmt.Errorf("address %T is not supported", a.GetAddress())
	}
	sa := a.GetSocketAddress()
	switch {
	case sa.GetProtocol() != corev3.SocketAddress_TCP:
		return "", fmt.Errorf("socket address protocol %s is not supported", sa.GetProtocol())
	case sa.GetNamedPort() != "":
		return "", fmt.Errorf("named port %q is not supported", sa.GetNamedPort())
	case sa.GetResolverName() != "":
		return "", fmt.Errorf("resolver %q is not supported", sa.GetResolverName())
	}
	host := sa.GetAddress()
	if _, err := netip.ParseAddr(host); err != nil && requireIP {
		return "", fmt.Errorf("address %q is not an IP address", host)
	}
	return net.JoinHostPort(host, strconv.FormatUint(uint64(sa.GetPortValue()), 10)), nil
}

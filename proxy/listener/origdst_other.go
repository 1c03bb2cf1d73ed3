//go:build !linux

package listener

import (
	"errors"
	"net"
	"net/netip"
)

// originalDst is Linux-only (SO_ORIGINAL_DST): elsewhere every connection
// counts as headed for the listener itself.
func originalDst(net.Conn) (netip.AddrPort, error) {
	return netip.AddrPort{}, errors.New("original destination: SO_ORIGINAL_DST needs Linux")
}

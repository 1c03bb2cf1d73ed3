package listener

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// soOriginalDst is Linux's SO_ORIGINAL_DST (linux/netfilter_ipv4.h).
const soOriginalDst = 80

// originalDst reads where an IPv4 connection was headed before a NAT
// REDIRECT: getsockopt(SOL_IP, SO_ORIGINAL_DST) fills a sockaddr_in,
// which fits in the 20 bytes of an IPv6Mreq. It fails (ENOENT) for a
// connection that was not redirected.
func originalDst(conn net.Conn) (netip.AddrPort, error) {
	tc, ok := conn.(syscall.Conn) // a *net.TCPConn, or a rawio.Conn holding one
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("original destination: %T is not a TCP connection", conn)
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: %w", err)
	}
	var mreq *syscall.IPv6Mreq
	var sockErr error
	err = raw.Control(func(fd uintptr) {
		mreq, sockErr = syscall.GetsockoptIPv6Mreq(int(fd), syscall.SOL_IP, soOriginalDst)
	})
	if err = errors.Join(err, sockErr); err != nil {
		return netip.AddrPort{}, fmt.Errorf("original destination: getsockopt SO_ORIGINAL_DST: %w", err)
	}
	a := mreq.Multiaddr // sa_family (2 bytes), port (big endian), IPv4 address
	port := uint16(a[2])<<8 | uint16(a[3])
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), port), nil
}

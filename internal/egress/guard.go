package egress

import (
	"fmt"
	"net/netip"
	"syscall"
)

// deniedPrefixes are never dialled, whatever the configuration: link-local
// (which includes the 169.254.169.254 cloud metadata service), unspecified,
// multicast, broadcast, "this network", and a few metadata addresses that
// sit outside the link-local ranges.
var deniedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network", incl. 0.0.0.0
	netip.MustParsePrefix("169.254.0.0/16"),     // IPv4 link-local, cloud metadata
	netip.MustParsePrefix("224.0.0.0/4"),        // IPv4 multicast
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved, incl. 255.255.255.255
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata
	netip.MustParsePrefix("::/128"),             // unspecified
	netip.MustParsePrefix("fe80::/10"),          // IPv6 link-local
	netip.MustParsePrefix("ff00::/8"),           // IPv6 multicast
	netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS IMDS over IPv6
}

// nat64 is the well-known NAT64 prefix (RFC 6052): its last 32 bits are an
// IPv4 address, which is checked like one.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// checkAddr decides whether a resolved address may be dialled. Loopback is
// allowed only when loopbackOK is set; private ranges (RFC 1918, ULA) are
// allowed because authorization servers often live on the cluster network.
func checkAddr(ip netip.Addr, loopbackOK bool) error {
	ip = ip.Unmap()
	if ip.Zone() != "" {
		return fmt.Errorf("%w: scoped address", ErrAddressNotAllowed)
	}
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte(b[12:16]))
	}
	if !ip.IsValid() || ip.IsUnspecified() {
		return fmt.Errorf("%w: unspecified address", ErrAddressNotAllowed)
	}
	for _, p := range deniedPrefixes {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s is in %s", ErrAddressNotAllowed, ip, p)
		}
	}
	if ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsMulticast() {
		return fmt.Errorf("%w: %s is link-local or multicast", ErrAddressNotAllowed, ip)
	}
	if ip.IsLoopback() && !loopbackOK {
		return fmt.Errorf("%w: %s is loopback", ErrAddressNotAllowed, ip)
	}
	return nil
}

// control returns a net.Dialer.Control function that applies checkAddr to
// the address actually being connected to, after name resolution, so a DNS
// answer (or a rebinding one) cannot steer a connection to a refused range.
// With loopbackOnly, every address that is not loopback is refused too.
func control(loopbackOK, loopbackOnly bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: unparsable dial address", ErrAddressNotAllowed)
		}
		if err := checkAddr(ap.Addr(), loopbackOK || loopbackOnly); err != nil {
			return err
		}
		if loopbackOnly && !ap.Addr().Unmap().IsLoopback() {
			return fmt.Errorf("%w: plain http only to loopback", ErrAddressNotAllowed)
		}
		return nil
	}
}

package ha

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link is the Interface of a real network interface: VIPs are added as
// /32 addresses with netlink and announced with gratuitous ARP.
type Link struct {
	Name string
}

var _ Interface = (*Link)(nil)

func (l *Link) link() (netlink.Link, error) {
	lk, err := netlink.LinkByName(l.Name)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", l.Name, err)
	}
	return lk, nil
}

// hostAddr is a as a host address (/32, /128) of the interface. An IPv6
// one skips duplicate address detection: it is the VIP the dispatchers
// move between them, usable (and announced) at once, not tentative for a
// second while the flows it should take reset. It is also deprecated
// (preferred lifetime 0, valid forever): a deprecated address still
// answers neighbour solicitations and takes packets, but the kernel never
// picks it as the source of this host's own connections. Without that
// RFC 6724's longest-match rule prefers the /128 VIP over the interface's
// /64 address for every neighbour on the segment, so the dispatcher's
// health checks leave from the VIP, the servers (which hold it on lo)
// answer themselves, and every server is marked down. An IPv4 /32 needs
// nothing: the subnet route's preferred source stays the interface's own
// address.
func hostAddr(a netip.Addr) *netlink.Addr {
	na := &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}}
	if a.Is6() {
		na.Flags = unix.IFA_F_NODAD
		forever := ^uint32(0) // INFINITY_LIFE_TIME
		na.ValidLft, na.PreferedLft = int(forever), 0
	}
	return na
}

// AddVIPs adds vips to the interface; ones already there are kept.
func (l *Link) AddVIPs(_ context.Context, vips []netip.Addr) error {
	lk, err := l.link()
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range vips {
		if err := netlink.AddrReplace(lk, hostAddr(v)); err != nil {
			errs = append(errs, fmt.Errorf("add %s to %s: %w", v, l.Name, err))
		}
	}
	return errors.Join(errs...)
}

// RemoveVIPs removes vips from the interface; absent ones are skipped.
func (l *Link) RemoveVIPs(_ context.Context, vips []netip.Addr) error {
	lk, err := l.link()
	if err != nil {
		return err
	}
	var errs []error
	for _, v := range vips {
		err := netlink.AddrDel(lk, hostAddr(v))
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("remove %s from %s: %w", v, l.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Announce tells the segment that vips are at this interface now: for an
// IPv4 VIP a gratuitous ARP request and a gratuitous ARP reply (hosts
// differ in which form they honour, and both replace an existing
// neighbour entry at once), for an IPv6 VIP an unsolicited neighbour
// advertisement to all nodes with the override flag (RFC 4861 section
// 7.2.6), which replaces the entry's link-layer address.
func (l *Link) Announce(_ context.Context, vips []netip.Addr) error {
	ifi, err := net.InterfaceByName(l.Name)
	if err != nil {
		return fmt.Errorf("interface %q: %w", l.Name, err)
	}
	var errs []error
	send := func(proto uint16, dst net.HardwareAddr, frames [][]byte, what string) {
		if len(frames) == 0 {
			return
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(proto)))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s on %s: packet socket: %w", what, l.Name, err))
			return
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(proto), Halen: 6}
		copy(to.Addr[:], dst)
		for _, f := range frames {
			if err := unix.Sendto(fd, f, 0, to); err != nil {
				errs = append(errs, fmt.Errorf("%s on %s: %w", what, l.Name, err))
			}
		}
	}
	var arps, nas [][]byte
	for _, v := range vips {
		if v = v.Unmap(); v.Is4() {
			for _, op := range []uint16{arpRequest, arpReply} {
				arps = append(arps, arpFrame(op, ifi.HardwareAddr, v, broadcast, v))
			}
		} else {
			nas = append(nas, naFrame(ifi.HardwareAddr, v))
		}
	}
	send(unix.ETH_P_ARP, broadcast, arps, "gratuitous ARP")
	send(unix.ETH_P_IPV6, allNodesMAC, nas, "unsolicited neighbour advertisement")
	return errors.Join(errs...)
}

var (
	allNodes    = netip.MustParseAddr("ff02::1")
	allNodesMAC = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
)

// naFrame builds an Ethernet frame carrying an unsolicited neighbour
// advertisement of target at srcMAC, from target to all nodes: override
// set, solicited clear, with the target link-layer address option.
func naFrame(srcMAC net.HardwareAddr, target netip.Addr) []byte {
	icmp := make([]byte, 0, 32)
	icmp = append(icmp, 136, 0, 0, 0)  // type, code, checksum
	icmp = append(icmp, 0x20, 0, 0, 0) // flags: override
	t16 := target.As16()
	icmp = append(icmp, t16[:]...)
	icmp = append(icmp, 2, 1) // target link-layer address, 8 bytes
	icmp = append(icmp, srcMAC...)
	dst := allNodes.As16()
	binary.BigEndian.PutUint16(icmp[2:], icmp6Checksum(t16, dst, icmp))

	f := make([]byte, 0, 14+40+len(icmp))
	f = append(f, allNodesMAC...)
	f = append(f, srcMAC...)
	f = binary.BigEndian.AppendUint16(f, unix.ETH_P_IPV6)
	f = append(f, 0x60, 0, 0, 0) // version 6, no class or flow label
	f = binary.BigEndian.AppendUint16(f, uint16(len(icmp)))
	f = append(f, unix.IPPROTO_ICMPV6, 255) // next header, hop limit 255 (RFC 4861: else dropped)
	f = append(f, t16[:]...)
	f = append(f, dst[:]...)
	return append(f, icmp...)
}

// icmp6Checksum is the ICMPv6 checksum of msg (its checksum field 0)
// from src to dst, over the IPv6 pseudo-header (RFC 8200 section 8.1).
func icmp6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	var tail [8]byte
	binary.BigEndian.PutUint32(tail[:4], uint32(len(msg)))
	tail[7] = unix.IPPROTO_ICMPV6
	add(tail[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

const (
	arpRequest = 1
	arpReply   = 2
)

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// arpFrame builds an Ethernet frame carrying an ARP packet from (srcMAC,
// srcIP) about targetIP, sent to dst. A gratuitous request has a zero
// target MAC; a gratuitous reply names the sender's MAC as target too
// (RFC 5227 section 3).
func arpFrame(op uint16, srcMAC net.HardwareAddr, srcIP netip.Addr, dst net.HardwareAddr, targetIP netip.Addr) []byte {
	f := make([]byte, 0, 42)
	f = append(f, dst...)
	f = append(f, srcMAC...)
	f = binary.BigEndian.AppendUint16(f, unix.ETH_P_ARP)
	f = binary.BigEndian.AppendUint16(f, 1)      // Ethernet
	f = binary.BigEndian.AppendUint16(f, 0x0800) // IPv4
	f = append(f, 6, 4)
	f = binary.BigEndian.AppendUint16(f, op)
	f = append(f, srcMAC...)
	s4 := srcIP.As4()
	f = append(f, s4[:]...)
	switch {
	case op == arpReply && targetIP == srcIP:
		f = append(f, srcMAC...)
	default:
		f = append(f, 0, 0, 0, 0, 0, 0)
	}
	t4 := targetIP.As4()
	return append(f, t4[:]...)
}

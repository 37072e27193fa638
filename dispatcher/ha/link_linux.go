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

func hostAddr(a netip.Addr) *netlink.Addr {
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(a.BitLen(), a.BitLen())}}
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

// Announce broadcasts, for each IPv4 VIP, a gratuitous ARP request and a
// gratuitous ARP reply from the interface: hosts differ in which form they
// honour, and both replace an existing neighbour entry at once.
func (l *Link) Announce(_ context.Context, vips []netip.Addr) error {
	ifi, err := net.InterfaceByName(l.Name)
	if err != nil {
		return fmt.Errorf("interface %q: %w", l.Name, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("gratuitous ARP on %s: packet socket: %w", l.Name, err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(unix.ETH_P_ARP), Halen: 6}
	copy(to.Addr[:], broadcast)
	var errs []error
	for _, v := range vips {
		if !v.Is4() {
			continue
		}
		for _, op := range []uint16{arpRequest, arpReply} {
			frame := arpFrame(op, ifi.HardwareAddr, v, broadcast, v)
			if err := unix.Sendto(fd, frame, 0, to); err != nil {
				errs = append(errs, fmt.Errorf("gratuitous ARP for %s on %s: %w", v, l.Name, err))
			}
		}
	}
	return errors.Join(errs...)
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

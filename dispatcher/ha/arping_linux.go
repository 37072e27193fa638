package ha

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// arping asks for target's MAC on iface and waits for its ARP reply. The
// request's sender address is the interface's first IPv4 address, or
// 0.0.0.0 (an ARP probe) when it has none.
func arping(ctx context.Context, iface string, target netip.Addr) error {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return fmt.Errorf("arping %s: interface %q: %w", target, iface, err)
	}
	src := netip.IPv4Unspecified()
	if addrs, err := ifi.Addrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if v, ok := netip.AddrFromSlice(n.IP); ok && v.Unmap().Is4() {
					src = v.Unmap()
					break
				}
			}
		}
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("arping %s: packet socket: %w", target, err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(unix.ETH_P_ARP)}); err != nil {
		return fmt.Errorf("arping %s: bind %s: %w", target, iface, err)
	}
	to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(unix.ETH_P_ARP), Halen: 6}
	copy(to.Addr[:], broadcast)
	if err := unix.Sendto(fd, arpFrame(arpRequest, ifi.HardwareAddr, src, broadcast, target), 0, to); err != nil {
		return fmt.Errorf("arping %s: send: %w", target, err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Second)
	}
	buf := make([]byte, 128)
	t4 := target.As4()
	for {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return fmt.Errorf("arping %s on %s: %w", target, iface, errNoReply)
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return fmt.Errorf("arping %s: %w", target, err)
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			if err == unix.EAGAIN || err == unix.EINTR {
				continue
			}
			return fmt.Errorf("arping %s: receive: %w", target, err)
		}
		// Ethernet (14) + ARP: op at 20, sender IP at 28.
		if n >= 42 && binary.BigEndian.Uint16(buf[12:]) == unix.ETH_P_ARP &&
			binary.BigEndian.Uint16(buf[20:]) == arpReply && [4]byte(buf[28:32]) == t4 {
			return nil
		}
	}
}

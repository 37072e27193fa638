package dnsserver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The UDP loop has two forms. On Linux (udp_linux.go) each socket is
// blocking and outside Go's netpoller, read by one goroutine locked to its
// thread with recvmmsg and answered with sendmmsg. On macOS, and on Linux
// when built with -tags portableudp (udp_portable.go), each socket is a
// net.UDPConn read with ReadMsgUDPAddrPort: one query per read through the
// netpoller. Both bind SO_REUSEPORT sockets and, on an unspecified
// address, answer from the address each query was sent to.

// udpBatch is how many datagrams one recvmmsg may return: under load a
// reader takes what has queued up in one system call and answers it in
// one sendmmsg; at a trickle it is one query per call, like recvmsg.
const udpBatch = 16

// maxUDPQuery is the largest UDP query read whole; a longer one is
// dropped (queries are a few hundred bytes, padded ones 468 at most).
const maxUDPQuery = 4096

// listenIP resolves a listen host to the address to bind: the zero Addr
// for an empty host (every address, IPv6 and IPv4 on one socket where the
// host has IPv6).
func listenIP(host string) (netip.Addr, error) {
	if host == "" {
		return netip.Addr{}, nil
	}
	ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		return netip.Addr{}, err
	}
	ip, _ := netip.AddrFromSlice(ua.IP)
	ip = ip.Unmap()
	if ua.Zone != "" {
		ip = ip.WithZone(ua.Zone)
	}
	return ip, nil
}

// sourceControl turns the destination a query was received on (an
// IP_PKTINFO or IPV6_PKTINFO control message) into the control message
// that sends the answer from that address. An IPv4 query on a dual-stack
// socket may be reported as an IPv6 destination in ::ffff:0:0/96; its
// answer is given an IPv4 source (IP_PKTINFO), which the IPv4 output path
// of every kernel understands.
func sourceControl(dst, oob []byte) []byte {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < unix.SizeofCmsghdr || l > len(oob) {
			return nil
		}
		data := oob[unix.CmsgLen(0):l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			var info unix.Inet4Pktinfo
			copy(info.Spec_dst[:], data[8:12]) // ipi_addr: the header's destination
			return appendCmsg(dst, unix.IPPROTO_IP, unix.IP_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&info)), unix.SizeofInet4Pktinfo))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			var info unix.Inet6Pktinfo
			copy(info.Addr[:], data[:16])
			a := netip.AddrFrom16(info.Addr)
			if a.Is4In6() {
				var v4 unix.Inet4Pktinfo
				v4.Spec_dst = a.Unmap().As4()
				return appendCmsg(dst, unix.IPPROTO_IP, unix.IP_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&v4)), unix.SizeofInet4Pktinfo))
			}
			if a.IsLinkLocalUnicast() {
				// A link-local source means nothing without its link.
				info.Ifindex = binary.NativeEndian.Uint32(data[16:20])
			}
			return appendCmsg(dst, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&info)), unix.SizeofInet6Pktinfo))
		}
		oob = oob[min(unix.CmsgSpace(l-unix.CmsgLen(0)), len(oob)):]
	}
	return nil
}

func appendCmsg(dst []byte, level, typ int, data []byte) []byte {
	space := unix.CmsgSpace(len(data))
	start := len(dst)
	dst = append(dst, make([]byte, space)...)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&dst[start]))
	h.Level = int32(level)
	h.Type = int32(typ)
	h.SetLen(unix.CmsgLen(len(data)))
	copy(dst[start+unix.CmsgLen(0):], data)
	return dst
}

package dnsserver

import (
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpSocket is one UDP socket Tern reads itself: a blocking socket outside
// Go's netpoller, read by one goroutine in a loop of recvmsg, answer,
// sendmsg. That is the loop gdnsd runs: two system calls per query, where
// a netpoller socket costs a failed read and an epoll_wait more.
type udpSocket struct {
	fd      int
	addr    netip.AddrPort
	pktinfo bool // bound to an unspecified address: answers name their source
	closed  atomic.Bool
}

// listenUDP binds a UDP socket with SO_REUSEPORT, so that several sockets
// share one address and the kernel spreads queries over them. A socket on
// an unspecified address asks for each packet's destination (IP_PKTINFO)
// so the answer leaves from the address the query went to. An empty host
// means every address, IPv6 and IPv4 on one socket where the host has
// IPv6.
func listenUDP(host string, port int) (*udpSocket, error) {
	var ip netip.Addr
	if host != "" {
		ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		ip, _ = netip.AddrFromSlice(ua.IP)
		ip = ip.Unmap()
		if ua.Zone != "" {
			ip = ip.WithZone(ua.Zone)
		}
	}
	u, err := openUDP(ip, port)
	if err != nil && host == "" {
		u, err = openUDP(netip.IPv4Unspecified(), port) // no IPv6 here
	}
	return u, err
}

func openUDP(ip netip.Addr, port int) (*udpSocket, error) {
	family := unix.AF_INET
	if !ip.IsValid() || ip.Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	u := &udpSocket{fd: fd}
	fail := func(op string, err error) (*udpSocket, error) {
		unix.Close(fd)
		return nil, os.NewSyscallError(op, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fail("setsockopt SO_REUSEPORT", err)
	}
	// Room for bursts; the kernel caps it at net.core.rmem_max.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	// A bound on each blocking read, so a reader notices shutdown even if
	// the wake-up below were missed.
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("setsockopt SO_RCVTIMEO", err)
	}
	var sa unix.Sockaddr
	switch {
	case family == unix.AF_INET:
		sa = &unix.SockaddrInet4{Port: port, Addr: ip.As4()}
	default:
		if !ip.IsValid() || ip.IsUnspecified() {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
				return fail("setsockopt IPV6_V6ONLY", err)
			}
		}
		s6 := &unix.SockaddrInet6{Port: port}
		if ip.IsValid() {
			s6.Addr = ip.As16()
			if z := ip.Zone(); z != "" {
				ifi, err := net.InterfaceByName(z)
				if err != nil {
					unix.Close(fd)
					return nil, err
				}
				s6.ZoneId = uint32(ifi.Index)
			}
		}
		sa = s6
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	got, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		u.addr = netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		u.addr = netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	if u.addr.Addr().IsUnspecified() {
		u.pktinfo = true
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
			return fail("setsockopt IP_PKTINFO", err)
		}
		if family == unix.AF_INET6 {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
				return fail("setsockopt IPV6_RECVPKTINFO", err)
			}
		}
	}
	return u, nil
}

// shutdown wakes the socket's reader and makes it return.
func (u *udpSocket) shutdown() {
	u.closed.Store(true)
	// On Linux this wakes a reader blocked in recvmsg even on an
	// unconnected socket (it reports ENOTCONN, and does it anyway).
	_ = unix.Shutdown(u.fd, unix.SHUT_RDWR)
}

func (u *udpSocket) close() error { return unix.Close(u.fd) }

// udpIO holds what one reader passes to recvmsg and sendmsg. It lives on
// the heap, so the kernel gets pointers that do not move.
type udpIO struct {
	from   unix.RawSockaddrAny
	iov    unix.Iovec
	msg    unix.Msghdr
	oob    [128]byte
	outIov unix.Iovec
	out    unix.Msghdr
	reply  [64]byte // control message naming the answer's source
}

// serveUDP reads queries from u and answers each before reading the next,
// with one worker's buffers: the kernel spreads load over the sockets of
// an address, so a socket needs no more than one reader.
func (s *Server) serveUDP(u *udpSocket) {
	w := s.newWorker()
	io := new(udpIO)
	io.iov.Base = &w.in[0]
	io.iov.SetLen(len(w.in))
	for {
		io.msg = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&io.from)), Namelen: unix.SizeofSockaddrAny, Iov: &io.iov, Iovlen: 1}
		if u.pktinfo {
			io.msg.Control = &io.oob[0]
			io.msg.SetControllen(len(io.oob))
		}
		n, _, errno := syscall.Syscall(unix.SYS_RECVMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&io.msg)), 0)
		if u.closed.Load() {
			return
		}
		if errno != 0 {
			continue // the read timeout, EINTR, ICMP errors surfacing
		}
		src, ok := sockaddrAddr(&io.from)
		if !ok {
			continue
		}
		out := w.handle(s.snap.Load(), w.in[:n], src, false)
		if len(out) == 0 {
			continue
		}
		io.outIov.Base = &out[0]
		io.outIov.SetLen(len(out))
		io.out = unix.Msghdr{Name: io.msg.Name, Namelen: io.msg.Namelen, Iov: &io.outIov, Iovlen: 1}
		if u.pktinfo && io.msg.Controllen > 0 {
			if ctl := sourceControl(io.reply[:0], io.oob[:io.msg.Controllen]); len(ctl) > 0 {
				io.out.Control = &ctl[0]
				io.out.SetControllen(len(ctl))
			}
		}
		syscall.Syscall(unix.SYS_SENDMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&io.out)), unix.MSG_DONTWAIT)
	}
}

// sockaddrAddr returns the address of a raw socket address.
func sockaddrAddr(sa *unix.RawSockaddrAny) (netip.Addr, bool) {
	switch sa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrFrom4(a.Addr), true
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrFrom16(a.Addr).Unmap(), true
	}
	return netip.Addr{}, false
}

// sourceControl turns the destination a query was received on (an
// IP_PKTINFO or IPV6_PKTINFO control message) into the control message
// that sends the answer from that address.
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

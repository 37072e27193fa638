package dnsserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// listenUDP binds a UDP socket with SO_REUSEPORT, so that several sockets
// share one address and the kernel spreads queries over them. A socket on
// an unspecified address asks for each packet's destination (IP_PKTINFO)
// so the answer leaves from the address the query went to.
func listenUDP(addr string) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(network, address string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	if ap := c.LocalAddr().(*net.UDPAddr).AddrPort(); ap.Addr().IsUnspecified() {
		if err := setPktInfo(c, ap.Addr()); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func setPktInfo(c *net.UDPConn, a netip.Addr) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if a.Is4() {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		// A dual-stack socket gets IPv4 packets too.
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// serveUDP reads queries from c and answers each before reading the next,
// with one worker's buffers: the kernel spreads load over the sockets of
// an address, so a socket needs no more than one reader.
func (s *Server) serveUDP(c *net.UDPConn) {
	w := s.newWorker()
	buf := w.in
	oob := make([]byte, 128)
	var reply [64]byte // control message for the source of the answer
	for {
		n, oobn, _, from, err := c.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP errors surfacing, oversized datagrams
		}
		out := w.handle(s.snap.Load(), buf[:n], from.Addr(), false)
		if out == nil {
			continue
		}
		var ctl []byte
		if oobn > 0 {
			ctl = sourceControl(reply[:0], oob[:oobn])
		}
		c.WriteMsgUDPAddrPort(out, ctl, from)
	}
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

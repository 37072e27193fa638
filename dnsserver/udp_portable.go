//go:build !linux || portableudp

package dnsserver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// udpSocket is one UDP socket read through Go's netpoller: the portable
// loop, one query per ReadMsgUDPAddrPort and one answer per
// WriteMsgUDPAddrPort.
type udpSocket struct {
	conn    *net.UDPConn
	addr    netip.AddrPort
	pktinfo bool // bound to an unspecified address: answers name their source
	closed  atomic.Bool
}

// listenUDP binds a UDP socket with SO_REUSEPORT, so that several sockets
// share one address and the kernel spreads queries over them. A socket on
// an unspecified address asks for each packet's destination (IP_PKTINFO,
// IPV6_RECVPKTINFO) so the answer leaves from the address the query went
// to. An empty host means every address, IPv6 and IPv4 on one socket
// where the host has IPv6.
func listenUDP(host string, port int) (*udpSocket, error) {
	ip, err := listenIP(host)
	if err != nil {
		return nil, err
	}
	wildcard := !ip.IsValid() || ip.IsUnspecified()
	lc := net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = setUDPOptions(int(fd), network, wildcard)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	addr := ""
	if ip.IsValid() {
		addr = ip.String()
	}
	pc, err := lc.ListenPacket(context.Background(), "udp", net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	conn := pc.(*net.UDPConn)
	u := &udpSocket{conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort()}
	u.addr = netip.AddrPortFrom(u.addr.Addr().Unmap(), u.addr.Port())
	u.pktinfo = wildcard
	return u, nil
}

// setUDPOptions sets what listenUDP asks of a socket before it is bound.
func setUDPOptions(fd int, network string, wildcard bool) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return &net.OpError{Op: "setsockopt SO_REUSEPORT", Net: network, Err: err}
	}
	// Room for bursts; the kernel caps it.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	if !wildcard {
		return nil
	}
	if network == "udp4" {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, recvPktinfo4, 1); err != nil {
			return &net.OpError{Op: "setsockopt IP_PKTINFO", Net: network, Err: err}
		}
		return nil
	}
	// A dual-stack socket reports an IPv4 query's destination as an
	// IPv6 address in ::ffff:0:0/96 (sourceControl turns it back).
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
		return &net.OpError{Op: "setsockopt IPV6_RECVPKTINFO", Net: network, Err: err}
	}
	return nil
}

// shutdown wakes the socket's reader and makes it return.
func (u *udpSocket) shutdown() {
	u.closed.Store(true)
	_ = u.conn.SetReadDeadline(time.Now())
}

func (u *udpSocket) close() error { return u.conn.Close() }

func (u *udpSocket) sockoptInt(level, opt int) (int, error) {
	rc, err := u.conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var v int
	var serr error
	if err := rc.Control(func(fd uintptr) { v, serr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil {
		return 0, err
	}
	return v, serr
}

// serveUDP reads queries from u and answers them with one worker's
// buffers, one at a time.
func (s *Server) serveUDP(u *udpSocket) {
	w := s.newWorker()
	in := make([]byte, maxUDPQuery)
	var oob, ctl [64]byte
	for {
		n, oobn, flags, from, err := u.conn.ReadMsgUDPAddrPort(in, oob[:])
		if u.closed.Load() || errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil || flags&unix.MSG_TRUNC != 0 {
			continue // ICMP errors surfacing, a query too long
		}
		resp := w.handle(s.cur.Load(), in[:n], from.Addr().Unmap(), false)
		if len(resp) == 0 || len(resp) > s.opts.UDPSize {
			continue
		}
		var src []byte
		if u.pktinfo {
			src = sourceControl(ctl[:0], oob[:oobn])
		}
		// An answer that cannot go (a full buffer, an unreachable
		// client) is dropped, as a lost datagram would be.
		_, _, _ = u.conn.WriteMsgUDPAddrPort(resp, src, from)
	}
}

// udpHoldsP says the readers of this loop hold a P while they wait: the
// netpoller parks them.
const udpHoldsP = false

//go:build linux && !portableudp

package dnsserver

import (
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpSocket is one UDP socket Tern reads itself: a blocking socket outside
// Go's netpoller, read by one goroutine locked to its thread in a loop of
// recvmmsg, answer, sendmmsg. That is the loop gdnsd runs: two system
// calls per batch, where a netpoller socket costs a failed read and an
// epoll_wait more (see serveUDP for how it meets the Go scheduler).
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
	ip, err := listenIP(host)
	if err != nil {
		return nil, err
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
	// the wake-up below were missed. It also makes a signal interrupt the
	// read (EINTR) instead of restarting it: the Go runtime preempts the
	// reader with a signal (see serveUDP).
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

// shutdown wakes the socket's reader and makes it return; answers of
// a batch in hand still go out.
func (u *udpSocket) shutdown() {
	u.closed.Store(true)
	// On Linux this wakes a reader blocked in recvmsg even on an
	// unconnected socket (it reports ENOTCONN, and does it anyway).
	_ = unix.Shutdown(u.fd, unix.SHUT_RD)
}

func (u *udpSocket) close() error { return unix.Close(u.fd) }

// udpIO holds what one reader passes to recvmmsg and sendmmsg. It lives on
// the heap, so the kernel gets pointers that do not move.
type udpIO struct {
	in    [udpBatch]unix.Mmsghdr
	from  [udpBatch]unix.RawSockaddrAny
	inIov [udpBatch]unix.Iovec
	// oob has room for both packet-info messages a dual-stack socket
	// gives an IPv4 datagram (IP_PKTINFO, 32 bytes, and IPV6_PKTINFO,
	// 40): 64 bytes cut the second (MSG_CTRUNC).
	oob    [udpBatch][128]byte
	inBuf  []byte // udpBatch * maxUDPQuery
	out    [udpBatch]unix.Mmsghdr
	outIov [udpBatch]unix.Iovec
	reply  [udpBatch][64]byte // control messages naming the answers' sources
	outBuf []byte             // udpBatch * the largest UDP answer
	outMax int
	// dirty is how many of in's headers recv must reset before the next
	// call: those the kernel may have changed since.
	dirty int
}

func newUDPIO(pktinfo bool, udpSize int) *udpIO {
	io := &udpIO{inBuf: make([]byte, udpBatch*maxUDPQuery), outBuf: make([]byte, udpBatch*udpSize), outMax: udpSize, dirty: udpBatch}
	for i := range io.in {
		io.inIov[i].Base = &io.inBuf[i*maxUDPQuery]
		io.inIov[i].SetLen(maxUDPQuery)
		h := &io.in[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&io.from[i]))
		h.Iov = &io.inIov[i]
		h.Iovlen = 1
		if pktinfo {
			h.Control = &io.oob[i][0]
		}
	}
	return io
}

// serveUDP reads queries from u and answers them with one worker's
// buffers: the kernel spreads load over the sockets of an address, so a
// socket needs no more than one reader.
//
// The reader keeps its thread and its P while it waits: recvmmsg is a raw
// system call, unknown to the scheduler, so no P is handed off when it
// blocks and none taken back when it returns. Through the scheduler
// (syscall.Syscall), a wait longer than sysmon's 20 µs tick had the P
// retaken and handed to a woken thread that found nothing to do and
// slept again, at every query of a moderate rate: twice the process CPU
// per query (BENCHMARKS.md). The Ps the readers hold are lent back to the
// rest of the program (lendProcs in Run). The runtime still stops the
// reader when it must (garbage collection, a reader that never yields):
// its preemption signal interrupts the read (EINTR, the socket has a
// receive timeout) and the reader is preempted in Go code.
//
// recvmmsg with MSG_WAITFORONE blocks for the first datagram only and
// then takes whatever else is queued, up to udpBatch: the batch is as deep
// as the load makes it, never waiting to be filled.
func (s *Server) serveUDP(u *udpSocket) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	w := s.newWorker()
	io := newUDPIO(u.pktinfo, s.opts.UDPSize)
	for {
		if u.closed.Load() {
			return
		}
		n, ok := io.recv(u)
		if u.closed.Load() {
			return
		}
		if ok {
			s.answerBatch(w, u, io, n)
		}
	}
}

// recv reads a batch into io: how many datagrams, and false on an error
// (the read timeout, EINTR, ICMP errors surfacing).
//
// It is never inlined: its prologue is where a reader that a signal took
// out of recvmmsg is preempted (the signal lands in the system call's
// assembly, not at a point the runtime can stop it at), so every turn of
// the loop passes a preemption point even when no query comes.
//
//go:noinline
func (io *udpIO) recv(u *udpSocket) (int, bool) {
	// Only the headers the last call filled were changed (and the one
	// after, which the kernel may have begun): at low rates that is one
	// or two cache lines written per turn instead of udpBatch.
	for i := range io.dirty {
		h := &io.in[i].Hdr
		h.Namelen = unix.SizeofSockaddrAny
		h.Flags = 0
		if u.pktinfo {
			h.SetControllen(len(io.oob[i]))
		}
	}
	n, _, errno := syscall.RawSyscall6(unix.SYS_RECVMMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&io.in[0])), udpBatch, unix.MSG_WAITFORONE, 0, 0)
	if errno != 0 {
		io.dirty = udpBatch // an error may leave any header changed
		return 0, false
	}
	io.dirty = min(int(n)+1, udpBatch)
	return int(n), true
}

// answerBatch answers the n datagrams io holds and sends the answers in
// as few sendmmsg calls as the socket takes. handle recovers a panic of
// its own query.
func (s *Server) answerBatch(w *worker, u *udpSocket, io *udpIO, n int) {
	k := 0 // answers to send
	for i := 0; i < n; i++ {
		h := &io.in[i].Hdr
		src, ok := sockaddrAddr(&io.from[i])
		if !ok || h.Flags&unix.MSG_TRUNC != 0 {
			continue
		}
		q := io.inBuf[i*maxUDPQuery : i*maxUDPQuery+int(io.in[i].Len)]
		resp := w.handle(s.cur.Load(), q, src, false)
		if len(resp) == 0 || len(resp) > io.outMax {
			continue
		}
		if i == n-1 {
			// The batch's last answer is sent from the worker's buffer:
			// nothing writes it before sendmmsg (at low rates, where a
			// batch is one query, no answer is copied).
			io.outIov[k].Base = &resp[0]
		} else {
			buf := io.outBuf[k*io.outMax:]
			copy(buf, resp)
			io.outIov[k].Base = &buf[0]
		}
		io.outIov[k].SetLen(len(resp))
		o := &io.out[k].Hdr
		*o = unix.Msghdr{Name: h.Name, Namelen: h.Namelen, Iov: &io.outIov[k], Iovlen: 1}
		if u.pktinfo && h.Controllen > 0 {
			if ctl := sourceControl(io.reply[k][:0], io.oob[i][:h.Controllen]); len(ctl) > 0 {
				o.Control = &ctl[0]
				o.SetControllen(len(ctl))
			}
		}
		k++
	}
	// MSG_DONTWAIT: sendmmsg never blocks, so it too is a raw call.
	for sent := 0; sent < k; {
		m, _, errno := syscall.RawSyscall6(unix.SYS_SENDMMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&io.out[sent])), uintptr(k-sent), unix.MSG_DONTWAIT, 0, 0)
		if errno != 0 {
			sent++ // this answer cannot go (a full buffer, an unreachable client): skip it
			continue
		}
		sent += int(m)
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

func (u *udpSocket) sockoptInt(level, opt int) (int, error) {
	return unix.GetsockoptInt(u.fd, level, opt)
}

// udpHoldsP says the readers of this loop hold a P while they wait.
const udpHoldsP = true

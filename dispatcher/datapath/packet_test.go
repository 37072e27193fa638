//go:build linux

package datapath

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"

	"github.com/cilium/ebpf"
)

// Hand-built frames for BPF_PROG_TEST_RUN.

const (
	ipProtoICMP = 1
	ipProtoIPIP = 4
	ipProtoTCP  = 6
	ipProtoUDP  = 17
)

var (
	macIface  = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xd1}
	macRouter = net.HardwareAddr{0x02, 0, 0, 0, 0, 0xfe}
)

// ip4 describes an IPv4 packet to build.
type ip4 struct {
	src, dst netip.Addr
	proto    uint8
	tos      uint8
	id       uint16
	frag     uint16 // flags and offset, host order
	ttl      uint8
	options  []byte // multiple of 4 bytes
	payload  []byte // L4 header and data
}

func (p ip4) bytes() []byte {
	hl := 20 + len(p.options)
	b := make([]byte, hl+len(p.payload))
	b[0] = 0x40 | byte(hl/4)
	b[1] = p.tos
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	binary.BigEndian.PutUint16(b[4:], p.id)
	binary.BigEndian.PutUint16(b[6:], p.frag)
	b[8] = p.ttl
	if b[8] == 0 {
		b[8] = 64
	}
	b[9] = p.proto
	s, d := p.src.As4(), p.dst.As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	copy(b[20:], p.options)
	binary.BigEndian.PutUint16(b[10:], checksum(b[:hl]))
	copy(b[hl:], p.payload)
	return b
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func ether(dst, src net.HardwareAddr, typ uint16, payload []byte) []byte {
	b := make([]byte, 14+len(payload))
	copy(b, dst)
	copy(b[6:], src)
	binary.BigEndian.PutUint16(b[12:], typ)
	copy(b[14:], payload)
	return b
}

func udpHdr(sport, dport uint16, data []byte) []byte {
	b := make([]byte, 8+len(data))
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
	copy(b[8:], data)
	return b
}

func tcpHdr(sport, dport uint16, data []byte) []byte {
	b := make([]byte, 20+len(data))
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], 1000) // seq
	b[12] = 5 << 4
	b[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(b[14:], 65535)
	copy(b[20:], data)
	return b
}

// tcpFrame is a frame of a TCP segment from src:sport to dst:dport, as the
// dispatcher receives it from a router.
func tcpFrame(src netip.Addr, sport uint16, dst netip.Addr, dport uint16) []byte {
	ip := ip4{src: src, dst: dst, proto: ipProtoTCP, id: 0x1234, frag: 0x4000, payload: tcpHdr(sport, dport, []byte("hello"))}
	return ether(macIface, macRouter, 0x0800, ip.bytes())
}

func udpFrame(src netip.Addr, sport uint16, dst netip.Addr, dport uint16) []byte {
	ip := ip4{src: src, dst: dst, proto: ipProtoUDP, payload: udpHdr(sport, dport, []byte("hello"))}
	return ether(macIface, macRouter, 0x0800, ip.bytes())
}

// fragNeeded is an ICMP fragmentation-needed message from a router to the
// VIP about a packet vip:vport -> client:cport (a server's direct reply).
func fragNeeded(router, vip netip.Addr, vport uint16, client netip.Addr, cport uint16, proto uint8) []byte {
	var l4 []byte
	if proto == ipProtoTCP {
		l4 = tcpHdr(vport, cport, nil)[:8]
	} else {
		l4 = udpHdr(vport, cport, nil)[:8]
	}
	inner := ip4{src: vip, dst: client, proto: proto, frag: 0x4000, payload: l4}.bytes()
	binary.BigEndian.PutUint16(inner[2:], 1400) // the original's length
	icmp := make([]byte, 8+len(inner))
	icmp[0], icmp[1] = 3, 4
	binary.BigEndian.PutUint16(icmp[6:], 1280) // next-hop MTU
	copy(icmp[8:], inner)
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	ip := ip4{src: router, dst: vip, proto: ipProtoICMP, payload: icmp}
	return ether(macIface, macRouter, 0x0800, ip.bytes())
}

// needBPF skips a test that cannot load BPF programs here.
func needBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs")
	}
}

// skipIfNotPermitted skips on errors that mean BPF is not allowed here.
func skipIfNotPermitted(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, os.ErrPermission) || errors.Is(err, ebpf.ErrNotSupported) {
		t.Skipf("BPF not permitted here: %v", err)
	}
}

// run runs prog once on frame and returns its verdict and output frame.
func run(t testing.TB, prog *ebpf.Program, frame []byte) (uint32, []byte) {
	t.Helper()
	out := make([]byte, len(frame)+256)
	opts := &ebpf.RunOptions{Data: frame, DataOut: out}
	ret, err := prog.Run(opts)
	if err != nil {
		t.Fatalf("run program on %d-byte frame: %v", len(frame), err)
	}
	return ret, opts.DataOut
}

// XDP verdicts.
const (
	xdpAborted = 0
	xdpDrop    = 1
	xdpPass    = 2
	xdpTX      = 3
)

type runOpts = ebpf.RunOptions

func newMapFromID(id uint32) (*ebpf.Map, error) { return ebpf.NewMapFromID(ebpf.MapID(id)) }

// ip6 describes an IPv6 packet to build.
type ip6 struct {
	src, dst netip.Addr
	next     uint8
	tclass   uint8
	payload  []byte
}

func (p ip6) bytes() []byte {
	b := make([]byte, 40+len(p.payload))
	b[0] = 0x60 | p.tclass>>4
	b[1] = p.tclass << 4
	binary.BigEndian.PutUint16(b[4:], uint16(len(p.payload)))
	b[6] = p.next
	b[7] = 64
	s, d := p.src.As16(), p.dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	copy(b[40:], p.payload)
	return b
}

func tcp6Frame(src netip.Addr, sport uint16, dst netip.Addr, dport uint16) []byte {
	return ether(macIface, macRouter, 0x86dd, ip6{src: src, dst: dst, next: ipProtoTCP, payload: tcpHdr(sport, dport, []byte("hello"))}.bytes())
}

func udp6Frame(src netip.Addr, sport uint16, dst netip.Addr, dport uint16) []byte {
	return ether(macIface, macRouter, 0x86dd, ip6{src: src, dst: dst, next: ipProtoUDP, payload: udpHdr(sport, dport, []byte("hello"))}.bytes())
}

// packetTooBig is an ICMPv6 Packet Too Big from a router to the VIP about a
// packet vip:vport -> client:cport.
func packetTooBig(router, vip netip.Addr, vport uint16, client netip.Addr, cport uint16, proto uint8) []byte {
	var l4 []byte
	if proto == ipProtoTCP {
		l4 = tcpHdr(vport, cport, nil)[:8]
	} else {
		l4 = udpHdr(vport, cport, nil)[:8]
	}
	inner := ip6{src: vip, dst: client, next: proto, payload: l4}.bytes()
	binary.BigEndian.PutUint16(inner[4:], 1400)
	icmp := make([]byte, 8+len(inner))
	icmp[0] = 2
	binary.BigEndian.PutUint32(icmp[4:], 1280)
	copy(icmp[8:], inner)
	return ether(macIface, macRouter, 0x86dd, ip6{src: router, dst: vip, next: 58, payload: icmp}.bytes())
}

//go:build linux

package datapath

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// wantForward is an independent reading of which frames the program
// forwards, for the services of FuzzLB (webKey tcp/80 and dnsKey udp/53 on
// vip, and the same on vip6): a whole, unfragmented IPv4 TCP or UDP packet
// (IPv6 without extension headers) to one of them, or an ICMP
// fragmentation-needed (ICMPv6 Packet Too Big) message to the VIP about a
// packet from one.
func wantForward(f []byte) bool {
	isService := func(a netip.Addr, port uint16, proto uint8) bool {
		k := ServiceKey{VIP: a, Port: port, Proto: Proto(proto)}
		return k == webKey || k == dnsKey || k == web6Key || k == dns6Key
	}
	if len(f) >= 14+40 && binary.BigEndian.Uint16(f[12:]) == 0x86dd {
		return wantForward6(f[14:], isService)
	}
	if len(f) < 14+20 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return false
	}
	ip := f[14:]
	ihl := int(ip[0]&0x0f) * 4
	tot := int(binary.BigEndian.Uint16(ip[2:]))
	if ip[0]>>4 != 4 || ihl < 20 || tot < ihl || tot > len(ip) {
		return false
	}
	frag := binary.BigEndian.Uint16(ip[6:])
	l4 := ip[ihl:tot]
	dst, _ := netip.AddrFromSlice(ip[16:20])
	switch proto := ip[9]; proto {
	case ipProtoTCP, ipProtoUDP:
		need := 8
		if proto == ipProtoTCP {
			need = 20
		}
		if frag&0x3fff != 0 || len(l4) < need {
			return false
		}
		return isService(dst, binary.BigEndian.Uint16(l4[2:]), proto)
	case ipProtoICMP:
		if frag&0x3fff != 0 || len(l4) < 8 || l4[0] != 3 || l4[1] != 4 {
			return false
		}
		in := l4[8:]
		if len(in) < 20 {
			return false
		}
		inIHL := int(in[0]&0x0f) * 4
		if in[0]>>4 != 4 || inIHL < 20 || len(in) < inIHL+4 {
			return false
		}
		src, _ := netip.AddrFromSlice(in[12:16])
		if (in[9] != ipProtoTCP && in[9] != ipProtoUDP) || src != dst {
			return false
		}
		return isService(src, binary.BigEndian.Uint16(in[inIHL:]), in[9])
	}
	return false
}

func wantForward6(ip []byte, isService func(netip.Addr, uint16, uint8) bool) bool {
	plen := int(binary.BigEndian.Uint16(ip[4:]))
	if ip[0]>>4 != 6 || 40+plen > len(ip) {
		return false
	}
	l4 := ip[40 : 40+plen]
	dst := netip.AddrFrom16([16]byte(ip[24:40]))
	switch nh := ip[6]; nh {
	case ipProtoTCP, ipProtoUDP:
		need := 8
		if nh == ipProtoTCP {
			need = 20
		}
		return len(l4) >= need && isService(dst, binary.BigEndian.Uint16(l4[2:]), nh)
	case 58:
		if len(l4) < 8+40+4 || l4[0] != 2 || l4[1] != 0 {
			return false
		}
		in := l4[8:]
		src := netip.AddrFrom16([16]byte(in[8:24]))
		if in[0]>>4 != 6 || (in[6] != ipProtoTCP && in[6] != ipProtoUDP) || src != dst {
			return false
		}
		return isService(src, binary.BigEndian.Uint16(in[40:]), in[6])
	}
	return false
}

// FuzzLB runs arbitrary frames through the program and compares its verdict
// with wantForward: a frame is transmitted if and only if it should be,
// transmitted frames differ from the input only in their MAC addresses
// (to a backend's, from the interface's), and everything else is passed
// unchanged.
func FuzzLB(f *testing.F) {
	seeds := [][]byte{
		tcpFrame(client, 40000, vip, 80),
		udpFrame(client, 40000, vip, 53),
		udpFrame(client, 40000, vip, 80),
		fragNeeded(router, vip, 80, client, 40000, ipProtoTCP),
		fragNeeded(router, vip, 53, client, 40000, ipProtoUDP),
		ether(macIface, macRouter, 0x0800, ip4{src: client, dst: vip, proto: ipProtoUDP, options: []byte{1, 1, 1, 0}, payload: udpHdr(1, 53, nil)}.bytes()),
		ether(macIface, macRouter, 0x0800, ip4{src: client, dst: vip, proto: ipProtoUDP, frag: 0x2000, payload: udpHdr(1, 53, nil)}.bytes()),
		append(udpFrame(client, 1, vip, 53), make([]byte, 20)...), // Ethernet padding
		tcpFrame(client, 40000, vip, 80)[:40],
		tcp6Frame(client6, 40000, vip6, 80),
		udp6Frame(client6, 40000, vip6, 53),
		packetTooBig(router6, vip6, 80, client6, 40000, ipProtoTCP),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	d := newTestLB(f)
	if err := d.SetService(webKey, Service{Mode: ModeMAC}, table7); err != nil {
		f.Fatal(err)
	}
	for _, k := range []ServiceKey{dnsKey, web6Key, dns6Key} {
		if err := d.SetService(k, Service{Mode: ModeMAC}, table7); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > 1500 {
			return // the kernel runs XDP on 14 bytes and up
		}
		in := bytes.Clone(frame)
		ret, out := run(t, d.objs.TernLb, frame)
		want := wantForward(in)
		switch {
		case ret == xdpTX && !want:
			t.Fatalf("transmitted a frame it should pass:\n% x", in)
		case ret != xdpTX && want:
			t.Fatalf("verdict %d for a frame it should forward:\n% x", ret, in)
		case ret == xdpTX:
			if _, ok := backendByMAC(out[0:6]); !ok || !bytes.Equal(out[6:12], macIface) || !bytes.Equal(out[12:], in[12:]) {
				t.Fatalf("forwarded frame wrong:\n in % x\nout % x", in, out)
			}
		case ret != xdpPass:
			t.Fatalf("verdict %d, want XDP_PASS", ret)
		case !bytes.Equal(out, in):
			t.Fatalf("passed frame changed:\n in % x\nout % x", in, out)
		}
	})
}

// wantDecap is an independent reading of which frames the decapsulator
// strips (VIPs vip and vip6) and the frame it should leave.
func wantDecap(f []byte) ([]byte, bool) {
	if len(f) < 14+20 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return nil, false
	}
	outer := f[14:]
	ohl := int(outer[0]&0x0f) * 4
	tot := int(binary.BigEndian.Uint16(outer[2:]))
	proto := outer[9]
	if outer[0]>>4 != 4 || ohl < 20 || tot < ohl || tot > len(outer) || (proto != ipProtoIPIP && proto != 41) {
		return nil, false
	}
	if binary.BigEndian.Uint16(outer[6:])&0x3fff != 0 {
		return nil, false
	}
	inner := outer[ohl:tot]
	etype := uint16(0x0800)
	switch proto {
	case ipProtoIPIP:
		if len(inner) < 20 || inner[0]>>4 != 4 || inner[0]&0x0f < 5 || int(binary.BigEndian.Uint16(inner[2:])) != len(inner) {
			return nil, false
		}
		if dst, _ := netip.AddrFromSlice(inner[16:20]); dst != vip {
			return nil, false
		}
	default:
		if len(inner) < 40 || inner[0]>>4 != 6 || 40+int(binary.BigEndian.Uint16(inner[4:])) != len(inner) {
			return nil, false
		}
		if netip.AddrFrom16([16]byte(inner[24:40])) != vip6 {
			return nil, false
		}
		etype = 0x86dd
	}
	out := append(bytes.Clone(f[:12]), byte(etype>>8), byte(etype))
	return append(out, f[14+ohl:]...), true
}

// FuzzDecap compares the decapsulator with wantDecap: it strips exactly the
// frames it should, to exactly the inner packet, and passes everything else
// unchanged.
func FuzzDecap(f *testing.F) {
	server := netip.MustParseAddr("10.0.1.2")
	inner4 := ip4{src: client, dst: vip, proto: ipProtoTCP, payload: tcpHdr(1, 80, nil)}.bytes()
	inner6 := ip6{src: client6, dst: vip6, next: ipProtoUDP, payload: udpHdr(1, 53, nil)}.bytes()
	for _, s := range [][]byte{
		ipipFrame(tunnelSrc, server, inner4, nil),
		ipipFrame(tunnelSrc, server, inner4, []byte{1, 1, 1, 0}),
		ether(macIface, macRouter, 0x0800, ip4{src: tunnelSrc, dst: server, proto: 41, payload: inner6}.bytes()),
		tcpFrame(client, 1, vip, 80),
	} {
		f.Add(s)
	}
	d := newTestDecap(f, vip, vip6)
	f.Fuzz(func(t *testing.T, frame []byte) {
		if len(frame) < 14 || len(frame) > 1500 {
			return
		}
		in := bytes.Clone(frame)
		ret, out := run(t, d.objs.TernDecap, frame)
		if ret != xdpPass {
			t.Fatalf("verdict %d, want XDP_PASS", ret)
		}
		want, strip := wantDecap(in)
		if !strip {
			want = in
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("stripped %v:\n in % x\nout % x\nwant % x", strip, in, out, want)
		}
	})
}

//go:build linux

package datapath

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

var (
	vip6    = netip.MustParseAddr("2001:db8::10")
	client6 = netip.MustParseAddr("2001:db8:1::7")
	router6 = netip.MustParseAddr("2001:db8:ff::1")
	web6Key = ServiceKey{VIP: vip6, Port: 80, Proto: ProtoTCP}
	dns6Key = ServiceKey{VIP: vip6, Port: 53, Proto: ProtoUDP}
)

func TestIPv6ModeMAC(t *testing.T) {
	d := newTestLB(t)
	if err := d.SetService(web6Key, Service{Mode: ModeMAC}, table7); err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]int{}
	for port := uint16(1024); port < 1124; port++ {
		in := tcp6Frame(client6, port, vip6, 80)
		ret, out := run(t, d.objs.TernLb, in)
		if ret != xdpTX {
			t.Fatalf("port %d: verdict %d, want XDP_TX", port, ret)
		}
		id, ok := backendByMAC(out[0:6])
		if !ok || !bytes.Equal(out[6:12], macIface) || !bytes.Equal(out[12:], in[12:]) {
			t.Fatalf("port %d: forwarded frame wrong: % x", port, out[:20])
		}
		seen[id]++
	}
	for id := range testBackends {
		if seen[id] < 15 {
			t.Errorf("backend %d got %d of 100 flows: %v", id, seen[id], seen)
		}
	}
	keys, err := d.Services()
	if err != nil || len(keys) != 1 || keys[0] != web6Key {
		t.Errorf("Services() = %v, %v", keys, err)
	}
}

// TestIPv6ModeIPIP: IPv6 packets go to IPv4 backends inside IPv4
// (protocol 41), and the decapsulator restores them.
func TestIPv6ModeIPIP(t *testing.T) {
	d := newTestLB(t)
	if err := d.SetService(dns6Key, Service{Mode: ModeIPIP}, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	in := ether(macIface, macRouter, 0x86dd, ip6{src: client6, dst: vip6, next: ipProtoUDP, tclass: 0xb8, payload: udpHdr(5353, 53, []byte("q"))}.bytes())
	ret, out := run(t, d.objs.TernLb, in)
	if ret != xdpTX {
		t.Fatalf("verdict %d, want XDP_TX", ret)
	}
	if !bytes.Equal(out[0:6], testBackends[2].MAC) || binary.BigEndian.Uint16(out[12:]) != 0x0800 {
		t.Fatalf("Ethernet header % x", out[:14])
	}
	outer := out[14:34]
	if outer[0] != 0x45 || outer[1] != 0xb8 || outer[9] != 41 || binary.BigEndian.Uint16(outer[6:]) != 0x4000 {
		t.Errorf("outer header % x: want IPv4, TOS b8 (traffic class), protocol 41, DF", outer)
	}
	if got, want := binary.BigEndian.Uint16(outer[2:]), uint16(len(in)-14+20); got != want {
		t.Errorf("outer total length %d, want %d", got, want)
	}
	if checksum(outer) != 0 {
		t.Error("outer checksum wrong")
	}
	if dst, _ := netip.AddrFromSlice(outer[16:20]); dst != testBackends[2].IP {
		t.Errorf("outer destination %s, want %s", dst, testBackends[2].IP)
	}
	if !bytes.Equal(out[34:], in[14:]) {
		t.Error("inner IPv6 packet changed")
	}

	dec := newTestDecap(t, vip6)
	ret, back := run(t, dec.objs.TernDecap, out)
	if ret != xdpPass {
		t.Fatalf("decap verdict %d", ret)
	}
	if binary.BigEndian.Uint16(back[12:]) != 0x86dd || !bytes.Equal(back[14:], in[14:]) {
		t.Fatalf("decapsulated frame % x, want EtherType IPv6 and the original packet", back)
	}
	// A decapsulator for other VIPs leaves it alone.
	other := newTestDecap(t, netip.MustParseAddr("2001:db8::99"), vip)
	if ret, same := run(t, other.objs.TernDecap, out); ret != xdpPass || !bytes.Equal(same, out) {
		t.Fatalf("decap for other VIPs changed the frame")
	}

	// An IPv6 backend cannot be reached through an IPv4 tunnel: dropped.
	if err := d.SetBackend(9, Backend{IP: netip.MustParseAddr("2001:db8:2::9"), MAC: net.HardwareAddr{2, 0, 0, 0, 2, 9}}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetService(dns6Key, Service{Mode: ModeIPIP}, []uint32{9}); err != nil {
		t.Fatal(err)
	}
	if ret, _ := run(t, d.objs.TernLb, in); ret != xdpDrop {
		t.Errorf("ipip to an IPv6 backend: verdict %d, want XDP_DROP", ret)
	}
	// ... but mac mode only needs its MAC.
	if err := d.SetService(dns6Key, Service{Mode: ModeMAC}, []uint32{9}); err != nil {
		t.Fatal(err)
	}
	if ret, out := run(t, d.objs.TernLb, in); ret != xdpTX || !bytes.Equal(out[:6], []byte{2, 0, 0, 0, 2, 9}) {
		t.Errorf("mac mode to an IPv6 backend: verdict %d to %s", ret, net.HardwareAddr(out[:6]))
	}
}

func TestIPv6PassedUnchanged(t *testing.T) {
	d := newTestLB(t)
	if err := d.SetService(web6Key, Service{Mode: ModeMAC}, table7); err != nil {
		t.Fatal(err)
	}
	// A v4 service on the same port must not catch v6 and the reverse.
	if err := d.SetService(webKey, Service{Mode: ModeMAC}, table7); err != nil {
		t.Fatal(err)
	}
	hopByHop := ip6{src: client6, dst: vip6, next: 0, payload: append([]byte{ipProtoTCP, 0, 1, 4, 0, 0, 0, 0}, tcpHdr(1, 80, nil)...)}.bytes()
	fragment := ip6{src: client6, dst: vip6, next: 44, payload: append([]byte{ipProtoTCP, 0, 0, 1, 0, 0, 0, 1}, tcpHdr(1, 80, nil)...)}.bytes()
	ptbOther := packetTooBig(router6, vip6, 80, client6, 40000, ipProtoTCP)
	copy(ptbOther[14+40+8+8:], netip.MustParseAddr("2001:db8::11").AsSlice())
	tests := []struct {
		name  string
		frame []byte
	}{
		{"other address", tcp6Frame(client6, 1, netip.MustParseAddr("2001:db8::11"), 80)},
		{"unknown port", tcp6Frame(client6, 1, vip6, 81)},
		{"UDP to a TCP port", udp6Frame(client6, 1, vip6, 80)},
		{"v4-mapped VIP", tcp6Frame(client6, 1, netip.AddrFrom16(vip.As16()), 80)},
		{"hop-by-hop header", ether(macIface, macRouter, 0x86dd, hopByHop)},
		{"fragment header", ether(macIface, macRouter, 0x86dd, fragment)},
		{"ICMPv6 echo", ether(macIface, macRouter, 0x86dd, ip6{src: client6, dst: vip6, next: 58, payload: []byte{128, 0, 0, 0, 0, 1, 0, 1}}.bytes())},
		{"Packet Too Big about another source", ptbOther},
		{"version 4 in an IPv6 frame", func() []byte {
			f := tcp6Frame(client6, 1, vip6, 80)
			f[14] = 0x40
			return f
		}()},
		{"payload length beyond the frame", func() []byte {
			f := tcp6Frame(client6, 1, vip6, 80)
			binary.BigEndian.PutUint16(f[14+4:], uint16(len(f)-14-40+1))
			return f
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(tc.frame)
			ret, out := run(t, d.objs.TernLb, tc.frame)
			if ret != xdpPass || !bytes.Equal(out, in) {
				t.Fatalf("verdict %d, changed %v: want XDP_PASS unchanged", ret, !bytes.Equal(out, in))
			}
		})
	}
}

func TestIPv6Truncated(t *testing.T) {
	d := newTestLB(t)
	for _, k := range []ServiceKey{web6Key, dns6Key} {
		if err := d.SetService(k, Service{Mode: ModeIPIP}, table7); err != nil {
			t.Fatal(err)
		}
	}
	for name, f := range map[string]struct {
		frame []byte
		need  int
	}{
		"tcp":  {tcp6Frame(client6, 1, vip6, 80), 14 + 40 + 20},
		"udp":  {udp6Frame(client6, 1, vip6, 53), 14 + 40 + 8},
		"icmp": {packetTooBig(router6, vip6, 80, client6, 1, ipProtoTCP), 14 + 40 + 8 + 40 + 4},
	} {
		if ret, _ := run(t, d.objs.TernLb, f.frame); ret != xdpTX {
			t.Fatalf("%s: whole frame: verdict %d", name, ret)
		}
		for n := 14; n < f.need; n++ {
			for _, fix := range []bool{false, true} {
				cut := bytes.Clone(f.frame[:n])
				if fix && n >= 14+6 {
					binary.BigEndian.PutUint16(cut[14+4:], uint16(max(n-14-40, 0)))
				}
				ret, out := run(t, d.objs.TernLb, cut)
				if ret == xdpTX {
					t.Fatalf("%s cut to %d bytes (length fixed %v): transmitted", name, n, fix)
				}
				if ret == xdpPass && !bytes.Equal(out, cut) {
					t.Fatalf("%s cut to %d bytes: passed frame changed", name, n)
				}
			}
		}
	}
}

func TestIPv6PacketTooBigFollowsFlow(t *testing.T) {
	d := newTestLB(t)
	for _, k := range []ServiceKey{web6Key, dns6Key} {
		if err := d.SetService(k, Service{Mode: ModeMAC}, table7); err != nil {
			t.Fatal(err)
		}
	}
	sent := 0
	for port := uint16(3000); port < 3050; port++ {
		for _, proto := range []uint8{ipProtoTCP, ipProtoUDP} {
			fwd, vport := tcp6Frame(client6, port, vip6, 80), uint16(80)
			if proto == ipProtoUDP {
				fwd, vport = udp6Frame(client6, port, vip6, 53), 53
			}
			ret, out := run(t, d.objs.TernLb, fwd)
			if ret != xdpTX {
				t.Fatalf("flow verdict %d", ret)
			}
			want := bytes.Clone(out[:6])
			ret, out = run(t, d.objs.TernLb, packetTooBig(router6, vip6, vport, client6, port, proto))
			if ret != xdpTX {
				t.Fatalf("port %d: Packet Too Big verdict %d, want XDP_TX", port, ret)
			}
			sent++
			if !bytes.Equal(out[:6], want) {
				t.Fatalf("port %d proto %d: flow to %s, its Packet Too Big to %s", port, proto, net.HardwareAddr(want), net.HardwareAddr(out[:6]))
			}
		}
	}
	c, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.ICMPTooBig != uint64(sent) || c.Services[web6Key].Packets != 100 || c.Services[dns6Key].Packets != 100 {
		t.Errorf("counters %+v: want %d ICMP, 100 packets per service", c, sent)
	}
}

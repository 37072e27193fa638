//go:build linux

package datapath

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
)

var (
	vip       = netip.MustParseAddr("192.0.2.10")
	client    = netip.MustParseAddr("198.51.100.7")
	router    = netip.MustParseAddr("203.0.113.1")
	tunnelSrc = netip.MustParseAddr("10.0.0.1")
	webKey    = ServiceKey{VIP: vip, Port: 80, Proto: ProtoTCP}
	dnsKey    = ServiceKey{VIP: vip, Port: 53, Proto: ProtoUDP}
)

// backends of the tests: id -> Backend.
var testBackends = map[uint32]Backend{
	1: {IP: netip.MustParseAddr("10.0.1.1"), MAC: net.HardwareAddr{0x02, 0, 0, 0, 1, 1}},
	2: {IP: netip.MustParseAddr("10.0.1.2"), MAC: net.HardwareAddr{0x02, 0, 0, 0, 1, 2}},
	3: {IP: netip.MustParseAddr("10.0.1.3"), MAC: net.HardwareAddr{0x02, 0, 0, 0, 1, 3}},
}

// newTestLB loads the program unattached and unpinned, with the
// test backends set.
func newTestLB(t testing.TB) *LB {
	t.Helper()
	needBPF(t)
	cfg, err := Config{Interface: "test", NextHopMAC: macRouter, TunnelSrc: tunnelSrc, MaxServices: 8, MaxBackends: 16}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	d, err := newLB(cfg, macIface, "")
	if err != nil {
		skipIfNotPermitted(t, err)
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	for id, b := range testBackends {
		if err := d.SetBackend(id, b); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// table7 spreads over backends 1, 2, 3.
var table7 = []uint32{1, 2, 3, 1, 2, 3, 1}

func backendByMAC(mac []byte) (uint32, bool) {
	for id, b := range testBackends {
		if bytes.Equal(b.MAC, mac) {
			return id, true
		}
	}
	return 0, false
}

func backendByIP(ip []byte) (uint32, bool) {
	a, _ := netip.AddrFromSlice(ip)
	for id, b := range testBackends {
		if b.IP == a {
			return id, true
		}
	}
	return 0, false
}

func TestModeMAC(t *testing.T) {
	d := newTestLB(t)
	if err := d.SetService(webKey, Service{Mode: ModeMAC}, table7); err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]int{}
	for port := uint16(1024); port < 1124; port++ {
		in := tcpFrame(client, port, vip, 80)
		ret, out := run(t, d.objs.TernLb, in)
		if ret != xdpTX {
			t.Fatalf("port %d: verdict %d, want XDP_TX", port, ret)
		}
		id, ok := backendByMAC(out[0:6])
		if !ok {
			t.Fatalf("port %d: destination MAC %s is no backend's", port, net.HardwareAddr(out[0:6]))
		}
		if !bytes.Equal(out[6:12], macIface) {
			t.Fatalf("port %d: source MAC %s, want the interface's %s", port, net.HardwareAddr(out[6:12]), macIface)
		}
		if !bytes.Equal(out[12:], in[12:]) {
			t.Fatalf("port %d: packet changed beyond the MAC addresses", port)
		}
		// The same flow always goes to the same backend.
		_, again := run(t, d.objs.TernLb, in)
		if !bytes.Equal(again[0:6], out[0:6]) {
			t.Fatalf("port %d: flow went to %s then %s", port, net.HardwareAddr(out[0:6]), net.HardwareAddr(again[0:6]))
		}
		seen[id]++
	}
	for id := range testBackends {
		if seen[id] < 15 {
			t.Errorf("backend %d got %d of 100 flows: %v", id, seen[id], seen)
		}
	}
}

func TestModeIPIP(t *testing.T) {
	otherSrc := netip.MustParseAddr("10.0.0.99")
	d := newTestLB(t)
	// Backend 4 has no MAC of its own: its packets go to the next hop.
	if err := d.SetBackend(4, Backend{IP: netip.MustParseAddr("10.0.2.4")}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		svc     Service
		table   []uint32
		wantSrc netip.Addr
		wantDst netip.Addr
		wantMAC net.HardwareAddr
	}{
		{"global tunnel source", Service{Mode: ModeIPIP}, []uint32{2}, tunnelSrc, testBackends[2].IP, testBackends[2].MAC},
		{"service tunnel source", Service{Mode: ModeIPIP, TunnelSrc: otherSrc}, []uint32{3}, otherSrc, testBackends[3].IP, testBackends[3].MAC},
		{"next hop MAC", Service{Mode: ModeIPIP}, []uint32{4}, tunnelSrc, netip.MustParseAddr("10.0.2.4"), macRouter},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := d.SetService(webKey, tc.svc, tc.table); err != nil {
				t.Fatal(err)
			}
			in := tcpFrame(client, 40000, vip, 80)
			in[14+1] = 0x28 // TOS, copied to the outer header
			binary.BigEndian.PutUint16(in[14+10:], 0)
			binary.BigEndian.PutUint16(in[14+10:], checksum(in[14:34]))
			ret, out := run(t, d.objs.TernLb, in)
			if ret != xdpTX {
				t.Fatalf("verdict %d, want XDP_TX", ret)
			}
			if len(out) != len(in)+20 {
				t.Fatalf("output %d bytes, want %d", len(out), len(in)+20)
			}
			if !bytes.Equal(out[0:6], tc.wantMAC) || !bytes.Equal(out[6:12], macIface) || binary.BigEndian.Uint16(out[12:]) != 0x0800 {
				t.Fatalf("Ethernet header % x, want dst %s src %s type IPv4", out[:14], tc.wantMAC, macIface)
			}
			outer := out[14:34]
			if outer[0] != 0x45 {
				t.Errorf("outer version/IHL %#x, want 0x45", outer[0])
			}
			if outer[1] != 0x28 {
				t.Errorf("outer TOS %#x, want the inner's 0x28", outer[1])
			}
			if got, want := binary.BigEndian.Uint16(outer[2:]), uint16(len(in)-14+20); got != want {
				t.Errorf("outer total length %d, want %d", got, want)
			}
			if got := binary.BigEndian.Uint16(outer[6:]); got != 0x4000 {
				t.Errorf("outer flags/offset %#x, want DF copied from the inner packet", got)
			}
			if outer[8] != 64 || outer[9] != ipProtoIPIP {
				t.Errorf("outer TTL %d protocol %d, want 64 and 4", outer[8], outer[9])
			}
			if checksum(outer) != 0 {
				t.Errorf("outer header checksum %#04x is wrong", binary.BigEndian.Uint16(outer[10:]))
			}
			if src, _ := netip.AddrFromSlice(outer[12:16]); src != tc.wantSrc {
				t.Errorf("outer source %s, want %s", src, tc.wantSrc)
			}
			if dst, _ := netip.AddrFromSlice(outer[16:20]); dst != tc.wantDst {
				t.Errorf("outer destination %s, want %s", dst, tc.wantDst)
			}
			if !bytes.Equal(out[34:], in[14:]) {
				t.Errorf("inner packet changed:\n got % x\nwant % x", out[34:], in[14:])
			}
		})
	}
}

func TestPassedUnchanged(t *testing.T) {
	d := newTestLB(t)
	if err := d.SetService(webKey, Service{Mode: ModeMAC}, table7); err != nil {
		t.Fatal(err)
	}
	if err := d.SetService(dnsKey, Service{Mode: ModeMAC}, table7); err != nil {
		t.Fatal(err)
	}
	other := netip.MustParseAddr("192.0.2.11")
	ipv6 := []byte{0x60, 0, 0, 0, 0, 8, 17, 64}
	ipv6 = append(ipv6, make([]byte, 32+8)...)
	echo := ip4{src: client, dst: vip, proto: ipProtoICMP, payload: []byte{8, 0, 0, 0, 0, 1, 0, 1}}.bytes()
	unreach := fragNeeded(router, vip, 80, client, 40000, ipProtoTCP)
	unreach[14+20+1] = 3 // port unreachable, not fragmentation needed
	otherSrc := fragNeeded(router, vip, 80, client, 40000, ipProtoTCP)
	copy(otherSrc[14+20+8+12:], other.AsSlice()[:]) // embedded source is not the VIP it was sent to
	tests := []struct {
		name  string
		frame []byte
	}{
		{"other address", tcpFrame(client, 40000, other, 80)},
		{"unknown port", tcpFrame(client, 40000, vip, 81)},
		{"UDP to a TCP port", udpFrame(client, 40000, vip, 80)},
		{"TCP to a UDP port", tcpFrame(client, 40000, vip, 53)},
		{"from the VIP port", tcpFrame(vip, 80, client, 40000)},
		{"ARP", ether(macIface, macRouter, 0x0806, make([]byte, 28))},
		{"IPv6", ether(macIface, macRouter, 0x86dd, ipv6)},
		{"ICMP echo to the VIP", ether(macIface, macRouter, 0x0800, echo)},
		{"ICMP port unreachable", unreach},
		{"ICMP about another source", otherSrc},
		{"GRE to the VIP", ether(macIface, macRouter, 0x0800, ip4{src: client, dst: vip, proto: 47, payload: make([]byte, 24)}.bytes())},
		{"non-first fragment", ether(macIface, macRouter, 0x0800, ip4{src: client, dst: vip, proto: ipProtoTCP, frag: 0x0010, payload: tcpHdr(40000, 80, nil)}.bytes())},
		{"first fragment", ether(macIface, macRouter, 0x0800, ip4{src: client, dst: vip, proto: ipProtoUDP, frag: 0x2000, payload: udpHdr(40000, 53, make([]byte, 64))}.bytes())},
		{"IPv4 header length below 5", func() []byte {
			f := udpFrame(client, 40000, vip, 53)
			f[14] = 0x44
			return f
		}()},
		{"IP version 6 in an IPv4 frame", func() []byte {
			f := udpFrame(client, 40000, vip, 53)
			f[14] = 0x65
			return f
		}()},
		{"total length beyond the frame", func() []byte {
			f := udpFrame(client, 40000, vip, 53)
			binary.BigEndian.PutUint16(f[16:], uint16(len(f)-14+1))
			return f
		}()},
		{"total length below the header", func() []byte {
			f := udpFrame(client, 40000, vip, 53)
			binary.BigEndian.PutUint16(f[16:], 19)
			return f
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(tc.frame)
			ret, out := run(t, d.objs.TernLb, tc.frame)
			if ret != xdpPass {
				t.Fatalf("verdict %d, want XDP_PASS", ret)
			}
			if !bytes.Equal(out, in) {
				t.Fatalf("passed frame changed:\n got % x\nwant % x", out, in)
			}
		})
	}
	c, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.Fragments != 1 {
		t.Errorf("fragments counted %d, want 1 (the first fragment to a service)", c.Fragments)
	}
	if c.Services[webKey].Packets != 0 || c.Services[dnsKey].Packets != 0 {
		t.Errorf("passed packets counted as forwarded: %+v", c.Services)
	}
}

func TestIPOptions(t *testing.T) {
	d := newTestLB(t)
	if err := d.SetService(dnsKey, Service{Mode: ModeMAC}, []uint32{2}); err != nil {
		t.Fatal(err)
	}
	// Record Route (7), length 8, pointer 4, then end of options.
	opts := []byte{7, 7, 4, 0, 0, 0, 0, 0}
	in := ether(macIface, macRouter, 0x0800, ip4{src: client, dst: vip, proto: ipProtoUDP, options: opts, payload: udpHdr(40000, 53, []byte("q"))}.bytes())
	ret, out := run(t, d.objs.TernLb, in)
	if ret != xdpTX || !bytes.Equal(out[0:6], testBackends[2].MAC) {
		t.Fatalf("verdict %d to %s, want XDP_TX to backend 2", ret, net.HardwareAddr(out[0:6]))
	}
	// The ports are found after the options: another port passes.
	in = ether(macIface, macRouter, 0x0800, ip4{src: client, dst: vip, proto: ipProtoUDP, options: opts, payload: udpHdr(40000, 54, []byte("q"))}.bytes())
	if ret, _ := run(t, d.objs.TernLb, in); ret != xdpPass {
		t.Fatalf("port 54 with options: verdict %d, want XDP_PASS", ret)
	}
}

// TestTruncated cuts frames to a VIP at every length short of their headers:
// none may be transmitted, whether the IP total length still claims the full
// packet or was made to match the cut.
func TestTruncated(t *testing.T) {
	for _, mode := range []Mode{ModeMAC, ModeIPIP} {
		t.Run(mode.String(), func(t *testing.T) {
			d := newTestLB(t)
			if err := d.SetService(webKey, Service{Mode: mode}, table7); err != nil {
				t.Fatal(err)
			}
			if err := d.SetService(dnsKey, Service{Mode: mode}, table7); err != nil {
				t.Fatal(err)
			}
			full := map[string]struct {
				frame []byte
				need  int // bytes needed to forward
			}{
				"tcp":  {tcpFrame(client, 40000, vip, 80), 14 + 20 + 20},
				"udp":  {udpFrame(client, 40000, vip, 53), 14 + 20 + 8},
				"icmp": {fragNeeded(router, vip, 80, client, 40000, ipProtoTCP), 14 + 20 + 8 + 20 + 4},
			}
			for name, f := range full {
				if ret, _ := run(t, d.objs.TernLb, f.frame); ret != xdpTX {
					t.Fatalf("%s: whole frame: verdict %d, want XDP_TX", name, ret)
				}
				for n := 0; n < f.need; n++ {
					for _, fix := range []bool{false, true} {
						cut := bytes.Clone(f.frame[:n])
						if fix && n >= 14+4 {
							binary.BigEndian.PutUint16(cut[16:], uint16(n-14))
						}
						if n < 14 {
							// The kernel refuses to run XDP on less than an
							// Ethernet header.
							if _, err := d.objs.TernLb.Run(&runOpts{Data: cut}); err == nil {
								t.Fatalf("%s cut to %d: kernel ran the program", name, n)
							}
							continue
						}
						ret, out := run(t, d.objs.TernLb, cut)
						if ret == xdpTX {
							t.Fatalf("%s cut to %d bytes (total length fixed %v): transmitted", name, n, fix)
						}
						if ret == xdpPass && !bytes.Equal(out, cut) {
							t.Fatalf("%s cut to %d bytes: passed frame changed", name, n)
						}
					}
				}
			}
			c, err := d.Counters()
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Services[webKey].Packets + c.Services[dnsKey].Packets; got != 3 {
				t.Errorf("services counted %d forwarded packets, want the 3 whole frames", got)
			}
		})
	}
}

func TestICMPFragNeededFollowsFlow(t *testing.T) {
	for _, mode := range []Mode{ModeMAC, ModeIPIP} {
		t.Run(mode.String(), func(t *testing.T) {
			d := newTestLB(t)
			if err := d.SetService(webKey, Service{Mode: mode}, table7); err != nil {
				t.Fatal(err)
			}
			if err := d.SetService(dnsKey, Service{Mode: mode}, table7); err != nil {
				t.Fatal(err)
			}
			backendOf := func(out []byte) uint32 {
				t.Helper()
				var id uint32
				var ok bool
				if mode == ModeMAC {
					id, ok = backendByMAC(out[0:6])
				} else {
					id, ok = backendByIP(out[14+16 : 14+20])
				}
				if !ok {
					t.Fatalf("output goes to no backend: % x", out[:34])
				}
				return id
			}
			sent := 0
			for port := uint16(2000); port < 2050; port++ {
				for _, proto := range []uint8{ipProtoTCP, ipProtoUDP} {
					var fwd []byte
					vport := uint16(80)
					if proto == ipProtoTCP {
						fwd = tcpFrame(client, port, vip, 80)
					} else {
						vport = 53
						fwd = udpFrame(client, port, vip, 53)
					}
					ret, out := run(t, d.objs.TernLb, fwd)
					if ret != xdpTX {
						t.Fatalf("flow verdict %d", ret)
					}
					want := backendOf(out)
					icmp := fragNeeded(router, vip, vport, client, port, proto)
					ret, out = run(t, d.objs.TernLb, icmp)
					if ret != xdpTX {
						t.Fatalf("port %d: ICMP verdict %d, want XDP_TX", port, ret)
					}
					sent++
					if got := backendOf(out); got != want {
						t.Fatalf("client port %d proto %d: flow went to backend %d, its ICMP to %d", port, proto, want, got)
					}
				}
			}
			c, err := d.Counters()
			if err != nil {
				t.Fatal(err)
			}
			if c.ICMPTooBig != uint64(sent) {
				t.Errorf("ICMP counted %d, want %d", c.ICMPTooBig, sent)
			}
		})
	}
}

func TestCounters(t *testing.T) {
	d := newTestLB(t)
	if err := d.SetService(webKey, Service{Mode: ModeMAC}, table7); err != nil {
		t.Fatal(err)
	}
	if err := d.SetService(dnsKey, Service{Mode: ModeIPIP}, []uint32{3}); err != nil {
		t.Fatal(err)
	}
	perBackend := map[uint32]uint64{}
	var webBytes uint64
	for port := uint16(1); port <= 60; port++ {
		f := tcpFrame(client, port, vip, 80)
		_, out := run(t, d.objs.TernLb, f)
		id, _ := backendByMAC(out[:6])
		perBackend[id]++
		webBytes += uint64(len(f))
	}
	dns := udpFrame(client, 5353, vip, 53)
	for range 7 {
		run(t, d.objs.TernLb, dns)
	}
	perBackend[3] += 7
	run(t, d.objs.TernLb, tcpFrame(client, 1, vip, 8080)) // passed: not counted

	c, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Services[webKey]; got != (Counter{60, webBytes}) {
		t.Errorf("web service counted %+v, want {60 %d}", got, webBytes)
	}
	if got := c.Services[dnsKey]; got != (Counter{7, 7 * uint64(len(dns))}) {
		t.Errorf("dns service counted %+v, want {7 %d}", got, 7*len(dns))
	}
	for id := range testBackends {
		if c.Backends[id].Packets != perBackend[id] {
			t.Errorf("backend %d counted %d packets, want %d", id, c.Backends[id].Packets, perBackend[id])
		}
	}

	// Empty tables and unset backends drop, counted.
	if err := d.SetService(webKey, Service{Mode: ModeMAC}, nil); err != nil {
		t.Fatal(err)
	}
	if ret, _ := run(t, d.objs.TernLb, tcpFrame(client, 1, vip, 80)); ret != xdpDrop {
		t.Errorf("empty table: verdict %d, want XDP_DROP", ret)
	}
	if err := d.DeleteBackend(3); err != nil {
		t.Fatal(err)
	}
	if ret, _ := run(t, d.objs.TernLb, dns); ret != xdpDrop {
		t.Errorf("deleted backend: verdict %d, want XDP_DROP", ret)
	}
	c, err = d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.NoBackend != 2 {
		t.Errorf("no-backend drops counted %d, want 2", c.NoBackend)
	}
	if _, ok := c.Backends[3]; ok {
		t.Errorf("deleted backend 3 still reported: %+v", c.Backends[3])
	}

	// A deleted service's counters start from zero when its slot is reused.
	if err := d.DeleteService(dnsKey); err != nil {
		t.Fatal(err)
	}
	if err := d.SetService(dnsKey, Service{Mode: ModeMAC}, []uint32{1}); err != nil {
		t.Fatal(err)
	}
	c, err = d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Services[dnsKey]; got != (Counter{}) {
		t.Errorf("re-added service starts at %+v, want zero", got)
	}
}

func TestLocalBackendPassed(t *testing.T) {
	d := newTestLB(t)
	if err := d.SetBackend(5, Backend{IP: netip.MustParseAddr("10.0.0.1"), Local: true}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetBackend(6, Backend{IP: netip.MustParseAddr("10.0.0.1"), MAC: macIface}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint32{5, 6} {
		if err := d.SetService(webKey, Service{Mode: ModeMAC}, []uint32{id}); err != nil {
			t.Fatal(err)
		}
		in := tcpFrame(client, 1, vip, 80)
		ret, out := run(t, d.objs.TernLb, in)
		if ret != xdpPass || !bytes.Equal(out, in) {
			t.Errorf("backend %d (this host): verdict %d, want XDP_PASS unchanged", id, ret)
		}
	}
	c, err := d.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.Backends[5].Packets != 1 || c.Backends[6].Packets != 1 {
		t.Errorf("local deliveries not counted: %+v", c.Backends)
	}
}

// TestTableSwapAtomic changes a service between (mac, backend 1) and
// (ipip, backend 2) while packets flow: every packet must show one whole
// state, never the mode of one and the table of the other, and never be
// dropped or passed for want of a table.
func TestTableSwapAtomic(t *testing.T) {
	d := newTestLB(t)
	if err := d.SetService(webKey, Service{Mode: ModeMAC}, []uint32{1, 1, 1}); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var packets, macs, ipips atomic.Int64
	errc := make(chan string, 4)
	for w := range 2 {
		wg.Go(func() {
			for port := uint16(w * 10000); !stop.Load(); port++ {
				opts := &runOpts{Data: tcpFrame(client, port, vip, 80), DataOut: make([]byte, 256)}
				ret, err := d.objs.TernLb.Run(opts)
				if err != nil {
					errc <- err.Error()
					return
				}
				out := opts.DataOut
				packets.Add(1)
				switch {
				case ret == xdpTX && len(out) > 34 && out[14+9] == ipProtoIPIP:
					if id, _ := backendByIP(out[14+16 : 14+20]); id != 2 {
						errc <- "ipip packet to backend other than 2"
						return
					}
					ipips.Add(1)
				case ret == xdpTX:
					if id, _ := backendByMAC(out[:6]); id != 1 {
						errc <- "mac packet to backend other than 1"
						return
					}
					macs.Add(1)
				default:
					errc <- "packet not transmitted during swap"
					return
				}
			}
		})
	}
	for i := 0; i < 200 && len(errc) == 0; i++ {
		var err error
		if i%2 == 0 {
			err = d.SetService(webKey, Service{Mode: ModeIPIP}, []uint32{2, 2, 2, 2, 2})
		} else {
			err = d.SetService(webKey, Service{Mode: ModeMAC}, []uint32{1, 1, 1})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for e := range errc {
		t.Error(e)
	}
	t.Logf("%d packets during 200 swaps: %d mac, %d ipip", packets.Load(), macs.Load(), ipips.Load())
}

// TestTableDoubleBuffer checks the scheme under the atomic swap: the live
// table is frozen (nothing can write it in place), a change goes to the
// service's other slot, and the old table stays intact until the next.
func TestTableDoubleBuffer(t *testing.T) {
	d := newTestLB(t)
	if err := d.SetService(webKey, Service{Mode: ModeMAC}, []uint32{1, 1}); err != nil {
		t.Fatal(err)
	}
	first := d.services[webKey].Table
	if err := d.SetService(webKey, Service{Mode: ModeMAC}, []uint32{2, 2, 2}); err != nil {
		t.Fatal(err)
	}
	second := d.services[webKey].Table
	if first == second || first/2 != second/2 {
		t.Fatalf("tables in slots %d then %d: want the two slots of one service", first, second)
	}
	var v lbSvcVal
	mk, _ := webKey.mapKey()
	if err := d.objs.LbServices.Lookup(mk, &v); err != nil || v.Table != second || v.TableSize != 3 {
		t.Fatalf("service entry %+v (%v): want table slot %d of 3 entries", v, err, second)
	}
	var live, old uint32
	if err := d.objs.LbTables.Lookup(second, &live); err != nil {
		t.Fatalf("live table slot: %v", err)
	}
	if err := d.objs.LbTables.Lookup(first, &old); err != nil {
		t.Fatalf("previous table slot emptied too early: %v", err)
	}
	inner, err := newMapFromID(live)
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	if err := inner.Put(uint32(0), uint32(3)); err == nil {
		t.Error("live table accepted a write: it should be frozen")
	}
	var id uint32
	if err := inner.Lookup(uint32(2), &id); err != nil || id != 2 {
		t.Errorf("live table slot 2 = %d (%v), want backend 2", id, err)
	}
}

func TestServiceValidation(t *testing.T) {
	d := newTestLB(t)
	tests := []struct {
		name  string
		key   ServiceKey
		svc   Service
		table []uint32
	}{
		{"no VIP", ServiceKey{Port: 80, Proto: ProtoTCP}, Service{Mode: ModeMAC}, table7},
		{"port 0", ServiceKey{VIP: vip, Proto: ProtoTCP}, Service{Mode: ModeMAC}, table7},
		{"SCTP", ServiceKey{VIP: vip, Port: 80, Proto: 132}, Service{Mode: ModeMAC}, table7},
		{"no mode", webKey, Service{}, table7},
		{"backend id out of range", webKey, Service{Mode: ModeMAC}, []uint32{1, 16}},
		{"IPv6 tunnel source", webKey, Service{Mode: ModeIPIP, TunnelSrc: netip.MustParseAddr("2001:db8::2")}, table7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := d.SetService(tc.key, tc.svc, tc.table); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	if err := d.SetBackend(16, testBackends[1]); err == nil {
		t.Error("backend id 16 of 16 accepted")
	}
	if err := d.SetBackend(7, Backend{MAC: testBackends[1].MAC}); err == nil {
		t.Error("backend without address accepted")
	}
	if err := d.SetBackend(7, Backend{IP: testBackends[1].IP, MAC: net.HardwareAddr{1, 2, 3}}); err == nil {
		t.Error("3-byte MAC accepted")
	}
	// All service slots in use.
	for p := range uint16(8) {
		if err := d.SetService(ServiceKey{VIP: vip, Port: 1000 + p, Proto: ProtoTCP}, Service{Mode: ModeMAC}, table7); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.SetService(ServiceKey{VIP: vip, Port: 2000, Proto: ProtoTCP}, Service{Mode: ModeMAC}, table7); err == nil {
		t.Error("ninth service of 8 accepted")
	}
	keys, err := d.Services()
	if err != nil || len(keys) != 8 || keys[0].Port != 1000 || keys[7].Port != 1007 {
		t.Errorf("Services() = %v, %v", keys, err)
	}
}

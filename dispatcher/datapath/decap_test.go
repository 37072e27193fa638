//go:build linux

package datapath

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

func newTestDecap(t testing.TB, vips ...netip.Addr) *Decap {
	t.Helper()
	needBPF(t)
	d, err := newDecap(vips)
	if err != nil {
		skipIfNotPermitted(t, err)
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// ipipFrame wraps an inner IPv4 packet as the dispatcher does.
func ipipFrame(outerSrc, outerDst netip.Addr, inner []byte, outerOpts []byte) []byte {
	return ether(macIface, macRouter, 0x0800, ip4{src: outerSrc, dst: outerDst, proto: ipProtoIPIP, options: outerOpts, payload: inner}.bytes())
}

func TestDecap(t *testing.T) {
	server := netip.MustParseAddr("10.0.1.2")
	d := newTestDecap(t, vip)
	inner := ip4{src: client, dst: vip, proto: ipProtoTCP, payload: tcpHdr(40000, 80, []byte("data"))}.bytes()

	t.Run("strips", func(t *testing.T) {
		for _, opts := range [][]byte{nil, {1, 1, 1, 0}} { // with and without outer options
			in := ipipFrame(tunnelSrc, server, inner, opts)
			ret, out := run(t, d.objs.TernDecap, in)
			if ret != xdpPass {
				t.Fatalf("verdict %d, want XDP_PASS", ret)
			}
			want := append(bytes.Clone(in[:14]), inner...)
			if !bytes.Equal(out, want) {
				t.Fatalf("decapsulated frame:\n got % x\nwant % x", out, want)
			}
		}
		c, err := d.Counter()
		if err != nil {
			t.Fatal(err)
		}
		if c.Packets != 2 || c.Bytes != 2*uint64(14+len(inner)) {
			t.Errorf("counter %+v, want 2 packets of %d bytes", c, 14+len(inner))
		}
	})

	other := ip4{src: client, dst: netip.MustParseAddr("192.0.2.99"), proto: ipProtoTCP, payload: tcpHdr(40000, 80, nil)}.bytes()
	ipv6Inner := append([]byte{0x60}, make([]byte, 39)...)
	tests := []struct {
		name  string
		frame []byte
	}{
		{"plain TCP to the VIP", tcpFrame(client, 40000, vip, 80)},
		{"IPIP to another address", ipipFrame(tunnelSrc, server, other, nil)},
		{"GRE", ether(macIface, macRouter, 0x0800, ip4{src: tunnelSrc, dst: server, proto: 47, payload: inner}.bytes())},
		{"IPv6 inside", ipipFrame(tunnelSrc, server, ipv6Inner, nil)},
		{"outer fragment", ether(macIface, macRouter, 0x0800, ip4{src: tunnelSrc, dst: server, proto: ipProtoIPIP, frag: 0x2000, payload: inner}.bytes())},
		{"lengths disagree", func() []byte {
			f := ipipFrame(tunnelSrc, server, inner, nil)
			binary.BigEndian.PutUint16(f[14+20+2:], uint16(len(inner)-1))
			return f
		}()},
		{"ARP", ether(macIface, macRouter, 0x0806, make([]byte, 28))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(tc.frame)
			ret, out := run(t, d.objs.TernDecap, tc.frame)
			if ret != xdpPass || !bytes.Equal(out, in) {
				t.Fatalf("verdict %d, frame changed %v: want XDP_PASS unchanged", ret, !bytes.Equal(out, in))
			}
		})
	}

	t.Run("truncated", func(t *testing.T) {
		full := ipipFrame(tunnelSrc, server, inner, nil)
		for n := 14; n < len(full); n++ {
			cut := bytes.Clone(full[:n])
			ret, out := run(t, d.objs.TernDecap, cut)
			if ret != xdpPass || !bytes.Equal(out, cut) {
				t.Fatalf("cut to %d bytes: verdict %d, changed %v", n, ret, !bytes.Equal(out, cut))
			}
		}
	})
}

func TestDecapValidation(t *testing.T) {
	if _, err := AttachDecap("lo", nil, XDPGeneric); err == nil {
		t.Error("no VIPs accepted")
	}
	if _, err := AttachDecap("lo", []netip.Addr{{}}, XDPGeneric); err == nil {
		t.Error("invalid VIP accepted")
	}
	if _, err := AttachDecap("no-such-if0", []netip.Addr{vip}, XDPGeneric); err == nil {
		t.Error("missing interface accepted")
	}
}

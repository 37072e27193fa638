//go:build linux && !portableudp

package dnsserver

import (
	"net"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUDPHeaderReuse reads one datagram at a time on a dual-stack
// wildcard socket, IPv4 then IPv6 then IPv4: recv resets only the headers
// the last call used, and the kernel shrank the first one's control
// length to the IPv4 packet info, shorter than the IPv6 one. Left so, the
// IPv6 datagram's packet info would be cut (MSG_CTRUNC) and its answer
// would leave from the wrong address.
func TestUDPHeaderReuse(t *testing.T) {
	u, err := openUDP(netip.IPv6Unspecified(), 0)
	if err != nil {
		t.Skipf("no IPv6 wildcard socket: %v", err)
	}
	defer u.close()
	if !u.pktinfo {
		t.Fatal("a wildcard socket without packet info")
	}
	port := int(u.addr.Port())
	io := newUDPIO(true, 1232)
	for i, from := range []string{"127.0.0.2", "::1", "127.0.0.3", "::1"} {
		c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: net.ParseIP(from), Port: port})
		if err != nil {
			t.Skipf("no route to %s: %v", from, err)
		}
		if _, err := c.Write([]byte("query")); err != nil {
			t.Fatal(err)
		}
		c.Close()
		n, ok := io.recv(u)
		if !ok || n != 1 {
			t.Fatalf("datagram %d from %s: recv = %d, %v", i, from, n, ok)
		}
		h := &io.in[0].Hdr
		if h.Flags&unix.MSG_CTRUNC != 0 {
			t.Fatalf("datagram %d from %s: control data cut (%d bytes of room)", i, from, h.Controllen)
		}
		ctl := sourceControl(nil, io.oob[0][:h.Controllen])
		if len(ctl) == 0 {
			t.Fatalf("datagram %d from %s: no packet info to answer from", i, from)
		}
	}
}

package probes

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/internal/testnet"
)

// A prober with a Source sends its probes from that address, so a backend
// sees which node probes it; unset, the kernel chooses (127.0.0.1 on
// loopback). Linux routes all of 127.0.0.0/8 to lo, so 127.0.0.2 is a
// local address there.
func TestSourceAddress(t *testing.T) {
	seen := make(chan string, 4)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		seen <- host
	}))
	defer hs.Close()
	ln := testnet.Listen(t, "127.0.0.1:0", func(c net.Conn) {
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		seen <- host
		c.Close()
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ds := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		host, _, _ := net.SplitHostPort(w.RemoteAddr().String())
		seen <- host
		m := new(dns.Msg)
		m.SetReply(r)
		w.WriteMsg(m)
	})}
	go ds.ActivateAndServe()
	defer ds.Shutdown()

	for _, tc := range []struct {
		name, check, addr string
		source            netip.Addr
		want              string
	}{
		{"http bound", "{type: http, port: 1, path: /}", hs.Listener.Addr().String(), netip.MustParseAddr("127.0.0.2"), "127.0.0.2"},
		{"tcp bound", "{type: tcp, port: 1}", ln.Addr().String(), netip.MustParseAddr("127.0.0.3"), "127.0.0.3"},
		{"dns bound", "{type: dns, port: 1, query: x.test.}", pc.LocalAddr().String(), netip.MustParseAddr("127.0.0.4"), "127.0.0.4"},
		{"unbound", "{type: tcp, port: 1}", ln.Addr().String(), netip.Addr{}, "127.0.0.1"},
		{"other family unbound", "{type: tcp, port: 1}", ln.Addr().String(), netip.MustParseAddr("::1"), "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := checkOf(t, tc.check)
			ch.source = tc.source
			if r := runOnce(t, ch, tc.addr); r.outcome != outcomeUp {
				t.Fatalf("probe: %v %v", r.outcome, r.err)
			}
			if got := <-seen; got != tc.want {
				t.Fatalf("probe came from %s, want %s", got, tc.want)
			}
		})
	}
}

package dnsserver

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestLimiterAccounts(t *testing.T) {
	l := newLimiter(RRL{ResponsesPerSecond: 10, Slip: 2, Window: 5 * time.Second})
	ip := netip.MustParseAddr
	counts := func(src netip.Addr, kind uint8, name string, n int) (pass, drop, slip int) {
		for range n {
			switch l.check(src, kind, name, dns.TypeA) {
			case rrlPass:
				pass++
			case rrlDrop:
				drop++
			case rrlSlip:
				slip++
			}
		}
		return
	}
	// A burst of 100 within a few milliseconds: the burst (10) passes,
	// every second one of the rest slips.
	if p, d, s := counts(ip("192.0.2.1"), kindAnswer, "www.example.test.", 100); p < 10 || p > 11 || s != (100-p)/2 || d+s != 100-p {
		t.Errorf("burst of 100: pass %d drop %d slip %d, want 10 pass and half the rest slipped", p, d, s)
	}
	for _, tc := range []struct {
		name    string
		src     netip.Addr
		kind    uint8
		qname   string
		limited bool
	}{
		{"same /24", ip("192.0.2.200"), kindAnswer, "www.example.test.", true},
		{"other /24", ip("192.0.3.1"), kindAnswer, "www.example.test.", false},
		{"other name", ip("192.0.2.1"), kindAnswer, "static.example.test.", false},
		{"other kind", ip("192.0.2.1"), kindNXDomain, "www.example.test.", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := l.check(tc.src, tc.kind, tc.qname, dns.TypeA) != rrlPass; got != tc.limited {
				t.Errorf("limited = %v, want %v", got, tc.limited)
			}
		})
	}
	v6 := newLimiter(RRL{ResponsesPerSecond: 1, Slip: 0})
	v6.check(ip("2001:db8:0:1::1"), kindAnswer, "x.", dns.TypeA)
	if v6.check(ip("2001:db8:0:ff::2"), kindAnswer, "x.", dns.TypeA) != rrlDrop {
		t.Error("IPv6 /56: a second address of the same /56 is not limited (slip 0 must drop)")
	}
	if v6.check(ip("2001:db8:0:100::1"), kindAnswer, "x.", dns.TypeA) != rrlPass {
		t.Error("IPv6: another /56 is limited")
	}
	ex := newLimiter(RRL{ResponsesPerSecond: 1, Exempt: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	for range 5 {
		if ex.check(ip("192.0.2.9"), kindAnswer, "x.", dns.TypeA) != rrlPass {
			t.Fatal("an exempt network is limited")
		}
	}
}

// TestLimiterTableBounded: a million different networks fit the fixed
// table; the newest are still tracked.
func TestLimiterTableBounded(t *testing.T) {
	l := newLimiter(RRL{ResponsesPerSecond: 1, TableSize: 1024})
	if len(l.slots) != 1024 {
		t.Fatalf("table of %d slots", len(l.slots))
	}
	for i := range 1 << 20 {
		l.check(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), 0}), kindAnswer, "x.", dns.TypeA)
	}
	src := netip.MustParseAddr("198.51.100.1")
	l.check(src, kindAnswer, "x.", dns.TypeA)
	if l.check(src, kindAnswer, "x.", dns.TypeA) == rrlPass {
		t.Error("an account made after the table filled is not kept")
	}
}

// udpFrom sends count queries for name from a socket bound to src and
// counts what comes back: answers and truncated responses.
func udpFrom(t *testing.T, src, addr, name string, count int, deadline time.Time) (answers, truncated int) {
	t.Helper()
	c, err := net.ListenPacket("udp", net.JoinHostPort(src, "0"))
	if err != nil {
		t.Fatalf("bind %s: %v", src, err)
	}
	defer c.Close()
	c.(*net.UDPConn).SetReadBuffer(8 << 20)
	to, _ := net.ResolveUDPAddr("udp", addr)
	m := newQuery(name, dns.TypeA)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			c.SetReadDeadline(deadline)
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			r := new(dns.Msg)
			if r.Unpack(buf[:n]) != nil {
				continue
			}
			if r.Truncated {
				truncated++
			} else if len(r.Answer) > 0 {
				answers++
			}
		}
	}()
	for i := range count {
		m.Id = uint16(i)
		b, _ := m.Pack()
		c.WriteTo(b, to)
	}
	<-done
	return
}

// TestRRLFlood: 2,000 queries in a burst from two addresses of one /24
// get about rate × time + burst answers and every second dropped one
// slips out truncated; meanwhile a client of another /24 and a TCP
// client of the flooded one get every answer.
func TestRRLFlood(t *testing.T) {
	const rate = 20
	s, addr := startServer(t, testSnapshot(t), Options{RRL: &RRL{ResponsesPerSecond: rate, Slip: 2, Window: 15 * time.Second}})
	start := time.Now()
	deadline := start.Add(2 * time.Second)
	var wg sync.WaitGroup
	var ans, tc [2]int
	var ended [2]time.Time
	for i, src := range []string{"127.0.0.1", "127.0.0.2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ans[i], tc[i] = udpFrom(t, src, addr, "www.example.test.", 1000, deadline)
			ended[i] = time.Now()
		}()
	}
	// A normal client of another network, one query at a time, within
	// its own burst.
	other := 0
	for range rate - 5 {
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP("127.0.1.1")}}}
		if r, _, err := c.Exchange(newQuery("www.example.test.", dns.TypeA), addr); err == nil && !r.Truncated && len(r.Answer) > 0 {
			other++
		}
	}
	tcp := 0
	for range 20 {
		c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}}
		if r, _, err := c.Exchange(newQuery("www.example.test.", dns.TypeA), addr); err == nil && len(r.Answer) > 0 {
			tcp++
		}
	}
	wg.Wait()
	answers, truncated := ans[0]+ans[1], tc[0]+tc[1]
	dropped, slipped := s.stats.rrlDropped.Load(), s.stats.rrlSlipped.Load()
	t.Logf("flood: %d answered, %d truncated; server dropped %d, slipped %d", answers, truncated, dropped, slipped)
	elapsed := 2.0 // the flood and its reading fit the deadline
	if answers < rate || float64(answers) > rate*elapsed+rate {
		t.Errorf("%d answers to the flood, want between %d (the burst) and %.0f (rate × time + burst)", answers, rate, rate*elapsed+rate)
	}
	// One shared account answers at most its burst and what it refilled
	// while the flood lasted, rate × (1 + el); two accounts at least twice
	// that. The midpoint tells them apart however long a slow machine
	// (-race, a loaded CI) took over the flood.
	last := ended[0]
	if ended[1].After(last) {
		last = ended[1]
	}
	el := min(last.Sub(start).Seconds(), elapsed)
	if float64(answers) >= 1.5*rate*(1+el) {
		t.Errorf("%d answers in %.2fs: 127.0.0.1 and 127.0.0.2 did not share their /24's account", answers, el)
	}
	if uint64(answers)+dropped != 2000 {
		t.Errorf("answered %d + dropped %d != 2000 queries", answers, dropped)
	}
	if d := int64(slipped) - int64(dropped/2); d < -1 || d > 1 {
		t.Errorf("slipped %d of %d dropped, want every second one", slipped, dropped)
	}
	if uint64(truncated) != slipped {
		t.Errorf("client saw %d truncated responses, server slipped %d", truncated, slipped)
	}
	if other != rate-5 {
		t.Errorf("client of another /24 got %d of %d answers during the flood", other, rate-5)
	}
	if tcp != 20 {
		t.Errorf("TCP client of the flooded /24 got %d of 20 answers", tcp)
	}
}

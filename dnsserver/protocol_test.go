package dnsserver

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/selector"
)

func packMsg(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawQuery is a hand-built query for static.example.test. A, id 0x1234,
// for tests that break it.
func rawQuery() []byte {
	return []byte{
		0x12, 0x34, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		6, 's', 't', 'a', 't', 'i', 'c', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0,
		0, 1, 0, 1,
	}
}

func TestMalformed(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{})
	twoOPT := withEDNS(newQuery("static.example.test.", dns.TypeA), 1232)
	twoOPT.Id = 0x1234
	twoOPT.Extra = append(twoOPT.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 512}})
	notRoot := withEDNS(newQuery("static.example.test.", dns.TypeA), 1232)
	notRoot.Id = 0x1234
	optNotRoot := packMsg(t, notRoot)
	optNotRoot = append(optNotRoot[:len(optNotRoot)-11], append([]byte{1, 'x', 0}, optNotRoot[len(optNotRoot)-10:]...)...)

	set := func(b []byte, off int, v ...byte) []byte { copy(b[off:], v); return b }
	for _, tc := range []struct {
		name     string
		msg      []byte
		rcode    int
		question bool // the question is echoed
	}{
		{"QDCOUNT 0", set(rawQuery()[:12], 4, 0, 0), dns.RcodeFormatError, false},
		{"QDCOUNT 2", set(rawQuery(), 4, 0, 2), dns.RcodeFormatError, false},
		{"question cut short", rawQuery()[:30], dns.RcodeFormatError, false},
		{"no type and class", rawQuery()[:33], dns.RcodeFormatError, false},
		{"compression pointer in the question", append(append(rawQuery()[:12], 0xC0, 12), 0, 1, 0, 1), dns.RcodeFormatError, false},
		{"label type 0x40", set(rawQuery(), 12, 0x46), dns.RcodeFormatError, false},
		{"trailing bytes", append(rawQuery(), 0xFF), dns.RcodeFormatError, true},
		{"ARCOUNT beyond the message", set(rawQuery(), 11, 1), dns.RcodeFormatError, true},
		{"two OPT records", packMsg(t, twoOPT), dns.RcodeFormatError, true},
		{"OPT owned by a name other than the root", optNotRoot, dns.RcodeFormatError, true},
		{"opcode STATUS", set(rawQuery(), 2, 2<<3), dns.RcodeNotImplemented, true},
		{"opcode UPDATE", set(rawQuery(), 2, 5<<3), dns.RcodeNotImplemented, true},
		{"unassigned opcode", set(rawQuery(), 2, 15<<3), dns.RcodeNotImplemented, true},
		{"qtype OPT", set(rawQuery(), 33, 0, 41), dns.RcodeFormatError, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := rawExchange(t, addr, tc.msg)
			var r dns.Msg
			if err := r.Unpack(b); err != nil {
				t.Fatalf("response does not parse: %v", err)
			}
			if r.Id != 0x1234 || !r.Response {
				t.Errorf("id %#x QR %v, want the query's id and QR", r.Id, r.Response)
			}
			if r.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if got := len(r.Question) == 1; got != tc.question {
				t.Errorf("question echoed: %v, want %v", got, tc.question)
			}
			if len(r.Answer)+len(r.Ns) > 0 {
				t.Errorf("records in an error response: %v", r)
			}
		})
	}
}

// TestResponsesDropped sends a message that gets no answer, then a good
// query on the same socket: the first reply must be the good query's.
func TestResponsesDropped(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{})
	isResponse := rawQuery()
	isResponse[2] |= 0x80
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"QR=1", isResponse},
		{"shorter than a header", []byte{0x12, 0x34, 0, 0, 0}},
		{"empty", []byte{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("udp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			good := rawQuery()
			good[0], good[1] = 0x56, 0x78
			c.Write(tc.msg)
			c.Write(good)
			buf := make([]byte, 1500)
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			if id := binary.BigEndian.Uint16(buf[:n]); id != 0x5678 {
				t.Errorf("first reply has id %#x: the %s message was answered", id, tc.name)
			}
		})
	}
}

func TestEDNS(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{})
	t.Run("OPT echoed with our size and DO copied", func(t *testing.T) {
		m := withEDNS(newQuery("static.example.test.", dns.TypeA), 4096)
		m.IsEdns0().SetDo()
		r := exchange(t, "udp", addr, m)
		o := r.IsEdns0()
		if o == nil {
			t.Fatal("no OPT in the response")
		}
		if o.UDPSize() != 1232 || o.Version() != 0 || !o.Do() {
			t.Errorf("OPT size %d version %d DO %v, want 1232 0 true", o.UDPSize(), o.Version(), o.Do())
		}
		if len(r.Answer) != 1 {
			t.Errorf("answer %v", r.Answer)
		}
	})
	t.Run("no OPT without one in the query", func(t *testing.T) {
		if r := exchange(t, "udp", addr, newQuery("static.example.test.", dns.TypeA)); r.IsEdns0() != nil {
			t.Errorf("OPT in the response to a query without EDNS")
		}
	})
	t.Run("BADVERS for version 1", func(t *testing.T) {
		m := withEDNS(newQuery("static.example.test.", dns.TypeA), 1232)
		m.IsEdns0().SetVersion(1)
		r := exchange(t, "udp", addr, m)
		if r.Rcode != dns.RcodeBadVers || len(r.Answer) != 0 {
			t.Errorf("rcode %d answer %v, want BADVERS (16) and no answer", r.Rcode, r.Answer)
		}
		if o := r.IsEdns0(); o == nil || o.Version() != 0 {
			t.Errorf("OPT %v, want version 0", o)
		}
	})
	t.Run("unknown options ignored", func(t *testing.T) {
		m := withEDNS(newQuery("static.example.test.", dns.TypeA), 1232,
			&dns.EDNS0_LOCAL{Code: 65001, Data: []byte("hello")}, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
		r := exchange(t, "udp", addr, m)
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Errorf("rcode %s answer %v", dns.RcodeToString[r.Rcode], r.Answer)
		}
		for _, o := range r.IsEdns0().Option {
			t.Errorf("option %v echoed", o)
		}
	})
	t.Run("NSID answers the node name", func(t *testing.T) {
		m := withEDNS(newQuery("static.example.test.", dns.TypeA), 1232, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
		r := exchange(t, "udp", addr, m)
		var got string
		for _, o := range r.IsEdns0().Option {
			if n, ok := o.(*dns.EDNS0_NSID); ok {
				got = n.Nsid
			}
		}
		if want := "746573742d6e6f64652d31"; got != want { // hex of test-node-1
			t.Errorf("NSID %q, want %q", got, want)
		}
	})
}

func TestTruncation(t *testing.T) {
	snap := testSnapshot(t)
	_, addr := startServer(t, snap, Options{})
	_, bigAddr := startServer(t, snap, Options{UDPSize: 4096})
	for _, tc := range []struct {
		name    string
		addr    string
		netw    string
		qname   string
		size    uint16 // EDNS size, 0: no EDNS
		tc      bool
		answers int
		maxLen  int
	}{
		{"no EDNS: 512", addr, "udp", "big.example.test.", 0, true, 0, 512},
		{"EDNS 1232", addr, "udp", "big.example.test.", 1232, true, 0, 1232},
		{"client size below 512 counts as 512", addr, "udp", "big.example.test.", 100, true, 0, 512},
		{"client size above ours is capped", addr, "udp", "big.example.test.", 4096, true, 0, 1232},
		{"our size 4096 fits it", bigAddr, "udp", "big.example.test.", 4096, false, 30, 4096},
		{"TCP carries it", addr, "tcp", "big.example.test.", 0, false, 30, 65535},
		{"whole RRsets only: the CNAME stays, the TXT set goes", addr, "udp", "tobig.example.test.", 1232, true, 1, 1232},
		{"small answers are not truncated", addr, "udp", "many.example.test.", 0, false, 8, 512},
		{"client size 100 counts as 512", addr, "udp", "many.example.test.", 100, false, 8, 512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newQuery(tc.qname, dns.TypeTXT)
			if tc.qname == "many.example.test." {
				m = newQuery(tc.qname, dns.TypeA)
			}
			if tc.size > 0 {
				withEDNS(m, tc.size)
			}
			var b []byte
			if tc.netw == "udp" {
				b = rawExchange(t, tc.addr, packMsg(t, m))
			} else {
				r := exchange(t, "tcp", tc.addr, m)
				b = packMsg(t, r)
			}
			var r dns.Msg
			if err := r.Unpack(b); err != nil {
				t.Fatalf("response does not parse: %v", err)
			}
			if len(b) > tc.maxLen {
				t.Errorf("%d bytes, want at most %d", len(b), tc.maxLen)
			}
			if r.Truncated != tc.tc {
				t.Errorf("TC %v, want %v", r.Truncated, tc.tc)
			}
			if len(r.Answer) != tc.answers {
				t.Errorf("%d answers, want %d", len(r.Answer), tc.answers)
			}
			if tc.size > 0 && r.IsEdns0() == nil {
				t.Errorf("OPT dropped by truncation")
			}
		})
	}
}

func TestECS(t *testing.T) {
	snap := testSnapshot(t)
	_, addr := startServer(t, snap, Options{})
	sticky := snap.Pools[poolIndex(t, snap, "sticky")]
	t.Run("answer and scope follow the client subnet", func(t *testing.T) {
		for _, tc := range []struct {
			subnet string
			src    uint8
			scope  uint8
		}{
			{"198.51.100.0", 24, 24},
			{"198.51.0.0", 16, 16}, // scope capped at the source prefix
			{"203.0.113.128", 25, 24},
			{"2001:db8:1234::", 48, 48},
			{"2001:db8:1234:5600::", 64, 56},
		} {
			fam := uint16(1)
			if netip.MustParseAddr(tc.subnet).Is6() {
				fam = 2
			}
			want := sticky.Select(&selector.Client{Addr: netip.MustParseAddr(tc.subnet), SourcePrefix: int(tc.src)},
				selector.IPv4, selector.NewScratch(8)) // an A query: IPv4 members, whatever the subnet family
			wantAddr := sticky.Members[want.Members[0]].Addr.String()
			for i := 0; i < 3; i++ {
				m := withEDNS(newQuery("sticky.example.test.", dns.TypeA), 1232, ecsOption(fam, tc.src, tc.subnet))
				r := exchange(t, "udp", addr, m)
				if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != wantAddr {
					t.Fatalf("%s/%d: answer %v, want %s", tc.subnet, tc.src, r.Answer, wantAddr)
				}
				e := subnetOf(r)
				if e == nil {
					t.Fatalf("%s/%d: no ECS in the response", tc.subnet, tc.src)
				}
				if e.Family != fam || e.SourceNetmask != tc.src || e.SourceScope != tc.scope || !e.Address.Equal(net.ParseIP(tc.subnet)) {
					t.Errorf("%s/%d: ECS %v, want family %d source %d scope %d", tc.subnet, tc.src, e, fam, tc.src, tc.scope)
				}
			}
		}
	})
	t.Run("source prefix 0: scope 0", func(t *testing.T) {
		m := withEDNS(newQuery("sticky.example.test.", dns.TypeA), 1232, ecsOption(1, 0, "0.0.0.0"))
		r := exchange(t, "udp", addr, m)
		if e := subnetOf(r); e == nil || e.SourceScope != 0 || e.SourceNetmask != 0 {
			t.Errorf("ECS %v, want source 0 scope 0", e)
		}
		if len(r.Answer) != 1 {
			t.Errorf("answer %v", r.Answer)
		}
	})
	t.Run("non-POOL answers: scope 0", func(t *testing.T) {
		for _, q := range []string{"static.example.test.", "nothere.example.test."} {
			m := withEDNS(newQuery(q, dns.TypeA), 1232, ecsOption(1, 24, "198.51.100.0"))
			r := exchange(t, "udp", addr, m)
			if e := subnetOf(r); e == nil || e.SourceScope != 0 || e.SourceNetmask != 24 {
				t.Errorf("%s: ECS %v, want source 24 scope 0", q, e)
			}
		}
	})
	t.Run("without ECS the source address decides", func(t *testing.T) {
		want := sticky.Select(&selector.Client{Addr: netip.MustParseAddr("127.0.0.1"), SourcePrefix: 32}, selector.IPv4, selector.NewScratch(8))
		r := exchange(t, "udp", addr, newQuery("sticky.example.test.", dns.TypeA))
		if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != sticky.Members[want.Members[0]].Addr.String() {
			t.Errorf("answer %v, want %v", r.Answer, sticky.Members[want.Members[0]].Addr)
		}
	})

	opt := func(b ...byte) *dns.EDNS0_LOCAL { return &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: b} }
	for _, tc := range []struct {
		name string
		opt  *dns.EDNS0_LOCAL
	}{
		{"unknown family", opt(0, 3, 8, 0, 10)},
		{"family 0", opt(0, 0, 0, 0)},
		{"IPv4 prefix 33", opt(0, 1, 33, 0, 10, 0, 0, 0, 0)},
		{"IPv6 prefix 129", opt(0, 2, 129, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
		{"address longer than the prefix", opt(0, 1, 24, 0, 198, 51, 100, 0)},
		{"address shorter than the prefix", opt(0, 1, 24, 0, 198, 51)},
		{"bits set beyond the prefix", opt(0, 1, 23, 0, 198, 51, 101)},
		{"scope set in a query", opt(0, 1, 24, 24, 198, 51, 100)},
		{"option shorter than its header", opt(0, 1, 24)},
	} {
		t.Run("FORMERR: "+tc.name, func(t *testing.T) {
			m := withEDNS(newQuery("sticky.example.test.", dns.TypeA), 1232, tc.opt)
			r := exchange(t, "udp", addr, m)
			if r.Rcode != dns.RcodeFormatError || len(r.Answer) != 0 {
				t.Errorf("rcode %s answer %v, want FORMERR", dns.RcodeToString[r.Rcode], r.Answer)
			}
		})
	}
	t.Run("two ECS options: FORMERR", func(t *testing.T) {
		m := withEDNS(newQuery("sticky.example.test.", dns.TypeA), 1232, ecsOption(1, 24, "198.51.100.0"), ecsOption(1, 24, "198.51.101.0"))
		if r := exchange(t, "udp", addr, m); r.Rcode != dns.RcodeFormatError {
			t.Errorf("rcode %s, want FORMERR", dns.RcodeToString[r.Rcode])
		}
	})
}

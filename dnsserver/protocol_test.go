package dnsserver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
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
			&dns.EDNS0_LOCAL{Code: 65001, Data: []byte("hello")})
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
	sticky := snap.Pools.At(poolIndex(t, snap, "sticky"))
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

// TestCookies: DNS Cookies (RFC 7873) with RFC 9018 server cookies, one
// rule a row, over UDP and TCP. Cookies are never enforced: every query
// here is answered.
func TestCookies(t *testing.T) {
	secret := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	_, addr := startServer(t, testSnapshot(t), Options{CookieSecret: secret})
	_, peer := startServer(t, testSnapshot(t), Options{CookieSecret: secret})
	_, stranger := startServer(t, testSnapshot(t), Options{})
	client := [8]byte{0xde, 0xad, 0xbe, 0xef, 0x15, 0x80, 0xf0, 0x0d}
	lo := netip.MustParseAddr("127.0.0.1")
	now := uint32(time.Now().Unix())
	withServer := func(s [16]byte) []byte { return append(client[:], s[:]...) }
	corrupt := makeCookie(t, secret, client, now, lo)
	corrupt[15] ^= 1
	for _, netw := range []string{"udp", "tcp"} {
		for _, tc := range []struct {
			name   string
			addr   string
			cookie []byte
			echo   bool // the server cookie sent comes back unchanged
		}{
			{"client cookie alone: a server cookie comes back", addr, client[:], false},
			{"valid server cookie: accepted, sent back as it is", addr, withServer(makeCookie(t, secret, client, now-60, lo)), true},
			{"valid server cookie older than half an hour: renewed", addr, withServer(makeCookie(t, secret, client, now-2000, lo)), false},
			{"server cookie older than an hour: stale, a fresh one", addr, withServer(makeCookie(t, secret, client, now-4000, lo)), false},
			{"server cookie from the future: a fresh one", addr, withServer(makeCookie(t, secret, client, now+1000, lo)), false},
			{"server cookie for another client address: a fresh one", addr, withServer(makeCookie(t, secret, client, now, netip.MustParseAddr("127.0.0.2"))), false},
			{"wrong hash: a fresh one", addr, withServer(corrupt), false},
			{"server cookie of 8 bytes (not ours): a fresh one", addr, append(client[:], 1, 2, 3, 4, 5, 6, 7, 8), false},
			{"another node with the same secret accepts it", peer, withServer(makeCookie(t, secret, client, now-60, lo)), true},
			{"a node with another secret makes its own", stranger, withServer(makeCookie(t, secret, client, now-60, lo)), false},
		} {
			t.Run(netw+"/"+tc.name, func(t *testing.T) {
				r := exchange(t, netw, tc.addr, cookieQuery(tc.cookie))
				if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
					t.Fatalf("rcode %s answer %v: a cookie must never stop an answer", dns.RcodeToString[r.Rcode], r.Answer)
				}
				got := cookieOf(t, r)
				if len(got) != 24 || string(got[:8]) != string(client[:]) {
					t.Fatalf("cookie %x, want our client cookie and a 16-byte server cookie", got)
				}
				if tc.echo {
					if string(got[8:]) != string(tc.cookie[8:]) {
						t.Errorf("server cookie %x, want %x sent back", got[8:], tc.cookie[8:])
					}
					return
				}
				ts := binary.BigEndian.Uint32(got[12:16])
				if got[8] != 1 || got[9] != 0 || got[10] != 0 || got[11] != 0 || ts < now-5 || ts > uint32(time.Now().Unix())+5 {
					t.Errorf("server cookie %x: want version 1, reserved 0, the time now", got[8:])
				}
				if tc.addr != stranger {
					if want := makeCookie(t, secret, client, ts, lo); string(got[8:]) != string(want[:]) {
						t.Errorf("server cookie %x, want %x (RFC 9018 under our secret)", got[8:], want)
					}
				}
			})
		}
		for _, n := range []int{1, 7, 9, 15, 41} {
			t.Run(fmt.Sprintf("%s/FORMERR: cookie option of %d bytes", netw, n), func(t *testing.T) {
				b := make([]byte, n)
				r := exchange(t, netw, addr, cookieQuery(b))
				if r.Rcode != dns.RcodeFormatError || len(r.Answer) != 0 {
					t.Errorf("rcode %s answer %v, want FORMERR (RFC 7873 5.2.2)", dns.RcodeToString[r.Rcode], r.Answer)
				}
				if cookieOf(t, r) != nil {
					t.Errorf("a malformed cookie was answered with one")
				}
			})
		}
	}
}

// TestCookieSecret: a zero secret is a random one of the server's own,
// kept by Reconfigure; a given one replaces it.
func TestCookieSecret(t *testing.T) {
	s, addr := startServer(t, testSnapshot(t), Options{})
	first := cookieOf(t, exchange(t, "udp", addr, cookieQuery([]byte("12345678"))))
	if err := s.Reconfigure(Options{}); err != nil {
		t.Fatal(err)
	}
	if again := cookieOf(t, exchange(t, "udp", addr, cookieQuery(first))); string(again) != string(first) {
		t.Errorf("after Reconfigure without a secret the server's cookie %x is no longer accepted (got %x)", first, again)
	}
	secret := [16]byte{9: 9}
	if err := s.Reconfigure(Options{CookieSecret: secret}); err != nil {
		t.Fatal(err)
	}
	got := cookieOf(t, exchange(t, "udp", addr, cookieQuery(first)))
	if string(got) == string(first) {
		t.Fatal("after a new secret the old cookie is still accepted")
	}
	if want := makeCookie(t, secret, [8]byte([]byte("12345678")), binary.BigEndian.Uint32(got[12:]), netip.MustParseAddr("127.0.0.1")); string(got[8:]) != string(want[:]) {
		t.Errorf("server cookie %x, want %x made with the new secret", got[8:], want)
	}
	if _, addr2 := startServer(t, testSnapshot(t), Options{}); string(cookieOf(t, exchange(t, "udp", addr2, cookieQuery(first)))) == string(first) {
		t.Errorf("two servers without a secret share one")
	}
}

// signQuery signs m with key (HMAC-SHA256 unless alg is given) as of
// time at and returns it packed, with its MAC.
func signQuery(t testing.TB, m *dns.Msg, key, alg, secret string, at time.Time) ([]byte, string) {
	t.Helper()
	if alg == "" {
		alg = dns.HmacSHA256
	}
	m.SetTsig(key, alg, 300, at.Unix())
	b, mac, err := dns.TsigGenerate(m, secret, "", false)
	if err != nil {
		t.Fatal(err)
	}
	return b, mac
}

// withTSIG packs m with a TSIG record carrying a MAC of macLen bytes
// that nobody computed, for tests of malformed signatures.
func withTSIG(t testing.TB, m *dns.Msg, macLen int) []byte {
	t.Helper()
	m.Extra = append(m.Extra, &dns.TSIG{
		Hdr:       dns.RR_Header{Name: "xfr.", Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm: dns.HmacSHA256, TimeSigned: uint64(time.Now().Unix()), Fudge: 300,
		MACSize: uint16(macLen), MAC: hex.EncodeToString(make([]byte, macLen)), OrigId: m.Id,
	})
	return packMsg(t, m)
}

// verifyMAC checks the MAC of a signed response b to a request whose MAC
// was reqMAC (RFC 8945 4.3.3), without looking at rcode or time. The
// TSIG record must be written uncompressed, as Tern writes it.
func verifyMAC(b []byte, secret, reqMAC string, _ bool) error {
	r := new(dns.Msg)
	if err := r.Unpack(b); err != nil {
		return err
	}
	ts := r.IsTsig()
	if ts == nil {
		return dns.ErrNoSig
	}
	msg := slices.Clone(b[:len(b)-dns.Len(ts)])
	binary.BigEndian.PutUint16(msg[10:], binary.BigEndian.Uint16(msg[10:])-1)
	key, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return err
	}
	h := hmac.New(sha256.New, key)
	rm, _ := hex.DecodeString(reqMAC)
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(rm))))
	h.Write(rm)
	h.Write(msg)
	name := func(s string) []byte {
		buf := make([]byte, 256)
		n, _ := dns.PackDomainName(dns.CanonicalName(s), buf, 0, nil, false)
		return buf[:n]
	}
	h.Write(name(ts.Hdr.Name))
	h.Write([]byte{0, 255, 0, 0, 0, 0}) // class ANY, TTL 0
	h.Write(name(ts.Algorithm))
	h.Write(binary.BigEndian.AppendUint64(nil, ts.TimeSigned)[2:])
	h.Write(binary.BigEndian.AppendUint16(nil, ts.Fudge))
	h.Write(binary.BigEndian.AppendUint16(nil, ts.Error))
	other, _ := hex.DecodeString(ts.OtherData)
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(len(other))))
	h.Write(other)
	if hex.EncodeToString(h.Sum(nil)) != strings.ToLower(ts.MAC) {
		return dns.ErrSig
	}
	return nil
}

// TestTSIG: every message may be signed (RFC 8945), not transfers only:
// one rule a row, over UDP and TCP.
func TestTSIG(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{TSIGKeys: []TSIGKey{{Name: "xfr", Secret: testSecret}}})
	const wrongSecret = "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmc="
	q := func(name string, qtype uint16) func() *dns.Msg {
		return func() *dns.Msg { return newQuery(name, qtype) }
	}
	for _, netw := range []string{"udp", "tcp"} {
		for _, tc := range []struct {
			name     string
			msg      func() *dns.Msg
			key, alg string
			secret   string
			skew     time.Duration
			rcode    int
			tsigErr  uint16
			signed   bool // the response's MAC verifies
			answers  int
			tc       bool
		}{
			{name: "signed query: verified, answer signed", msg: q("static.example.test.", dns.TypeA), key: "xfr.", secret: testSecret,
				signed: true, answers: 1},
			{name: "key name in another case: the same key", msg: q("static.example.test.", dns.TypeA), key: "XFR.", secret: testSecret,
				signed: true, answers: 1},
			{name: "signed query with EDNS: OPT, then TSIG last", msg: func() *dns.Msg { return withEDNS(newQuery("static.example.test.", dns.TypeA), 1232) },
				key: "xfr.", secret: testSecret, signed: true, answers: 1},
			{name: "signed NXDOMAIN: signed", msg: q("nothere.example.test.", dns.TypeA), key: "xfr.", secret: testSecret,
				rcode: dns.RcodeNameError, signed: true},
			{name: "signed query outside the zones: REFUSED, signed", msg: q("www.example.org.", dns.TypeA), key: "xfr.", secret: testSecret,
				rcode: dns.RcodeRefused, signed: true},
			{name: "signed UPDATE: NOTIMP, signed", msg: func() *dns.Msg { m := newQuery("example.test.", dns.TypeSOA); m.Opcode = dns.OpcodeUpdate; return m },
				key: "xfr.", secret: testSecret, rcode: dns.RcodeNotImplemented, signed: true},
			{name: "truncated answer: TC, and signed", msg: func() *dns.Msg { return withEDNS(newQuery("big.example.test.", dns.TypeTXT), 1232) },
				key: "xfr.", secret: testSecret, signed: true, answers: 30, tc: true},
			{name: "unknown key: NOTAUTH, BADKEY, empty MAC", msg: q("static.example.test.", dns.TypeA), key: "nokey.", secret: testSecret,
				rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadKey},
			{name: "known key, other algorithm: BADKEY", msg: q("static.example.test.", dns.TypeA), key: "xfr.", alg: dns.HmacSHA512, secret: testSecret,
				rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadKey},
			{name: "wrong MAC: NOTAUTH, BADSIG, unsigned", msg: q("static.example.test.", dns.TypeA), key: "xfr.", secret: wrongSecret,
				rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadSig},
			{name: "an hour off: NOTAUTH, BADTIME, signed with our time", msg: q("static.example.test.", dns.TypeA), key: "xfr.", secret: testSecret,
				skew: -time.Hour, rcode: dns.RcodeNotAuth, tsigErr: dns.RcodeBadTime, signed: true},
			{name: "within the fudge: answered", msg: q("static.example.test.", dns.TypeA), key: "xfr.", secret: testSecret,
				skew: 4 * time.Minute, signed: true, answers: 1},
		} {
			t.Run(netw+"/"+tc.name, func(t *testing.T) {
				b, mac := signQuery(t, tc.msg(), tc.key, tc.alg, tc.secret, time.Now().Add(tc.skew))
				raw := rawExchangeNet(t, netw, addr, b)
				r := unpack(t, raw)
				if r.Rcode != tc.rcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				}
				if tc.tc && netw == "tcp" {
					tc.answers, tc.tc = 30, false
				} else if tc.tc {
					tc.answers = 0
				}
				if len(r.Answer) != tc.answers || r.Truncated != tc.tc {
					t.Errorf("%d answers TC %v, want %d TC %v", len(r.Answer), r.Truncated, tc.answers, tc.tc)
				}
				ts := r.IsTsig() // the last record, as RFC 8945 5.1 wants
				if ts == nil {
					t.Fatalf("no TSIG record last in the response: %v", r)
				}
				if ts.Error != tc.tsigErr || ts.OrigId != r.Id {
					t.Errorf("TSIG error %s original ID %d, want %s and %d", dns.RcodeToString[int(ts.Error)], ts.OrigId, dns.RcodeToString[int(tc.tsigErr)], r.Id)
				}
				if !tc.signed {
					if ts.MACSize != 0 || ts.MAC != "" {
						t.Errorf("MAC %q on an error about the key or MAC, want none (RFC 8945 5.3.2)", ts.MAC)
					}
					return
				}
				// miekg/dns verifies no NOTAUTH message (a BADTIME
				// answer): verifyMAC does, by RFC 8945 4.3.3, and
				// checks itself against miekg/dns on the others.
				if err := verifyMAC(raw, testSecret, mac, false); err != nil {
					t.Errorf("response MAC does not verify: %v", err)
				}
				if r.Rcode != dns.RcodeNotAuth {
					if err := dns.TsigVerify(raw, testSecret, mac, false); err != nil {
						t.Errorf("miekg/dns: response MAC does not verify: %v", err)
					}
				}
				if tc.tsigErr == dns.RcodeBadTime {
					other, _ := hex.DecodeString(ts.OtherData)
					var ours int64
					for _, c := range other {
						ours = ours<<8 | int64(c)
					}
					if len(other) != 6 || time.Since(time.Unix(ours, 0)).Abs() > 5*time.Second {
						t.Errorf("Other Data %q, want our time, 6 bytes (RFC 8945 5.2.3)", ts.OtherData)
					}
				}
			})
		}
		for _, tc := range []struct {
			name  string
			msg   []byte
			rcode int
			err   uint16
		}{
			{"MAC of 8 bytes: FORMERR (RFC 8945 5.2.2.1)", withTSIG(t, newQuery("static.example.test.", dns.TypeA), 8), dns.RcodeFormatError, 0},
			{"truncated MAC of 16 bytes: BADTRUNC", withTSIG(t, newQuery("static.example.test.", dns.TypeA), 16), dns.RcodeNotAuth, dns.RcodeBadTrunc},
			{"TSIG not the last record: FORMERR (RFC 8945 5.1)", func() []byte {
				m := newQuery("static.example.test.", dns.TypeA)
				withTSIG(t, m, 32)
				withEDNS(m, 1232) // the OPT after the TSIG
				return packMsg(t, m)
			}(), dns.RcodeFormatError, 0},
		} {
			t.Run(netw+"/"+tc.name, func(t *testing.T) {
				r := unpack(t, rawExchangeNet(t, netw, addr, tc.msg))
				if r.Rcode != tc.rcode || len(r.Answer) != 0 {
					t.Errorf("rcode %s answer %v, want %s", dns.RcodeToString[r.Rcode], r.Answer, dns.RcodeToString[tc.rcode])
				}
				ts := r.IsTsig()
				if tc.err == 0 {
					if ts != nil {
						t.Errorf("TSIG %v in a FORMERR", ts)
					}
					return
				}
				if ts == nil || ts.Error != tc.err || ts.MAC != "" {
					t.Errorf("TSIG %v, want unsigned error %s", ts, dns.RcodeToString[int(tc.err)])
				}
			})
		}
	}
}

// TestErrorsCarryOPT: an error answer to a query with an OPT record
// carries one too (RFC 6891 6.1.1), unless the OPT itself was at fault.
func TestErrorsCarryOPT(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{})
	withOPT := func(m *dns.Msg) []byte { return packMsg(t, withEDNS(m, 1232)) }
	opcode := func(op int) []byte {
		m := newQuery("static.example.test.", dns.TypeA)
		m.Opcode = op
		return withOPT(m)
	}
	trailing := append(withOPT(newQuery("static.example.test.", dns.TypeA)), 0xFF)
	badOPT := withOPT(newQuery("static.example.test.", dns.TypeA))
	badOPT[len(badOPT)-1] = 4 // RDLENGTH beyond the message
	for _, tc := range []struct {
		name  string
		msg   []byte
		rcode int
		opt   bool
	}{
		{"NOTIMP (opcode STATUS)", opcode(dns.OpcodeStatus), dns.RcodeNotImplemented, true},
		{"NOTIMP (NOTIFY)", opcode(dns.OpcodeNotify), dns.RcodeNotImplemented, true},
		{"NOTIMP (UPDATE)", opcode(dns.OpcodeUpdate), dns.RcodeNotImplemented, true},
		{"NOTIMP (MAILB)", withOPT(newQuery("static.example.test.", dns.TypeMAILB)), dns.RcodeNotImplemented, true},
		{"REFUSED", withOPT(newQuery("www.example.org.", dns.TypeA)), dns.RcodeRefused, true},
		{"FORMERR for trailing bytes after a good OPT", trailing, dns.RcodeFormatError, true},
		{"FORMERR for qtype OPT", withOPT(newQuery("static.example.test.", dns.TypeOPT)), dns.RcodeFormatError, true},
		{"FORMERR for a broken OPT: no OPT", badOPT, dns.RcodeFormatError, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := unpack(t, rawExchange(t, addr, tc.msg))
			if r.Rcode != tc.rcode {
				t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			if o := r.IsEdns0(); (o != nil) != tc.opt {
				t.Errorf("OPT %v, want one: %v", o, tc.opt)
			} else if o != nil && (o.Version() != 0 || len(o.Option) != 0) {
				t.Errorf("OPT %v, want version 0 and no options", o)
			}
		})
	}
}

// TestAdditionalSection: addresses of NS, MX and SRV targets go in the
// additional section when they fit (RFC 1035 4.3.2 step 6); leaving them
// out never sets TC. TC means required data did not fit: the answer, or
// a referral's in-domain glue (RFC 9471); sibling glue is optional.
func TestAdditionalSection(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{})
	for _, tc := range []struct {
		name   string
		netw   string
		qname  string
		qtype  uint16
		tc     bool
		answer int
		ns     int
		extra  int // at least
		all    bool
	}{
		{"MX addresses that do not fit: some left out, no TC", "udp", "manymx.example.test.", dns.TypeMX, false, 12, 0, 1, false},
		{"MX addresses over TCP: all", "tcp", "manymx.example.test.", dns.TypeMX, false, 12, 0, 24, true},
		{"in-domain glue that does not fit: TC (RFC 9471)", "udp", "x.bigdel.example.test.", dns.TypeA, true, 0, 12, 0, false},
		{"in-domain glue over TCP: all", "tcp", "x.bigdel.example.test.", dns.TypeA, false, 0, 12, 24, true},
		{"sibling glue that does not fit: some left out, no TC", "udp", "x.sibdel.example.test.", dns.TypeA, false, 0, 12, 1, false},
		{"sibling glue over TCP: all", "tcp", "x.sibdel.example.test.", dns.TypeA, false, 0, 12, 24, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *dns.Msg
			if tc.netw == "udp" {
				b := rawExchange(t, addr, packMsg(t, newQuery(tc.qname, tc.qtype)))
				if len(b) > 512 {
					t.Errorf("%d bytes over UDP without EDNS", len(b))
				}
				r = unpack(t, b)
			} else {
				r = exchange(t, "tcp", addr, newQuery(tc.qname, tc.qtype))
			}
			if r.Truncated != tc.tc || len(r.Answer) != tc.answer || len(r.Ns) != tc.ns {
				t.Errorf("TC %v, %d answers, %d authority; want TC %v, %d, %d", r.Truncated, len(r.Answer), len(r.Ns), tc.tc, tc.answer, tc.ns)
			}
			if len(r.Extra) < tc.extra || tc.all != (len(r.Extra) == 24) {
				t.Errorf("%d additional records, want at least %d (all 24: %v)", len(r.Extra), tc.extra, tc.all)
			}
			// Whole RRsets only: each address set present is complete.
			sets := map[string]int{}
			for _, rr := range r.Extra {
				sets[rr.Header().Name+dns.Type(rr.Header().Rrtype).String()]++
			}
			for s, n := range sets {
				if n != 1 {
					t.Errorf("%s: %d records, want its one", s, n)
				}
			}
		})
	}
}

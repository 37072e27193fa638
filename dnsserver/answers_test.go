package dnsserver

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

const soaLine = "example.test. %d IN SOA ns1.example.test. hostmaster.example.test. 2026112201 3600 600 604800 60"

// negSOA is example.test's SOA with the negative TTL: min(300, 60).
var negSOA = strings.Replace(soaLine, "%d", "60", 1)

type answerCase struct {
	name   string
	qname  string
	qtype  uint16
	rcode  int
	aa     bool
	answer []string
	ns     []string
	extra  []string
}

var answerCases = []answerCase{
	{name: "static A", qname: "static.example.test.", qtype: dns.TypeA, aa: true,
		answer: []string{"static.example.test. 300 IN A 192.0.2.100"}},
	{name: "static AAAA", qname: "static.example.test.", qtype: dns.TypeAAAA, aa: true,
		answer: []string{"static.example.test. 300 IN AAAA 2001:db8::100"}},
	{name: "apex MX: the exchange's address in additional (RFC 1035 3.3.9)", qname: "example.test.", qtype: dns.TypeMX, aa: true,
		answer: []string{"example.test. 300 IN MX 10 mail.example.test."},
		extra:  []string{"mail.example.test. 300 IN A 192.0.2.25"}},
	{name: "apex NS: the name servers' addresses in additional (RFC 1035 3.3.11)", qname: "example.test.", qtype: dns.TypeNS, aa: true,
		answer: []string{"example.test. 300 IN NS ns1.example.test.", "example.test. 300 IN NS ns2.example.test."},
		extra:  []string{"ns1.example.test. 300 IN A 192.0.2.53", "ns2.example.test. 300 IN A 192.0.2.54"}},
	{name: "minimal ANY at the apex: NS with addresses", qname: "example.test.", qtype: dns.TypeANY, aa: true,
		answer: []string{"example.test. 300 IN NS ns1.example.test.", "example.test. 300 IN NS ns2.example.test."},
		extra:  []string{"ns1.example.test. 300 IN A 192.0.2.53", "ns2.example.test. 300 IN A 192.0.2.54"}},
	{name: "SRV: the target's addresses in additional (RFC 2782)", qname: "_sip._udp.example.test.", qtype: dns.TypeSRV, aa: true,
		answer: []string{"_sip._udp.example.test. 300 IN SRV 10 5 5060 static.example.test."},
		extra:  []string{"static.example.test. 300 IN A 192.0.2.100", "static.example.test. 300 IN AAAA 2001:db8::100"}},
	{name: "MX to a POOL name: no additional (the pool answers live)", qname: "pooled.example.test.", qtype: dns.TypeMX, aa: true,
		answer: []string{"pooled.example.test. 300 IN MX 10 www.example.test."}},
	{name: "inner zone's NS: addresses from the parent zone", qname: "inner.example.test.", qtype: dns.TypeNS, aa: true,
		answer: []string{"inner.example.test. 600 IN NS ns1.example.test."},
		extra:  []string{"ns1.example.test. 300 IN A 192.0.2.53"}},
	{name: "TXT", qname: "static.example.test.", qtype: dns.TypeTXT, aa: true,
		answer: []string{`static.example.test. 300 IN TXT "static text"`}},
	{name: "NXDOMAIN with SOA at the negative TTL", qname: "nothere.example.test.", qtype: dns.TypeA,
		rcode: dns.RcodeNameError, aa: true, ns: []string{negSOA}},
	{name: "NODATA with SOA", qname: "static.example.test.", qtype: dns.TypeMX, aa: true, ns: []string{negSOA}},
	{name: "empty non-terminal is NODATA", qname: "ent.example.test.", qtype: dns.TypeA, aa: true, ns: []string{negSOA}},
	{name: "CNAME followed", qname: "alias.example.test.", qtype: dns.TypeA, aa: true, answer: []string{
		"alias.example.test. 300 IN CNAME static.example.test.",
		"static.example.test. 300 IN A 192.0.2.100"}},
	{name: "CNAME chain", qname: "alias2.example.test.", qtype: dns.TypeA, aa: true, answer: []string{
		"alias.example.test. 300 IN CNAME static.example.test.",
		"alias2.example.test. 300 IN CNAME alias.example.test.",
		"static.example.test. 300 IN A 192.0.2.100"}},
	{name: "qtype CNAME is not followed", qname: "alias.example.test.", qtype: dns.TypeCNAME, aa: true, answer: []string{
		"alias.example.test. 300 IN CNAME static.example.test."}},
	{name: "CNAME leaving the zones stops", qname: "out.example.test.", qtype: dns.TypeA, aa: true, answer: []string{
		"out.example.test. 300 IN CNAME www.example.org."}},
	{name: "CNAME to a missing name is NXDOMAIN", qname: "dangling.example.test.", qtype: dns.TypeA,
		rcode: dns.RcodeNameError, aa: true,
		answer: []string{"dangling.example.test. 300 IN CNAME nothere.example.test."}, ns: []string{negSOA}},
	{name: "CNAME loop stops", qname: "loop1.example.test.", qtype: dns.TypeA, aa: true, answer: []string{
		"loop1.example.test. 300 IN CNAME loop2.example.test.",
		"loop2.example.test. 300 IN CNAME loop1.example.test."}},
	{name: "CNAME into another served zone", qname: "toinner.example.test.", qtype: dns.TypeA, aa: true, answer: []string{
		"host.inner.example.test. 600 IN A 192.0.2.77",
		"toinner.example.test. 300 IN CNAME host.inner.example.test."}},
	{name: "longest zone match", qname: "host.inner.example.test.", qtype: dns.TypeA, aa: true,
		answer: []string{"host.inner.example.test. 600 IN A 192.0.2.77"}},
	{name: "negative TTL is the SOA TTL when smaller", qname: "x.inner.example.test.", qtype: dns.TypeA,
		rcode: dns.RcodeNameError, aa: true,
		ns: []string{"inner.example.test. 600 IN SOA ns1.example.test. hostmaster.example.test. 7 3600 600 604800 900"}},
	{name: "wildcard owner rewritten", qname: "foo.wild.example.test.", qtype: dns.TypeTXT, aa: true,
		answer: []string{`foo.wild.example.test. 300 IN TXT "wildcard"`}},
	{name: "wildcard matches deeper names", qname: "a.b.wild.example.test.", qtype: dns.TypeA, aa: true,
		answer: []string{"a.b.wild.example.test. 300 IN A 192.0.2.200"}},
	{name: "wildcard NODATA", qname: "foo.wild.example.test.", qtype: dns.TypeMX, aa: true, ns: []string{negSOA}},
	{name: "wildcard does not match the wildcard's parent", qname: "wild.example.test.", qtype: dns.TypeA, aa: true,
		ns: []string{negSOA}},
	{name: "CNAME to a wildcard", qname: "towild.example.test.", qtype: dns.TypeA, aa: true, answer: []string{
		"towild.example.test. 300 IN CNAME x.wild.example.test.",
		"x.wild.example.test. 300 IN A 192.0.2.200"}},
	{name: "referral with glue and AA=0", qname: "deep.sub.example.test.", qtype: dns.TypeA,
		ns:    []string{"sub.example.test. 300 IN NS ns.elsewhere.example.org.", "sub.example.test. 300 IN NS ns.sub.example.test."},
		extra: []string{"ns.sub.example.test. 300 IN A 192.0.2.153"}},
	{name: "referral at the cut", qname: "sub.example.test.", qtype: dns.TypeNS,
		ns:    []string{"sub.example.test. 300 IN NS ns.elsewhere.example.org.", "sub.example.test. 300 IN NS ns.sub.example.test."},
		extra: []string{"ns.sub.example.test. 300 IN A 192.0.2.153"}},
	{name: "CNAME into a delegation", qname: "tosub.example.test.", qtype: dns.TypeA, aa: true,
		answer: []string{"tosub.example.test. 300 IN CNAME deep.sub.example.test."},
		ns:     []string{"sub.example.test. 300 IN NS ns.elsewhere.example.org.", "sub.example.test. 300 IN NS ns.sub.example.test."},
		extra:  []string{"ns.sub.example.test. 300 IN A 192.0.2.153"}},
	{name: "outside the zones: REFUSED", qname: "www.example.org.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
	{name: "root: REFUSED", qname: ".", qtype: dns.TypeNS, rcode: dns.RcodeRefused},
	{name: "POOL A with the pool's TTL", qname: "www.example.test.", qtype: dns.TypeA, aa: true, answer: []string{
		"www.example.test. 20 IN A 192.0.2.1", "www.example.test. 20 IN A 192.0.2.2", "www.example.test. 20 IN A 192.0.2.3"}},
	{name: "POOL AAAA", qname: "www.example.test.", qtype: dns.TypeAAAA, aa: true, answer: []string{
		"www.example.test. 20 IN AAAA 2001:db8::1"}},
	{name: "POOL without that family: NODATA", qname: "v4only.example.test.", qtype: dns.TypeAAAA, aa: true,
		ns: []string{negSOA}},
	{name: "POOL with the POOL record's TTL", qname: "v4only.example.test.", qtype: dns.TypeA, aa: true,
		answer: []string{"v4only.example.test. 300 IN A 192.0.2.21"}},
	{name: "POOL other type: per zone", qname: "www.example.test.", qtype: dns.TypeTXT, aa: true, ns: []string{negSOA}},
	{name: "POOL host member: CNAME followed", qname: "hosts.example.test.", qtype: dns.TypeA, aa: true, answer: []string{
		"hosts.example.test. 300 IN CNAME static.example.test.",
		"static.example.test. 300 IN A 192.0.2.100"}},
	{name: "POOL host member outside: CNAME only", qname: "outside.example.test.", qtype: dns.TypeAAAA, aa: true,
		answer: []string{"outside.example.test. 300 IN CNAME www.example.org."}},
	{name: "CNAME to a POOL name", qname: "towww.example.test.", qtype: dns.TypeAAAA, aa: true, answer: []string{
		"towww.example.test. 300 IN CNAME www.example.test.",
		"www.example.test. 20 IN AAAA 2001:db8::1"}},
	{name: "POOL all down, all_down none: NODATA", qname: "none.example.test.", qtype: dns.TypeA, aa: true,
		ns: []string{negSOA}},
	{name: "minimal ANY: one RRset", qname: "static.example.test.", qtype: dns.TypeANY, aa: true,
		answer: []string{"static.example.test. 300 IN A 192.0.2.100"}},
	{name: "minimal ANY at a CNAME", qname: "alias.example.test.", qtype: dns.TypeANY, aa: true,
		answer: []string{"alias.example.test. 300 IN CNAME static.example.test."}},
	{name: "minimal ANY at a POOL name", qname: "v4only.example.test.", qtype: dns.TypeANY, aa: true,
		answer: []string{"v4only.example.test. 300 IN A 192.0.2.21"}},
	{name: "AXFR refused", qname: "example.test.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused},
}

func checkAnswer(t *testing.T, tc answerCase, r *dns.Msg) {
	t.Helper()
	if r.Rcode != tc.rcode {
		t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
	}
	if r.Authoritative != tc.aa {
		t.Errorf("AA %v, want %v", r.Authoritative, tc.aa)
	}
	if r.RecursionAvailable {
		t.Errorf("RA set")
	}
	if r.Truncated {
		t.Errorf("TC set")
	}
	for _, s := range []struct {
		sect      string
		got, want []string
	}{{"answer", rrStrings(r.Answer), tc.answer}, {"authority", rrStrings(r.Ns), tc.ns}, {"additional", rrStrings(r.Extra), tc.extra}} {
		want := slices.Clone(s.want)
		slices.Sort(want)
		if !slices.Equal(s.got, want) {
			t.Errorf("%s:\n got  %q\n want %q", s.sect, s.got, want)
		}
	}
}

func TestAnswers(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{})
	for _, netw := range []string{"udp", "tcp"} {
		for _, tc := range answerCases {
			t.Run(netw+"/"+tc.name, func(t *testing.T) {
				m := newQuery(tc.qname, tc.qtype)
				m.RecursionDesired = true // ignored, copied, never RA
				r := exchange(t, netw, addr, m)
				if !r.RecursionDesired {
					t.Errorf("RD not copied")
				}
				checkAnswer(t, tc, r)
			})
		}
	}
}

// TestPoolAnswers checks the selector's choice reaches the wire: the
// answers count and round robin over the members.
func TestPoolAnswers(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{})
	seen := map[string]bool{}
	for i := 0; i < 6; i++ {
		r := exchange(t, "udp", addr, newQuery("two.example.test.", dns.TypeA))
		if len(r.Answer) != 2 {
			t.Fatalf("%d answers, want 2 (answers: 2)", len(r.Answer))
		}
		seen[r.Answer[0].(*dns.A).A.String()] = true
	}
	if len(seen) != 3 {
		t.Errorf("first answers over 6 queries: %v, want all 3 members in rotation", seen)
	}
}

func TestCaseAndWildcardOwner(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{})
	for _, tc := range []struct{ qname, owner string }{
		{"StAtIc.ExAmPlE.tEsT.", "StAtIc.ExAmPlE.tEsT."},
		{"WWW.example.TEST.", "WWW.example.TEST."},
		{"Foo.WILD.example.test.", "Foo.WILD.example.test."},
	} {
		t.Run(tc.qname, func(t *testing.T) {
			r := exchange(t, "udp", addr, newQuery(tc.qname, dns.TypeA))
			if len(r.Question) != 1 || r.Question[0].Name != tc.qname {
				t.Errorf("question %v, want %s", r.Question, tc.qname)
			}
			if len(r.Answer) == 0 {
				t.Fatalf("no answer")
			}
			for _, rr := range r.Answer {
				if rr.Header().Name != tc.owner {
					t.Errorf("owner %q, want %q", rr.Header().Name, tc.owner)
				}
			}
		})
	}
}

func TestChaos(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{})
	for _, tc := range []struct {
		qname string
		qtype uint16
		rcode int
		txt   string
	}{
		{"id.server.", dns.TypeTXT, dns.RcodeSuccess, "test-node-1"},
		{"HOSTNAME.BIND.", dns.TypeTXT, dns.RcodeSuccess, "test-node-1"},
		{"version.bind.", dns.TypeTXT, dns.RcodeRefused, ""},
		{"version.server.", dns.TypeTXT, dns.RcodeRefused, ""},
		{"id.server.", dns.TypeA, dns.RcodeSuccess, ""},
	} {
		t.Run(tc.qname+dns.Type(tc.qtype).String(), func(t *testing.T) {
			m := newQuery(tc.qname, tc.qtype)
			m.Question[0].Qclass = dns.ClassCHAOS
			r := exchange(t, "udp", addr, m)
			if r.Rcode != tc.rcode {
				t.Fatalf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
			}
			var got string
			if len(r.Answer) == 1 {
				txt := r.Answer[0].(*dns.TXT)
				if txt.Hdr.Class != dns.ClassCHAOS || txt.Hdr.Name != tc.qname {
					t.Errorf("answer %v: want class CH at %s", txt, tc.qname)
				}
				got = strings.Join(txt.Txt, "")
			}
			if got != tc.txt {
				t.Errorf("TXT %q, want %q", got, tc.txt)
			}
		})
	}
	t.Run("other classes refused", func(t *testing.T) {
		m := newQuery("static.example.test.", dns.TypeA)
		m.Question[0].Qclass = dns.ClassHESIOD
		if r := exchange(t, "udp", addr, m); r.Rcode != dns.RcodeRefused {
			t.Errorf("rcode %s, want REFUSED", dns.RcodeToString[r.Rcode])
		}
	})
}

// TestCompression checks every answer of the table is at least as compact
// as miekg/dns's own compression of the same message.
func TestCompression(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{})
	for _, tc := range answerCases {
		t.Run(tc.name, func(t *testing.T) {
			b := rawExchange(t, addr, packMsg(t, newQuery(tc.qname, tc.qtype)))
			var r dns.Msg
			if err := r.Unpack(b); err != nil {
				t.Fatal(err)
			}
			r.Compress = true
			if ref := packMsg(t, &r); len(b) > len(ref) {
				t.Errorf("%d bytes, miekg/dns compresses it to %d", len(b), len(ref))
			}
		})
	}
}

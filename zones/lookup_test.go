package zones

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/miekg/dns"
)

// rfc4592 is the example zone of RFC 4592 section 2.2.1.
const rfc4592 = `$ORIGIN example.
example.                 3600 IN  SOA   ns.example.com. hostmaster.example. 1 3600 600 604800 60
example.                 3600     NS    ns.example.com.
example.                 3600     NS    ns.example.net.
*.example.               3600     TXT   "this is a wildcard"
*.example.               3600     MX    10 host1.example.
sub.*.example.           3600     TXT   "this is not a wildcard"
host1.example.           3600     A     192.0.2.1
_ssh._tcp.host1.example. 3600     SRV   0 0 22 host1.example.
_ssh._tcp.host2.example. 3600     SRV   0 0 22 host2.example.
subdel.example.          3600     NS    ns.example.com.
subdel.example.          3600     NS    ns.example.net.
`

// tern is a zone with every kind of name Tern serves.
const ternZone = `$ORIGIN example.test.
$TTL 300
@        IN SOA ns1 hostmaster 1 3600 600 604800 60
@        IN NS  ns1
@        IN MX  10 mail
ns1      IN A   192.0.2.1
ns1      IN AAAA 2001:db8::1
mail     IN A   192.0.2.25
www   30 IN POOL web
www      IN TXT "beside the pool"
api      IN POOL api
alias    IN CNAME www
*.pool   IN POOL api
*.cname  IN CNAME alias
x.ent.deep IN TXT "below two empty non-terminals"
c\.d     IN TXT "an escaped dot"
sub      IN NS  ns.sub
sub      IN NS  ns1
sub      IN NS  ns.elsewhere.org.
sub      IN DS  12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.sub   IN A   192.0.2.53
ns.sub   IN AAAA 2001:db8::53
nods     IN NS  ns1
`

// childZone is served beside ternZone: the longest match wins.
const childZone = `$ORIGIN sub.example.test.
$TTL 60
@        IN SOA ns.sub hostmaster 1 3600 600 604800 60
@        IN NS  ns
ns       IN A   192.0.2.53
ns       IN AAAA 2001:db8::53
www      IN A   192.0.2.80
`

func mustParse(t testing.TB, text, origin string) *Zone {
	t.Helper()
	fsys := fstest.MapFS{"z.zone": {Data: []byte(text)}}
	z, ps := Parse(fsys, "z.zone", "z.zone", origin, testPools)
	if len(ps) > 0 {
		t.Fatalf("problems:\n%v", ps)
	}
	return z
}

// rrs renders records one per string, owner and rdata only.
func rrs(rs []dns.RR) []string {
	var out []string
	for _, rr := range rs {
		f := strings.Split(rr.String(), "\t")
		out = append(out, f[0]+" "+f[3]+" "+strings.Join(f[4:], " "))
	}
	return out
}

type lookupCase struct {
	qname    string
	qtype    uint16
	kind     Kind
	owner    string
	wildcard bool
	answer   []string // rrs() of Answer
	pool     string
	poolTTL  uint32
	ns       int
	glue     []string
	inDomain int // of glue, how many are in-domain (below the cut)
}

func checkLookup(t *testing.T, z *Zone, tc lookupCase) {
	t.Helper()
	r := z.Lookup(tc.qname, tc.qtype)
	if r.Kind != tc.kind || r.Owner != tc.owner || r.Wildcard != tc.wildcard {
		t.Errorf("got %v owner %q wildcard %v, want %v owner %q wildcard %v", r.Kind, r.Owner, r.Wildcard, tc.kind, tc.owner, tc.wildcard)
	}
	if got := rrs(r.Answer.RRs()); !slices.Equal(got, tc.answer) {
		t.Errorf("answer %q, want %q", got, tc.answer)
	}
	if tc.kind == PoolName {
		names := []string{"api", "web"} // testPools in PoolNames order
		if r.Pool < 0 || r.Pool >= len(names) || names[r.Pool] != tc.pool || r.PoolTTL != tc.poolTTL {
			t.Errorf("pool %d ttl %d, want %s ttl %d", r.Pool, r.PoolTTL, tc.pool, tc.poolTTL)
		}
	}
	if r.NS.Len() != tc.ns {
		t.Errorf("NS %q, want %d records", rrs(r.NS.RRs()), tc.ns)
	}
	if got := rrs(r.Glue.RRs()); !slices.Equal(got, tc.glue) {
		t.Errorf("glue %q, want %q", got, tc.glue)
	}
	if r.InDomainGlue != tc.inDomain {
		t.Errorf("in-domain glue %d, want %d", r.InDomainGlue, tc.inDomain)
	}
}

func TestLookupRFC4592(t *testing.T) {
	z := mustParse(t, rfc4592, "")
	for _, tc := range []lookupCase{
		// Section 2.2.1: names the wildcard matches.
		{qname: "host3.example.", qtype: dns.TypeMX, kind: Success, owner: "*.example.", wildcard: true, answer: []string{"*.example. MX 10 host1.example."}},
		{qname: "host3.example.", qtype: dns.TypeA, kind: NoData, owner: "*.example.", wildcard: true},
		{qname: "foo.bar.example.", qtype: dns.TypeTXT, kind: Success, owner: "*.example.", wildcard: true, answer: []string{`*.example. TXT "this is a wildcard"`}},
		// ... and names it does not.
		{qname: "host1.example.", qtype: dns.TypeMX, kind: NoData, owner: "host1.example."},
		{qname: "sub.*.example.", qtype: dns.TypeMX, kind: NoData, owner: "sub.*.example."},
		{qname: "_telnet._tcp.host1.example.", qtype: dns.TypeSRV, kind: NXDomain},
		{qname: "host.subdel.example.", qtype: dns.TypeA, kind: Delegation, owner: "subdel.example.", ns: 2},
		{qname: "ghost.*.example.", qtype: dns.TypeMX, kind: NXDomain},
		// Empty non-terminals exist (section 2.2.2): no data, and no wildcard.
		{qname: "_tcp.host1.example.", qtype: dns.TypeSRV, kind: NoData, owner: "_tcp.host1.example."},
		{qname: "host2.example.", qtype: dns.TypeA, kind: NoData, owner: "host2.example."},
		{qname: "x.host2.example.", qtype: dns.TypeA, kind: NXDomain},
		// The wildcard's own name is an ordinary name.
		{qname: "*.example.", qtype: dns.TypeTXT, kind: Success, owner: "*.example.", answer: []string{`*.example. TXT "this is a wildcard"`}},
		{qname: "*.example.", qtype: dns.TypeA, kind: NoData, owner: "*.example."},
		{qname: "_ssh._tcp.host2.example.", qtype: dns.TypeSRV, kind: Success, owner: "_ssh._tcp.host2.example.", answer: []string{"_ssh._tcp.host2.example. SRV 0 0 22 host2.example."}},
		{qname: "subdel.example.", qtype: dns.TypeNS, kind: Delegation, owner: "subdel.example.", ns: 2},
		{qname: "subdel.example.", qtype: dns.TypeDS, kind: NoData, owner: "subdel.example."},
		{qname: "example.", qtype: dns.TypeNS, kind: Success, owner: "example.", answer: []string{"example. NS ns.example.com.", "example. NS ns.example.net."}},
		{qname: "example.org.", qtype: dns.TypeA, kind: NotInZone},
		{qname: "org.", qtype: dns.TypeA, kind: NotInZone},
	} {
		t.Run(tc.qname+"/"+dns.Type(tc.qtype).String(), func(t *testing.T) { checkLookup(t, z, tc) })
	}
}

func TestLookup(t *testing.T) {
	z := mustParse(t, ternZone, "")
	glue := []string{"ns.sub.example.test. A 192.0.2.53", "ns.sub.example.test. AAAA 2001:db8::53", "ns1.example.test. A 192.0.2.1", "ns1.example.test. AAAA 2001:db8::1"}
	for _, tc := range []lookupCase{
		{qname: "www.example.test.", qtype: dns.TypeA, kind: PoolName, owner: "www.example.test.", pool: "web", poolTTL: 30},
		{qname: "www.example.test.", qtype: dns.TypeAAAA, kind: PoolName, owner: "www.example.test.", pool: "web", poolTTL: 30},
		{qname: "www.example.test.", qtype: dns.TypeANY, kind: PoolName, owner: "www.example.test.", pool: "web", poolTTL: 30},
		{qname: "www.example.test.", qtype: dns.TypeTXT, kind: Success, owner: "www.example.test.", answer: []string{`www.example.test. TXT "beside the pool"`}},
		{qname: "www.example.test.", qtype: dns.TypeMX, kind: NoData, owner: "www.example.test."},
		{qname: "www.example.test.", qtype: TypePOOL, kind: NoData, owner: "www.example.test."},
		{qname: "api.example.test.", qtype: dns.TypeA, kind: PoolName, owner: "api.example.test.", pool: "api", poolTTL: 300},
		{qname: "api.example.test.", qtype: dns.TypeTXT, kind: NoData, owner: "api.example.test."},
		// Case-insensitive, with or without the final dot.
		{qname: "WwW.ExAmPlE.TeSt", qtype: dns.TypeA, kind: PoolName, owner: "www.example.test.", pool: "web", poolTTL: 30},
		{qname: "MAIL.EXAMPLE.TEST.", qtype: dns.TypeA, kind: Success, owner: "mail.example.test.", answer: []string{"mail.example.test. A 192.0.2.25"}},
		// CNAME
		{qname: "alias.example.test.", qtype: dns.TypeA, kind: CNAME, owner: "alias.example.test.", answer: []string{"alias.example.test. CNAME www.example.test."}},
		{qname: "alias.example.test.", qtype: dns.TypeCNAME, kind: Success, owner: "alias.example.test.", answer: []string{"alias.example.test. CNAME www.example.test."}},
		{qname: "alias.example.test.", qtype: dns.TypeANY, kind: Success, owner: "alias.example.test.", answer: []string{"alias.example.test. CNAME www.example.test."}},
		// Wildcard POOL and wildcard CNAME.
		{qname: "eu.pool.example.test.", qtype: dns.TypeA, kind: PoolName, owner: "*.pool.example.test.", wildcard: true, pool: "api", poolTTL: 300},
		{qname: "a.b.pool.example.test.", qtype: dns.TypeAAAA, kind: PoolName, owner: "*.pool.example.test.", wildcard: true, pool: "api", poolTTL: 300},
		{qname: "eu.pool.example.test.", qtype: dns.TypeTXT, kind: NoData, owner: "*.pool.example.test.", wildcard: true},
		{qname: "pool.example.test.", qtype: dns.TypeA, kind: NoData, owner: "pool.example.test."},
		{qname: "x.cname.example.test.", qtype: dns.TypeA, kind: CNAME, owner: "*.cname.example.test.", wildcard: true, answer: []string{"*.cname.example.test. CNAME alias.example.test."}},
		// Empty non-terminals.
		{qname: "deep.example.test.", qtype: dns.TypeA, kind: NoData, owner: "deep.example.test."},
		{qname: "ent.deep.example.test.", qtype: dns.TypeANY, kind: NoData, owner: "ent.deep.example.test."},
		{qname: "y.ent.deep.example.test.", qtype: dns.TypeTXT, kind: NXDomain},
		// An escaped dot is part of a label.
		{qname: `c\.d.example.test.`, qtype: dns.TypeTXT, kind: Success, owner: `c\.d.example.test.`, answer: []string{`c\.d.example.test. TXT "an escaped dot"`}},
		{qname: "c.d.example.test.", qtype: dns.TypeTXT, kind: NXDomain},
		// Minimal ANY: the RRset of the lowest type.
		{qname: "example.test.", qtype: dns.TypeANY, kind: Success, owner: "example.test.", answer: []string{"example.test. NS ns1.example.test."}},
		{qname: "ns1.example.test.", qtype: dns.TypeANY, kind: Success, owner: "ns1.example.test.", answer: []string{"ns1.example.test. A 192.0.2.1"}},
		{qname: "example.test.", qtype: dns.TypeSOA, kind: Success, owner: "example.test.", answer: []string{"example.test. SOA ns1.example.test. hostmaster.example.test. 1 3600 600 604800 60"}},
		// Delegations: at the cut, below it, glue from the child and from
		// the parent's own data; DS at the cut is the parent's.
		{qname: "sub.example.test.", qtype: dns.TypeA, kind: Delegation, owner: "sub.example.test.", ns: 3, glue: glue, inDomain: 2},
		{qname: "sub.example.test.", qtype: dns.TypeNS, kind: Delegation, owner: "sub.example.test.", ns: 3, glue: glue, inDomain: 2},
		{qname: "www.sub.example.test.", qtype: dns.TypeA, kind: Delegation, owner: "sub.example.test.", ns: 3, glue: glue, inDomain: 2},
		{qname: "ns.sub.example.test.", qtype: dns.TypeA, kind: Delegation, owner: "sub.example.test.", ns: 3, glue: glue, inDomain: 2},
		{qname: "a.b.c.sub.example.test.", qtype: dns.TypeTXT, kind: Delegation, owner: "sub.example.test.", ns: 3, glue: glue, inDomain: 2},
		{qname: "sub.example.test.", qtype: dns.TypeDS, kind: Success, owner: "sub.example.test.", answer: []string{"sub.example.test. DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"}},
		{qname: "nods.example.test.", qtype: dns.TypeDS, kind: NoData, owner: "nods.example.test."},
		{qname: "x.nods.example.test.", qtype: dns.TypeDS, kind: Delegation, owner: "nods.example.test.", ns: 1, glue: []string{"ns1.example.test. A 192.0.2.1", "ns1.example.test. AAAA 2001:db8::1"}},
		{qname: "nothere.example.test.", qtype: dns.TypeA, kind: NXDomain},
		{qname: "example.com.", qtype: dns.TypeA, kind: NotInZone},
		{qname: "", qtype: dns.TypeA, kind: NotInZone},
	} {
		t.Run(tc.qname+"/"+dns.Type(tc.qtype).String(), func(t *testing.T) { checkLookup(t, z, tc) })
	}
}

func TestSetLongestMatch(t *testing.T) {
	parent := mustParse(t, ternZone, "")
	child := mustParse(t, childZone, "")
	root := mustParse(t, "$TTL 60\n. IN SOA a.root. h.root. 1 2 3 4 5\n. IN NS a.root.\na.root. IN A 192.0.2.9\n", "")
	s, err := NewSet(parent, child)
	if err != nil {
		t.Fatal(err)
	}
	withRoot, err := NewSet(root, parent, child)
	if err != nil {
		t.Fatal(err)
	}
	// More zones than fewOrigins: zoneOf hashes suffixes (byOrigin)
	// instead of comparing them with each origin.
	var more []*Zone
	for _, o := range []string{"a.invalid.", "b.invalid.", "c.invalid.", "d.invalid."} {
		more = append(more, mustParse(t, "$TTL 60\n@ IN SOA ns h 1 2 3 4 5\n@ IN NS ns\nns IN A 192.0.2.9\n", o))
	}
	many, err := NewSet(append(more, root, parent, child)...)
	if err != nil {
		t.Fatal(err)
	}
	if many.few != nil || withRoot.few == nil {
		t.Fatalf("%d zones compare origins (few: %d), %d zones too (few: %d); want only the set of at most %d", len(many.zones), len(many.few), len(withRoot.zones), len(withRoot.few), fewOrigins)
	}
	for _, tc := range []struct {
		qname     string
		want      *Zone
		wantRoot  *Zone
		kind      Kind
		answerLen int
	}{
		{"www.sub.example.test.", child, child, Success, 1},
		{"WWW.SUB.EXAMPLE.TEST", child, child, Success, 1},
		{"sub.example.test.", child, child, NoData, 0},
		{"deeper.www.sub.example.test.", child, child, NXDomain, 0},
		{"www.example.test.", parent, parent, PoolName, 0},
		{"example.test.", parent, parent, NoData, 0},
		{"xsub.example.test.", parent, parent, NXDomain, 0},
		// As long as the child's origin: the length filter lets it
		// through to the map, which finds no such origin.
		{"bub.example.test.", parent, parent, NXDomain, 0},
		{"test.", nil, root, NotInZone, 0},
		{"other.", nil, root, NotInZone, 0},
		{".", nil, root, NotInZone, 0},
	} {
		t.Run(tc.qname, func(t *testing.T) {
			if got := s.Zone(tc.qname); got != tc.want {
				t.Errorf("Zone = %v, want %v", origin(got), origin(tc.want))
			}
			if got := withRoot.Zone(tc.qname); got != tc.wantRoot {
				t.Errorf("with the root zone: Zone = %v, want %v", origin(got), origin(tc.wantRoot))
			}
			if got := many.Zone(tc.qname); got != tc.wantRoot {
				t.Errorf("with the root zone and %d more: Zone = %v, want %v", len(more), origin(got), origin(tc.wantRoot))
			}
			z, r := s.Lookup(tc.qname, dns.TypeA)
			if z != tc.want || r.Kind != tc.kind || r.Answer.Len() != tc.answerLen {
				t.Errorf("Lookup = %v, %v with %d answers; want %v, %v with %d", origin(z), r.Kind, r.Answer.Len(), origin(tc.want), tc.kind, tc.answerLen)
			}
			if tc.qname == strings.ToLower(tc.qname) && strings.HasSuffix(tc.qname, ".") {
				var cr Result
				if cz := s.LookupCanonicalTo(&cr, tc.qname, dns.TypeA); cz != z || cr.Kind != r.Kind || cr.Answer.Len() != r.Answer.Len() {
					t.Errorf("LookupCanonicalTo = %v, %v; Lookup %v, %v", origin(cz), cr.Kind, origin(z), r.Kind)
				}
			}
		})
	}
	// DS at the child's apex is the parent's; other types the child's.
	if z, r := s.Lookup("SUB.example.test.", dns.TypeDS); z != parent || r.Kind != Success || r.Answer.Len() != 1 {
		t.Errorf("DS at the child's apex: zone %s, %v with %d records; want the parent's DS", origin(z), r.Kind, r.Answer.Len())
	}
	if z, r := s.Lookup("sub.example.test.", dns.TypeNS); z != child || r.Kind != Success {
		t.Errorf("NS at the child's apex: zone %s, %v; want the child's", origin(z), r.Kind)
	}
	if z, r := s.Lookup("example.test.", dns.TypeDS); z != parent || r.Kind != NoData {
		t.Errorf("DS at an apex without parent zone: zone %s, %v; want the zone's NoData", origin(z), r.Kind)
	}
	if got := s.Zones(); len(got) != 2 || got[0] != parent || got[1] != child {
		t.Errorf("Zones() = %v", got)
	}
	if _, err := NewSet(parent, mustParse(t, ternZone, "")); err == nil {
		t.Errorf("NewSet with a duplicate origin: no error")
	}
}

func origin(z *Zone) string {
	if z == nil {
		return "<nil>"
	}
	return z.Origin
}

func TestRecordsCanonicalOrder(t *testing.T) {
	z := mustParse(t, `$ORIGIN example.test.
$TTL 60
z IN A 192.0.2.2
Z IN A 192.0.2.1
@ IN NS ns1
@ IN SOA ns1 h 1 2 3 4 5
a.z IN TXT x
ns1 IN A 192.0.2.1
*.example.test. IN TXT w
ns1 IN A 192.0.2.1
`, "")
	want := []string{
		"example.test. NS ns1.example.test.",
		"example.test. SOA ns1.example.test. h.example.test. 1 2 3 4 5",
		`*.example.test. TXT "w"`,
		"ns1.example.test. A 192.0.2.1", // the duplicate is one record
		"z.example.test. A 192.0.2.1",
		"z.example.test. A 192.0.2.2",
		`a.z.example.test. TXT "x"`,
	}
	if got := rrs(z.Records()); !slices.Equal(got, want) {
		t.Errorf("Records():\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// addrZone and addrChild exercise additional-section processing (RFC
// 1035 sections 3.3.9, 3.3.11 and 4.3.2 step 6) across two served zones.
const addrZone = `$ORIGIN example.test.
$TTL 300
@        IN SOA ns1 hostmaster 1 3600 600 604800 60
@        IN NS  ns1
@        IN NS  ns2
@        IN NS  ns.elsewhere.org.
@        IN MX  10 mail
@        IN MX  20 mail2
@        IN MX  30 alias
@        IN MX  40 www
@        IN MX  50 x.wild
@        IN MX  60 host.child
@        IN MX  70 ns.sub
ns1      IN A   192.0.2.1
ns1      IN AAAA 2001:db8::1
ns2      IN A   192.0.2.2
mail     IN A   192.0.2.25
mail2    IN AAAA 2001:db8::25
alias    IN CNAME mail
www      IN POOL web
*.wild   IN A   192.0.2.99
_sip._udp IN SRV 10 5 5060 mail
_none._tcp IN SRV 0 0 0 .
null     IN MX  0 .
dup      IN MX  10 mail
dup      IN MX  20 MAIL
sub      IN NS  ns.sub
ns.sub   IN A   192.0.2.53
child    IN NS  ns1
`

const addrChild = `$ORIGIN child.example.test.
$TTL 60
@        IN SOA ns1.example.test. hostmaster 1 3600 600 604800 60
@        IN NS  ns1.example.test.
host     IN A   192.0.2.80
`

func TestSetAdditional(t *testing.T) {
	s, err := NewSet(mustParse(t, addrZone, ""), mustParse(t, addrChild, ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		qname string
		qtype uint16
		want  []string
	}{
		{"apex NS: both families, in rdata order, out-of-zone target left out", "example.test.", dns.TypeNS,
			[]string{"ns1.example.test. A 192.0.2.1", "ns1.example.test. AAAA 2001:db8::1", "ns2.example.test. A 192.0.2.2"}},
		{"minimal ANY at the apex answers NS: the same", "example.test.", dns.TypeANY,
			[]string{"ns1.example.test. A 192.0.2.1", "ns1.example.test. AAAA 2001:db8::1", "ns2.example.test. A 192.0.2.2"}},
		{"MX: addresses of in-zone and other served zones' hosts; aliases, POOL names, wildcards and glue left out", "example.test.", dns.TypeMX,
			[]string{"mail.example.test. A 192.0.2.25", "mail2.example.test. AAAA 2001:db8::25", "host.child.example.test. A 192.0.2.80"}},
		{"SRV target", "_sip._udp.example.test.", dns.TypeSRV, []string{"mail.example.test. A 192.0.2.25"}},
		{"SRV target . (no service)", "_none._tcp.example.test.", dns.TypeSRV, nil},
		{"null MX (RFC 7505)", "null.example.test.", dns.TypeMX, nil},
		{"a target named twice is added once", "dup.example.test.", dns.TypeMX, []string{"mail.example.test. A 192.0.2.25"}},
		{"the child's NS in the parent zone's data", "child.example.test.", dns.TypeNS,
			[]string{"ns1.example.test. A 192.0.2.1", "ns1.example.test. AAAA 2001:db8::1"}},
		{"other types get none", "mail.example.test.", dns.TypeA, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, r := s.Lookup(tc.qname, tc.qtype)
			if r.Kind != Success {
				t.Fatalf("kind %v, want Success", r.Kind)
			}
			if got := rrs(r.Additional.RRs()); !slices.Equal(got, tc.want) {
				t.Errorf("additional %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("a large RRset names each target's addresses once", func(t *testing.T) {
		text := addrZone
		for i := range 40 {
			text += fmt.Sprintf("many IN MX %d %s\n", i, []string{"mail", "MAIL2", "mail2", "ns1"}[i%4])
		}
		s, err := NewSet(mustParse(t, text, ""))
		if err != nil {
			t.Fatal(err)
		}
		_, r := s.Lookup("many.example.test.", dns.TypeMX)
		want := []string{"mail.example.test. A 192.0.2.25", "mail2.example.test. AAAA 2001:db8::25", "ns1.example.test. A 192.0.2.1", "ns1.example.test. AAAA 2001:db8::1"}
		if got := rrs(r.Additional.RRs()); !slices.Equal(got, want) {
			t.Errorf("additional %q, want %q", got, want)
		}
	})
	t.Run("referral: glue, not additional", func(t *testing.T) {
		_, r := s.Lookup("x.sub.example.test.", dns.TypeA)
		if r.Kind != Delegation || r.Additional.Len() != 0 || r.InDomainGlue != 1 || r.Glue.Records() != 1 {
			t.Errorf("%v additional %q glue %q (%d in-domain)", r.Kind, rrs(r.Additional.RRs()), rrs(r.Glue.RRs()), r.InDomainGlue)
		}
	})
	t.Run("Zone.Lookup leaves Additional empty", func(t *testing.T) {
		if r := s.Zone("example.test.").Lookup("example.test.", dns.TypeNS); r.Additional.Len() != 0 {
			t.Errorf("additional %q", rrs(r.Additional.RRs()))
		}
	})
}

// TestSetDS: DS at the apex of a served child, RFC 4035 section 3.1.4.1:
// the parent's side of the cut answers DS, when there is a cut; else
// the child, which holds the name, answers NODATA.
func TestSetDS(t *testing.T) {
	parentOf := func(extra string) *Zone {
		return mustParse(t, `$ORIGIN example.test.
$TTL 300
@        IN SOA ns1 hostmaster 1 3600 600 604800 60
@        IN NS  ns1
ns1      IN A   192.0.2.1
`+extra, "")
	}
	child := func(origin string) *Zone {
		return mustParse(t, "$TTL 60\n@ IN SOA ns1.example.test. h 1 2 3 4 5\n@ IN NS ns1.example.test.\nwww IN A 192.0.2.80\n", origin)
	}
	const ds = "sub IN DS 12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
	for _, tc := range []struct {
		name      string
		parent    string // records added to the parent
		child     string // the child's origin
		qname     string
		wantChild bool // answered from the child (else the parent)
		kind      Kind
		answer    int
	}{
		{"delegated with DS: the parent's DS", "sub IN NS ns1\n" + ds, "sub.example.test.", "sub.example.test.", false, Success, 1},
		{"delegated without DS: the parent's NODATA", "sub IN NS ns1\n", "sub.example.test.", "sub.example.test.", false, NoData, 0},
		{"any case", "sub IN NS ns1\n", "sub.example.test.", "SUB.Example.TEST.", false, NoData, 0},
		{"not delegated: the child's NODATA, not the parent's NXDOMAIN", "", "sub.example.test.", "sub.example.test.", true, NoData, 0},
		{"parent has other data there but no NS: the child's", "sub IN TXT \"not a cut\"\n", "sub.example.test.", "sub.example.test.", true, NoData, 0},
		{"parent delegates an ancestor only: the child's", "b IN NS ns1\n", "a.b.example.test.", "a.b.example.test.", true, NoData, 0},
		{"delegated two labels down: the parent's", "a.b IN NS ns1\n", "a.b.example.test.", "a.b.example.test.", false, NoData, 0},
		{"DS below the child's apex: the child's", "sub IN NS ns1\n", "sub.example.test.", "www.sub.example.test.", true, NoData, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, c := parentOf(tc.parent), child(tc.child)
			s, err := NewSet(p, c)
			if err != nil {
				t.Fatal(err)
			}
			want := p
			if tc.wantChild {
				want = c
			}
			z, r := s.Lookup(tc.qname, dns.TypeDS)
			if z != want || r.Kind != tc.kind || r.Answer.Len() != tc.answer {
				t.Errorf("zone %s, %v with %d records; want zone %s, %v with %d", origin(z), r.Kind, r.Answer.Len(), origin(want), tc.kind, tc.answer)
			}
		})
	}
}

func TestSetWarnings(t *testing.T) {
	parent := `$ORIGIN example.test.
$TTL 300
@        IN SOA ns1 hostmaster 1 3600 600 604800 60
@        IN NS  ns1
ns1      IN A   192.0.2.1
`
	child := "$ORIGIN sub.example.test.\n$TTL 60\n\n@ IN SOA ns1.example.test. h 1 2 3 4 5\n@ IN NS ns1.example.test.\n"
	load := func(t *testing.T, parent string) *Set {
		fsys := fstest.MapFS{"p.zone": {Data: []byte(parent)}, "c.zone": {Data: []byte(child)}}
		p, ps := Parse(fsys, "p.zone", "zones/p.zone", "", nil)
		c, cps := Parse(fsys, "c.zone", "zones/c.zone", "", nil)
		if len(ps)+len(cps) > 0 {
			t.Fatalf("problems: %v %v", ps, cps)
		}
		s, err := NewSet(p, c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("child without delegation: a warning at the child's SOA", func(t *testing.T) {
		ws := load(t, parent).Warnings()
		if len(ws) != 1 {
			t.Fatalf("warnings %v, want one", ws)
		}
		if w := ws[0].String(); !strings.HasPrefix(w, "zones/c.zone:4: zone sub.example.test. is served with its parent zone example.test. (zones/p.zone)") ||
			!strings.Contains(w, "`sub IN NS ns1.example.test.`") {
			t.Errorf("warning %q", w)
		}
	})
	t.Run("delegated child: none", func(t *testing.T) {
		if ws := load(t, parent+"sub IN NS ns1\n").Warnings(); len(ws) != 0 {
			t.Errorf("warnings %v, want none", ws)
		}
	})
	t.Run("a parent that delegates its served child (ternZone): none", func(t *testing.T) {
		s, err := NewSet(mustParse(t, ternZone, ""), mustParse(t, childZone, ""))
		if err != nil {
			t.Fatal(err)
		}
		if ws := s.Warnings(); len(ws) != 0 {
			t.Errorf("warnings %v, want none", ws)
		}
	})
}

// TestCanonicalOrderLarge loads a zone of more names than the builder
// sorts at a time, written in an order far from canonical, so that the
// sorted runs are merged: every RRset must come out in canonical order,
// and every name must be found.
func TestCanonicalOrderLarge(t *testing.T) {
	n := 3*sortRun + 77
	var text strings.Builder
	text.WriteString(head)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&text, "h%d IN A 192.0.2.1\n", i)
		if i%10 == 0 {
			fmt.Fprintf(&text, "%d.ent%03d.z IN TXT x\n", i, i/10)
		}
	}
	z := mustParse(t, text.String(), "")
	var prev string
	count := 0
	for set := range z.RRsets() {
		owner := set.Owner()
		if count == 0 && owner != z.Origin {
			t.Fatalf("first owner %s, want the apex", owner)
		}
		if prev != "" && owner != prev && compareNames(prev, owner) >= 0 {
			t.Fatalf("%s after %s: not canonical order", owner, prev)
		}
		if r := z.Lookup(owner, set.Type()); r.Kind != Success || r.Owner != owner {
			t.Fatalf("%s %s: %v at %s", owner, typeName(set.Type()), r.Kind, r.Owner)
		}
		prev = owner
		count++
	}
	if want := 3 + n + n/10; count != want { // SOA, NS, ns1 A, the generated
		t.Errorf("%d RRsets, want %d", count, want)
	}
	if r := z.Lookup("ent001.z.example.test.", dns.TypeA); r.Kind != NoData || z.Lookup("z.example.test.", dns.TypeA).Kind != NoData {
		t.Errorf("an empty non-terminal: %v, want NoData", r.Kind)
	}
}

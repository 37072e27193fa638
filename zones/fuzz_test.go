package zones

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/miekg/dns"
)

// FuzzParse feeds random zone text (and the text of a file it may
// $INCLUDE as inc.zone or sub/inc.zone) to Parse. Parse must not panic,
// must return a zone exactly when it reports no problems, and every lookup
// in a zone it returns must be consistent.
func FuzzParse(f *testing.F) {
	f.Add(ternZone, "", "")
	f.Add(rfc4592, "", "")
	f.Add(childZone, "", "sub.example.test.")
	f.Add(head+"$INCLUDE sub/inc.zone\n", "x IN TXT y\n$INCLUDE ../inc.zone\n", "")
	f.Add(head+"www IN POOL web\nwww IN A 192.0.2.1\n", "", "")
	f.Fuzz(func(t *testing.T, text, inc, origin string) {
		if _, ok := dns.IsDomainName(origin); origin != "" && !ok {
			origin = ""
		}
		fsys := fstest.MapFS{
			"zones/z.zone":       {Data: []byte(text)},
			"zones/inc.zone":     {Data: []byte(inc)},
			"zones/sub/inc.zone": {Data: []byte(inc)},
		}
		z, ps := Parse(fsys, "zones/z.zone", "z.zone", origin, testPools)
		if (z == nil) == (len(ps) == 0) {
			t.Fatalf("zone %v with problems %v", z != nil, ps)
		}
		for _, p := range ps {
			if p.File == "" || p.Msg == "" || p.Line < 0 {
				t.Fatalf("incomplete problem %+v", p)
			}
		}
		if z == nil {
			return
		}
		if z.SOA == nil || z.NS().Len() == 0 || z.Lookup(z.Origin, dns.TypeSOA).Kind != Success {
			t.Fatalf("zone %s without SOA or NS served", z.Origin)
		}
		qtypes := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeANY, dns.TypeCNAME, dns.TypeDS, dns.TypeNS, dns.TypeTXT, TypePOOL}
		i := 0
		for rr := range z.All() {
			if i++; i == 300 { // $GENERATE makes large zones; a sample is enough
				break
			}
			owner := rr.Owner
			for _, q := range []string{owner, strings.ToUpper(owner), "fuzz." + owner, "a.b." + owner} {
				for _, qt := range qtypes {
					checkResult(t, z, q, qt, z.Lookup(q, qt))
				}
			}
			if r := z.Lookup(owner, rr.Type); r.Kind == NXDomain || r.Kind == NotInZone {
				t.Fatalf("%s %s is in the zone but looks up %v", owner, typeName(rr.Type), r.Kind)
			}
		}
	})
}

func checkResult(t *testing.T, z *Zone, q string, qt uint16, r Result) {
	t.Helper()
	switch r.Kind {
	case Success:
		if r.Answer.Len() == 0 {
			t.Fatalf("%s %d: Success without answer", q, qt)
		}
		for _, rr := range r.Answer.RRs() {
			if rr.Header().Name != r.Owner {
				t.Fatalf("%s %d: answer owner %s, result owner %s", q, qt, rr.Header().Name, r.Owner)
			}
		}
	case CNAME:
		if r.Answer.Len() != 1 || r.Answer.Type() != dns.TypeCNAME || r.Target == "" {
			t.Fatalf("%s %d: CNAME result with %v (target %q)", q, qt, r.Answer.RRs(), r.Target)
		}
	case PoolName:
		if r.Pool < 0 || r.Pool >= len(testPools) {
			t.Fatalf("%s %d: pool index %d", q, qt, r.Pool)
		}
	case Delegation:
		if r.NS.Len() == 0 || r.Owner == z.Origin {
			t.Fatalf("%s %d: delegation at %q with %d NS", q, qt, r.Owner, r.NS.Len())
		}
	case NoData, NXDomain, NotInZone:
	default:
		t.Fatalf("%s %d: kind %v", q, qt, r.Kind)
	}
	if r.Wildcard && !strings.HasPrefix(r.Owner, "*.") {
		t.Fatalf("%s %d: wildcard result owned by %q", q, qt, r.Owner)
	}
}

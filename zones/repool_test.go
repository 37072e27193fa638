package zones

import (
	"slices"
	"testing"
	"testing/fstest"

	"github.com/miekg/dns"
)

// Repool resolves a parsed zone's POOL records against another pool list
// without parsing it: the same zone when no index moved, a copy with the
// new indexes (the original unchanged, delegations' glue still served)
// when some did, and no zone when a pool it names is gone.
func TestRepool(t *testing.T) {
	const text = `$ORIGIN example.test.
@     300 IN SOA ns1 hostmaster 1 3600 600 604800 60
@     300 IN NS  ns1
ns1   300 IN A   192.0.2.53
www    30 IN POOL web
api    30 IN POOL api
www2   30 IN POOL web
sub   300 IN NS  ns.sub
ns.sub 300 IN A  192.0.2.54
`
	fsys := fstest.MapFS{"z.zone": {Data: []byte(text)}}
	z, ps := Parse(fsys, "z.zone", "z.zone", "", map[string]int{"api": 0, "web": 1})
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	if got := z.PoolNames(); !slices.Equal(got, []string{"api", "web"}) && !slices.Equal(got, []string{"web", "api"}) {
		t.Fatalf("PoolNames %v, want api and web once each", got)
	}
	pool := func(z *Zone, name string) int {
		t.Helper()
		r := z.Lookup(name, dns.TypeA)
		if r.Kind != PoolName {
			t.Fatalf("%s: %v, want a POOL name", name, r.Kind)
		}
		return r.Pool
	}
	for _, tc := range []struct {
		name    string
		pools   map[string]int
		same    bool // Repool returns z itself
		ok      bool
		www, ap int
	}{
		{"the same indexes", map[string]int{"api": 0, "web": 1}, true, true, 1, 0},
		{"other pools added, none moved", map[string]int{"api": 0, "web": 1, "zed": 2}, true, true, 1, 0},
		{"a pool added before both", map[string]int{"aaa": 0, "api": 1, "web": 2}, false, true, 2, 1},
		{"one moved, the other not", map[string]int{"api": 0, "b": 1, "web": 2}, false, true, 2, 0},
		{"web is gone", map[string]int{"api": 0}, false, false, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := z.Repool(tc.pools)
			if ok != tc.ok {
				t.Fatalf("ok %v, want %v", ok, tc.ok)
			}
			if !ok {
				if got != nil {
					t.Fatal("a zone for a pool list that lacks one of its pools")
				}
				return
			}
			if (got == z) != tc.same {
				t.Fatalf("Repool returned the zone itself: %v, want %v", got == z, tc.same)
			}
			if w, a, w2 := pool(got, "www.example.test."), pool(got, "api.example.test."), pool(got, "www2.example.test."); w != tc.www || w2 != tc.www || a != tc.ap {
				t.Fatalf("www %d, www2 %d, api %d; want %d, %d, %d", w, w2, a, tc.www, tc.www, tc.ap)
			}
			if pool(z, "www.example.test.") != 1 || pool(z, "api.example.test.") != 0 {
				t.Fatal("Repool changed the zone it copied")
			}
			r := got.Lookup("x.sub.example.test.", dns.TypeA)
			if got := rrs(r.Glue.RRs()); r.Kind != Delegation || len(got) != 1 || got[0] != "ns.sub.example.test. A 192.0.2.54" {
				t.Fatalf("the copy's delegation: %v with glue %v", r.Kind, got)
			}
		})
	}
}

package zones

import (
	"slices"
	"testing"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/config"
)

func TestLoadReference(t *testing.T) {
	c, err := config.Load("../../shared/examples/tern.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	set, ps := Load(c)
	if len(ps) > 0 {
		t.Fatalf("problems:\n%v", ps)
	}
	if got := len(set.Zones()); got != 1 {
		t.Fatalf("zones: got %d, want 1", got)
	}
	z := set.Zone("WWW.gslb.Example.TEST.")
	if z == nil || z.Origin != "gslb.example.test." {
		t.Fatalf("Zone(www...) = %v", z)
	}
	if z.SOA == nil || z.SOA.Serial != 2026112201 {
		t.Errorf("SOA = %v", z.SOA)
	}
	if len(z.NS()) != 2 {
		t.Errorf("NS = %v", z.NS())
	}
	names := c.PoolNames()
	for _, tc := range []struct {
		qname string
		pool  string
		ttl   uint32
	}{
		{"www.gslb.example.test.", "web", 30},
		{"api.gslb.example.test.", "api", 300},
		{"Shop.GSLB.example.test", "shop", 300},
	} {
		t.Run(tc.qname, func(t *testing.T) {
			r := z.Lookup(tc.qname, dns.TypeA)
			if r.Kind != PoolName {
				t.Fatalf("kind %v, want PoolName", r.Kind)
			}
			if want := slices.Index(names, tc.pool); r.Pool != want || r.PoolTTL != tc.ttl {
				t.Errorf("pool %d ttl %d, want %d (%s) ttl %d", r.Pool, r.PoolTTL, want, tc.pool, tc.ttl)
			}
		})
	}
	if set.Zone("example.test.") != nil {
		t.Errorf("Zone(example.test.) is not nil")
	}
	for _, rr := range z.Records() {
		t.Log(rr)
	}
}

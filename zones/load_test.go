package zones

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"

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
	if z.NS().Len() != 2 {
		t.Errorf("NS = %v", z.NS().RRs())
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
	if got := len(z.Records()); got != 16 {
		t.Errorf("%d records, want the file's 16", got)
	}
	for _, tc := range []struct {
		qname string
		qtype uint16
		kind  Kind
	}{
		{"static.gslb.example.test.", dns.TypeAAAA, Success},
		{"alias.gslb.example.test.", dns.TypeA, CNAME},
		{"x.wild.gslb.example.test.", dns.TypeTXT, Success},
		{"host.sub.gslb.example.test.", dns.TypeA, Delegation},
		{"nothere.gslb.example.test.", dns.TypeA, NXDomain},
	} {
		if r := z.Lookup(tc.qname, tc.qtype); r.Kind != tc.kind {
			t.Errorf("%s %s: %v, want %v", tc.qname, dns.Type(tc.qtype), r.Kind, tc.kind)
		}
	}
}

// configYAML serves two zones, one the child of the other, and two pools.
const configYAML = `node:
  name: n1
  dns: ["127.0.0.1:5354"]
sites:
  a: {location: [1, 2]}
pools:
  web:
    members:
      - {address: 192.0.2.1, site: a}
  api:
    members:
      - {address: 192.0.2.2, site: a}
zones:
  - file: zones/parent.zone
  - file: zones/child.zone
    origin: sub.example.test.
`

const parentZone = `$ORIGIN example.test.
$TTL 300
@    IN SOA ns1 hostmaster 1 3600 600 604800 60
@    IN NS  ns1
ns1  IN A   192.0.2.1
www  IN POOL web
sub  IN NS  ns.sub
ns.sub IN A 192.0.2.53
`

// childNoOrigin relies on the configuration's origin.
const childNoOrigin = `$TTL 60
@    IN SOA ns hostmaster 1 3600 600 604800 60
@    IN NS  ns
ns   IN A   192.0.2.53
www  IN POOL api
`

func loadFS(t *testing.T, files map[string]string) (*Set, config.Problems) {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, text := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	c, err := config.LoadFS(fsys, "etc/tern.yaml", "tern.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return Load(c)
}

func TestLoadSeveralZones(t *testing.T) {
	set, ps := loadFS(t, map[string]string{
		"etc/tern.yaml":         configYAML,
		"etc/zones/parent.zone": parentZone,
		"etc/zones/child.zone":  childNoOrigin,
	})
	if len(ps) > 0 {
		t.Fatalf("problems:\n%v", ps)
	}
	// PoolNames order: api, web.
	for _, tc := range []struct {
		qname  string
		origin string
		kind   Kind
		pool   int
	}{
		{"www.example.test.", "example.test.", PoolName, 1},
		{"www.sub.example.test.", "sub.example.test.", PoolName, 0},
		{"WWW.SUB.example.test", "sub.example.test.", PoolName, 0},
		{"ns.sub.example.test.", "sub.example.test.", Success, 0},
		{"sub.example.test.", "sub.example.test.", NoData, 0},
		{"other.example.test.", "example.test.", NXDomain, 0},
	} {
		t.Run(tc.qname, func(t *testing.T) {
			z, r := set.Lookup(tc.qname, dns.TypeA)
			if z == nil || z.Origin != tc.origin || r.Kind != tc.kind || (r.Kind == PoolName && r.Pool != tc.pool) {
				t.Errorf("got zone %s %v pool %d, want %s %v pool %d", origin(z), r.Kind, r.Pool, tc.origin, tc.kind, tc.pool)
			}
			if set.Zone(tc.qname) != z {
				t.Errorf("Zone and Lookup disagree")
			}
		})
	}
	if z := set.Zone("sub.example.test."); z.File != "zones/child.zone" {
		t.Errorf("child zone's File = %q", z.File)
	}
}

func TestLoadProblems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name: "missing zone file",
			files: map[string]string{
				"etc/tern.yaml":         configYAML,
				"etc/zones/parent.zone": parentZone,
			},
			want: []string{`tern.yaml:15: zone file "zones/child.zone": file does not exist`},
		},
		{
			name: "duplicate origin",
			files: map[string]string{
				"etc/tern.yaml":         strings.Replace(configYAML, "origin: sub.example.test.", "origin: example.test.", 1),
				"etc/zones/parent.zone": parentZone,
				"etc/zones/child.zone":  childNoOrigin,
			},
			want: []string{"tern.yaml:15: zone example.test. is listed twice: zones.0 (zones/parent.zone) already loads it"},
		},
		{
			name: "problems in both zones, all reported",
			files: map[string]string{
				"etc/tern.yaml":         configYAML,
				"etc/zones/parent.zone": parentZone + "shop IN POOL shop\n",
				"etc/zones/child.zone":  childNoOrigin + "www IN A 192.0.2.9\n",
			},
			want: []string{
				`zones/child.zone:6: www.sub.example.test. has a POOL record (at line 5) and A records: a POOL name answers A and AAAA from its pool; remove the A records or the POOL`,
				`zones/parent.zone:9: shop.example.test. POOL shop: pool "shop" is not in the configuration (its pools: api, web)`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, ps := loadFS(t, tc.files)
			if set != nil {
				t.Errorf("a Set despite problems")
			}
			var got []string
			for _, p := range ps {
				got = append(got, p.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestLoadIncludeFromDisk(t *testing.T) {
	c, err := config.Load("testdata/include/tern.yaml")
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	set, ps := Load(c)
	if len(ps) > 0 {
		t.Fatalf("problems:\n%v", ps)
	}
	z := set.Zone("example.test.")
	if r := z.Lookup("www.svc.example.test.", dns.TypeA); r.Kind != PoolName || r.PoolTTL != 30 {
		t.Errorf("www.svc: %v ttl %d, want PoolName ttl 30", r.Kind, r.PoolTTL)
	}
	if r := z.Lookup("static.svc.example.test.", dns.TypeA); r.Kind != Success || r.Answer.Len() != 1 {
		t.Errorf("static.svc: %v %v, want the A record", r.Kind, r.Answer.RRs())
	}
	// A problem in the innermost file names it as the operator would.
	c.Pools = nil
	if _, ps := Load(c); len(ps) != 1 || ps[0].File != "testdata/include/zones/inc/services.zone" || ps[0].Line != 2 {
		t.Errorf("problems %v, want one at testdata/include/zones/inc/services.zone:2", ps)
	}
}

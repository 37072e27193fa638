package selector

import (
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/geo"
)

var testLocator = newFakeLocator(map[netip.Prefix]fakeLoc{
	netip.MustParsePrefix("81.2.0.0/16"):    {"EU", "GB", 51.5, -0.1},
	netip.MustParsePrefix("89.160.0.0/16"):  {"EU", "SE", 58.4, 15.6},
	netip.MustParsePrefix("216.160.0.0/16"): {"NA", "US", 47.25, -122.31},
	netip.MustParsePrefix("175.16.0.0/16"):  {"AS", "CN", 43.88, 125.32},
	netip.MustParsePrefix("2001:218::/32"):  {"AS", "JP", 35.68, 139.75},
	netip.MustParsePrefix("41.0.0.0/8"):     {"AF", "ZA", -26.2, 28.0},
	netip.MustParsePrefix("80.0.0.0/16"):    {"EU", "DE", 52.5, 13.4},
})

const regions = `geo:
  maps:
    regions:
      "continent:EU": [eu-west, us-east]
      "continent:NA": [us-east, eu-west]
      "continent:AS": [ap-east, us-east]
      "country:GB": [eu-west]
      "127.0.9.0/24": [ap-east]
      default: [us-east, eu-west, ap-east]
`

const webPool = `  web:
    policy: geo
    map: regions
    answers: 2
    members:
      - {address: 192.0.2.10, site: eu-west, weight: 2}
      - {address: 192.0.2.11, site: eu-west, weight: 1}
      - {address: 192.0.2.20, site: us-east}
      - {address: 192.0.2.21, site: us-east}
      - {address: "2001:db8::20", site: us-east}
      - {address: 192.0.2.30, site: ap-east}
`

func sitesOf(a Answer) []string {
	var out []string
	for _, m := range a.Members {
		out = append(out, a.Pool.Members[m].Site)
	}
	return out
}

func TestGeoMap(t *testing.T) {
	pools, err := CompileLocated(configWith(t, webPool, regions), testLocator)
	if err != nil {
		t.Fatal(err)
	}
	web := pools[0]
	tests := []struct {
		name   string
		client string
		fam    Family
		down   []string
		sites  []string
		scope  int
	}{
		{"country beats continent", "81.2.69.142", IPv4, nil, []string{"eu-west", "eu-west"}, 16},
		{"continent", "89.160.20.112", IPv4, nil, []string{"eu-west", "eu-west"}, 16},
		{"continent, first site short: the first site alone (fill: first_tier)", "89.160.20.0/24", IPv4, []string{"192.0.2.10"}, []string{"eu-west"}, 16},
		{"NA", "216.160.83.56", IPv4, nil, []string{"us-east", "us-east"}, 16},
		{"CIDR beats the database", "127.0.9.5", IPv4, nil, []string{"ap-east"}, 24},
		{"unknown to the database: default", "198.51.100.1", IPv4, nil, []string{"us-east", "us-east"}, 16},
		{"continent with no key: default", "41.1.2.3", IPv4, nil, []string{"us-east", "us-east"}, 8},
		{"ECS source shorter than the network: scope capped", "80.0.0.0/12", IPv4, nil, []string{"eu-west", "eu-west"}, 12},
		{"ECS source 0: scope 0", "0.0.0.0/0", IPv4, nil, []string{"us-east", "us-east"}, 0},
		{"country's sites down: the continent's entry decides", "81.2.69.142", IPv4, []string{"192.0.2.10", "192.0.2.11"}, []string{"us-east", "us-east"}, 16},
		{"CIDR entry's sites down: the database and default decide", "127.0.9.5", IPv4, []string{"192.0.2.30"}, []string{"us-east", "us-east"}, 24},
		{"AAAA from an IPv6 client", "2001:218::1", IPv6, nil, []string{"us-east"}, 32},
	}
	s := NewScratch(8)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := withDown(web, tc.down...).Select(client(tc.client), tc.fam, s)
			if got := sitesOf(a); !slices.Equal(got, tc.sites) {
				t.Errorf("sites %v, want %v", got, tc.sites)
			}
			if a.Scope != tc.scope {
				t.Errorf("scope %d, want %d", a.Scope, tc.scope)
			}
		})
	}
}

func TestGeoMapWithoutDatabase(t *testing.T) {
	pools, err := Compile(configWith(t, webPool, regions))
	if err != nil {
		t.Fatal(err)
	}
	s := NewScratch(8)
	if a := pools[0].Select(client("127.0.9.0/24"), IPv4, s); !slices.Equal(sitesOf(a), []string{"ap-east"}) || a.Scope != 24 {
		t.Errorf("CIDR key without a database: %v scope %d", sitesOf(a), a.Scope)
	}
	// Default holds for every address outside the CIDR keys: the scope
	// only has to keep 127.0.9.0/24 apart.
	a := pools[0].Select(client("81.2.69.0/24"), IPv4, s)
	if !slices.Equal(sitesOf(a), []string{"us-east", "us-east"}) || a.Scope != 3 {
		t.Errorf("default without a database: %v scope %d, want us-east scope 3", sitesOf(a), a.Scope)
	}
}

func TestGeoNearest(t *testing.T) {
	pools, err := CompileLocated(configWith(t, `  near:
    chain: [healthy, geo, first]
    answers: 3
    fill: next_tier
    members:
      - {address: 192.0.2.10, site: eu-west}
      - {address: 192.0.2.20, site: us-east}
      - {address: 192.0.2.30, site: ap-east}
      - {address: 192.0.2.40, location: [-33.87, 151.21]}
      - {address: 192.0.2.41, site: eu-west, location: [59.33, 18.07]}
`, ""), testLocator)
	if err != nil {
		t.Fatal(err)
	}
	near := pools[0]
	tests := []struct {
		client string
		want   []string
		scope  int
	}{
		{"175.16.199.1", []string{"192.0.2.30", "192.0.2.41", "192.0.2.10"}, 16},  // Changchun: Tokyo, Stockholm, London
		{"81.2.69.142", []string{"192.0.2.10", "192.0.2.41", "192.0.2.20"}, 16},   // London: London, Stockholm, Washington
		{"89.160.20.112", []string{"192.0.2.41", "192.0.2.10", "192.0.2.20"}, 16}, // Linköping: Stockholm first
		{"216.160.83.56", []string{"192.0.2.20", "192.0.2.41", "192.0.2.30"}, 16}, // Seattle: Washington, Stockholm, Tokyo (over the pole)
		{"2001:218::/48", []string{"192.0.2.30", "192.0.2.40", "192.0.2.41"}, 32},
		{"198.51.100.1", []string{"192.0.2.10", "192.0.2.20", "192.0.2.30"}, 16}, // unknown: order kept
	}
	s := NewScratch(8)
	for _, tc := range tests {
		t.Run(tc.client, func(t *testing.T) {
			c := client(tc.client)
			for range 20 {
				a := near.Select(c, IPv4, s)
				if got := names(a); !slices.Equal(got, tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
				if a.Scope != tc.scope {
					t.Fatalf("scope %d, want %d", a.Scope, tc.scope)
				}
			}
		})
	}
}

func TestGeoMapNoEntryKeepsOrder(t *testing.T) {
	pools, err := Compile(configWith(t, `  p:
    chain: [healthy, geo, first]
    map: m
    members:
      - {address: 192.0.2.10, site: eu-west}
      - {address: 192.0.2.30, site: ap-east}
`, "geo:\n  maps:\n    m: {\"10.0.0.0/8\": [ap-east]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s := NewScratch(2)
	if a := pools[0].Select(client("10.1.2.3"), IPv4, s); !slices.Equal(names(a), []string{"192.0.2.30"}) || a.Scope != 8 {
		t.Errorf("CIDR entry: %v scope %d", names(a), a.Scope)
	}
	if a := pools[0].Select(client("192.0.2.1"), IPv4, s); !slices.Equal(names(a), []string{"192.0.2.10", "192.0.2.30"}) || a.Scope != 1 {
		t.Errorf("no entry, no default: %v scope %d, want every member in order, scope 1", names(a), a.Scope)
	}
	if a := withDown(pools[0], "192.0.2.30").Select(client("10.1.2.3"), IPv4, s); !slices.Equal(names(a), []string{"192.0.2.10"}) {
		t.Errorf("entry's site down: %v, want the other member", names(a))
	}
}

// TestReferenceConfigWithMaxMindDatabase compiles the reference
// configuration against MaxMind's own test database.
func TestReferenceConfigWithMaxMindDatabase(t *testing.T) {
	cfg, err := config.Load("../../shared/examples/tern.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := cfg.HostPath(cfg.Geo.Database)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("MaxMind test database not present: %v", err)
	}
	db, err := geo.Open(path, geo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pools, err := CompileLocated(cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	var web *Pool
	for _, p := range pools {
		if p.Name == "web" {
			web = p
		}
	}
	s := NewScratch(8)
	for _, tc := range []struct {
		client string
		sites  []string
	}{
		{"81.2.69.142", []string{"eu-west", "eu-west"}},   // country:GB
		{"89.160.20.112", []string{"eu-west", "eu-west"}}, // SE: continent:EU
		{"216.160.83.56", []string{"us-east", "us-east"}}, // continent:NA
		{"175.16.199.1", []string{"ap-east"}},             // continent:AS: ap-east alone (fill: first_tier)
		{"127.0.9.1", []string{"ap-east"}},                // CIDR key
	} {
		a := web.Select(client(tc.client), IPv4, s)
		if got := sitesOf(a); !slices.Equal(got, tc.sites) {
			t.Errorf("%s: sites %v, want %v", tc.client, got, tc.sites)
		}
		if a.Scope == 0 || a.Scope > 32 {
			t.Errorf("%s: scope %d", tc.client, a.Scope)
		}
	}
	c := client("81.2.69.142")
	if n := testing.AllocsPerRun(100, func() { web.Select(c, IPv4, s) }); n != 0 {
		t.Errorf("geo decision with the MaxMind database: %v allocations, want 0", n)
	}
}

// TestGeoFillNextTier: a geo decision whose first site has fewer members
// than answers answers from that site alone unless the pool says
// fill: next_tier, as gdnsd's metafo does.
func TestGeoFillNextTier(t *testing.T) {
	for _, tc := range []struct {
		fill   string
		client string
		down   []string
		sites  []string
	}{
		{"", "175.16.199.1", nil, []string{"ap-east"}},
		{"fill: first_tier", "175.16.199.1", nil, []string{"ap-east"}},
		{"fill: next_tier", "175.16.199.1", nil, []string{"ap-east", "us-east"}},
		{"", "89.160.20.112", []string{"192.0.2.11"}, []string{"eu-west"}},
		{"fill: next_tier", "89.160.20.112", []string{"192.0.2.11"}, []string{"eu-west", "us-east"}},
		{"fill: next_tier", "89.160.20.112", nil, []string{"eu-west", "eu-west"}}, // enough in the first tier
		{"", "89.160.20.112", []string{"192.0.2.10", "192.0.2.11"}, []string{"us-east", "us-east"}},
	} {
		t.Run(tc.fill+" "+tc.client, func(t *testing.T) {
			pools, err := CompileLocated(configWith(t, webPool+"    "+tc.fill+"\n", regions), testLocator)
			if err != nil {
				t.Fatal(err)
			}
			s := NewScratch(8)
			for range 20 {
				a := withDown(pools[0], tc.down...).Select(client(tc.client), IPv4, s)
				if got := sitesOf(a); !slices.Equal(got, tc.sites) {
					t.Fatalf("sites %v, want %v", got, tc.sites)
				}
			}
		})
	}
}

func TestCodeIndex(t *testing.T) {
	var c codeIndex
	for i, code := range []string{"GB", "AU", "US", "SE", "CN", "GB"} { // out of order, GB twice
		if !c.add(code, i) {
			t.Fatalf("add(%q) refused", code)
		}
	}
	for _, code := range []string{"", "G", "GBR"} {
		if c.add(code, 9) {
			t.Errorf("add(%q) took a code that is not two letters", code)
		}
	}
	tests := []struct {
		name, code string
		want       int
		ok         bool
	}{
		{"first", "AU", 1, true},
		{"middle", "SE", 3, true},
		{"last", "US", 2, true},
		{"added again: the last add wins", "GB", 5, true},
		{"absent between", "FR", 0, false},
		{"absent before", "AA", 0, false},
		{"absent after", "ZZ", 0, false},
		{"empty", "", 0, false},
		{"one letter", "G", 0, false},
		{"three letters starting with a known code", "GBR", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := c.find(tc.code); got != tc.want || ok != tc.ok {
				t.Errorf("find(%q) = %d, %v; want %d, %v", tc.code, got, ok, tc.want, tc.ok)
			}
		})
	}
	var empty codeIndex
	if _, ok := empty.find("GB"); ok {
		t.Error("an empty index found GB")
	}
}

// TestGeoPrecomputed checks that a chain starting healthy, geo, which
// answers from the lists precomputeGeo made, answers as the stage run
// per query does: for every combination of up, down and drained members,
// clients of every kind of map entry, both families, the same random
// draws.
func TestGeoPrecomputed(t *testing.T) {
	pools, err := CompileLocated(configWith(t, webPool, regions), testLocator)
	if err != nil {
		t.Fatal(err)
	}
	web := pools[0]
	if web.geoUp[0] == nil || web.geoUp[1] == nil {
		t.Fatal("a healthy, geo chain was not precomputed")
	}
	if got, want := len(web.geo.rank), 6; got != want {
		t.Fatalf("%d distinct site lists, want %d (one per map key here)", got, want)
	}
	clients := []string{"81.2.69.142", "89.160.20.0/24", "216.160.83.56", "127.0.9.5", "198.51.100.1",
		"41.1.2.3", "80.0.0.0/12", "0.0.0.0/0", "2001:218::1", "2001:db8::1/48", "175.16.1.1"}
	n := len(web.Members)
	checked := 0
	for mask := 0; mask < 1<<(2*n); mask++ {
		st := make([]Status, n)
		for i := range st {
			st[i] = Status{Up: mask>>i&1 == 1, Drain: mask>>(n+i)&1 == 1}
		}
		fast := web.WithStatus(st)
		slow := *fast
		slow.geoUp = [2][]geoPre{}
		for _, cs := range clients {
			for _, fam := range []Family{IPv4, IPv6} {
				sf, ss := NewScratch(8), NewScratch(8)
				sf.Seed(uint64(mask)*31 + 7)
				ss.Seed(uint64(mask)*31 + 7)
				for k := 0; k < 3; k++ {
					a, b := fast.Select(client(cs), fam, sf), slow.Select(client(cs), fam, ss)
					if !slices.Equal(a.Members, b.Members) || a.Scope != b.Scope || a.AllDown != b.AllDown {
						t.Fatalf("states %+v, client %s, family %v: precomputed %v scope %d all down %v, per query %v scope %d all down %v",
							st, cs, fam, names(a), a.Scope, a.AllDown, names(b), b.Scope, b.AllDown)
					}
					checked++
				}
			}
		}
	}
	t.Logf("%d decisions compared", checked)
}

// TestGeoPrecomputeBounded checks that a map whose precomputed lists
// would pass maxGeoPre is decided per query, and still by the map.
func TestGeoPrecomputeBounded(t *testing.T) {
	defer func(n int) { maxGeoPre = n }(maxGeoPre)
	maxGeoPre = 6*6 - 1 // six site lists of six members
	pools, err := CompileLocated(configWith(t, webPool, regions), testLocator)
	if err != nil {
		t.Fatal(err)
	}
	web := withDown(pools[0], "192.0.2.10", "192.0.2.11")
	if web.geoUp[0] != nil || web.geoUp[1] != nil {
		t.Fatalf("%d site lists of %d members were precomputed, above the bound %d", len(web.geo.rank), len(web.Members), maxGeoPre)
	}
	for _, tc := range []struct {
		client string
		sites  []string
	}{
		{"127.0.9.5", []string{"ap-east"}},
		{"81.2.69.142", []string{"us-east", "us-east"}}, // GB's eu-west is down: continent EU's list
	} {
		if got := sitesOf(web.Select(client(tc.client), IPv4, NewScratch(8))); !slices.Equal(got, tc.sites) {
			t.Errorf("client %s: sites %v, want %v", tc.client, got, tc.sites)
		}
	}
}

// TestGeoSharedLists: map entries listing the same sites share one rank
// table, and each still decides for its clients.
func TestGeoSharedLists(t *testing.T) {
	shared := `geo:
  maps:
    regions:
      "continent:EU": [eu-west, us-east]
      "country:GB": [eu-west, us-east]
      "127.0.9.0/24": [eu-west, us-east]
      default: [us-east]
`
	pools, err := CompileLocated(configWith(t, webPool, shared), testLocator)
	if err != nil {
		t.Fatal(err)
	}
	web := pools[0]
	if got := len(web.geo.rank); got != 2 {
		t.Fatalf("%d rank tables for 4 entries of 2 distinct site lists", got)
	}
	for _, tc := range []struct {
		client string
		sites  []string
	}{
		{"81.2.69.142", []string{"eu-west", "eu-west"}},
		{"127.0.9.5", []string{"eu-west", "eu-west"}},
		{"216.160.83.56", []string{"us-east", "us-east"}},
	} {
		if got := sitesOf(web.Select(client(tc.client), IPv4, NewScratch(8))); !slices.Equal(got, tc.sites) {
			t.Errorf("client %s: sites %v, want %v", tc.client, got, tc.sites)
		}
	}
}

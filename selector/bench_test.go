package selector

import (
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"testing"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/geo"
)

// benchPool compiles a 64-member pool of the given preset over three
// sites, some members down, and weights, priorities, loads that differ.
func benchPool(t testing.TB, preset string, loc Locator) *Pool {
	t.Helper()
	sites := []string{"eu-west", "us-east", "ap-east"}
	body := fmt.Sprintf("    policy: %s\n    answers: 2\n", preset)
	if preset == "failover" {
		body += "    min_healthy: 50%\n"
	}
	geoMap := ""
	if preset == "geo" {
		body += "    map: regions\n"
		geoMap = `geo:
  maps:
    regions:
      "continent:EU": [eu-west, us-east]
      "continent:NA": [us-east, eu-west]
      "country:GB": [eu-west]
      "192.0.2.0/24": [ap-east]
      default: [us-east, eu-west, ap-east]
`
	}
	body += members(64, func(i int) string {
		return fmt.Sprintf(", site: %s, weight: %d, priority: %d, capacity: %d", sites[i%3], i%5+1, i/16+1, i%4+1)
	})
	c := configWith(t, "  p:\n"+body, geoMap)
	pools, err := CompileLocated(c, loc)
	if err != nil {
		t.Fatal(err)
	}
	p := pools[0]
	st := make([]Status, len(p.Members))
	for i := range st {
		st[i] = Status{Up: i%7 != 3, Load: float64(i%11) / 10}
	}
	return p.WithStatus(st)
}

func BenchmarkSelect(b *testing.B) {
	loc := newFakeLocator(map[netip.Prefix]fakeLoc{netip.MustParsePrefix("81.2.0.0/16"): {"EU", "GB", 51.5, -0.1}})
	for _, preset := range []string{"roundrobin", "weighted", "geo", "failover", "load", "sticky"} {
		b.Run(preset, func(b *testing.B) {
			p := benchPool(b, preset, loc)
			s := NewScratch(len(p.Members))
			c := client("81.2.69.0/24")
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			start := threadCPU()
			for b.Loop() {
				p.Select(c, IPv4, s)
			}
			if cpu := threadCPU() - start; cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// BenchmarkSelectGeoMaxMind is the geo preset of the reference
// configuration with MaxMind's test database behind it: the full cost of
// a geo decision, database lookup included.
func BenchmarkSelectGeoMaxMind(b *testing.B) {
	cfg, err := config.Load("../../shared/examples/tern.yaml")
	if err != nil {
		b.Fatal(err)
	}
	db, err := geo.Open(cfg.HostPath(cfg.Geo.Database), geo.Options{})
	if err != nil {
		b.Skipf("MaxMind test database: %v", err)
	}
	pools, err := CompileLocated(cfg, db)
	if err != nil {
		b.Fatal(err)
	}
	web := pools[slices.IndexFunc(pools, func(p *Pool) bool { return p.Name == "web" })]
	s := NewScratch(8)
	clients := []*Client{client("81.2.69.0/24"), client("216.160.83.0/24"), client("2001:218::/56"), client("175.16.199.0/24")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		web.Select(clients[i&3], IPv4, s)
		i++
	}
}

// BenchmarkSelectSteer: the latency preset over 64 members with RTTs from
// three vantage nodes (the client's nearest chosen per decision), and a
// geo pool whose first site is over capacity (the spill stage hashing
// each client subnet), clients varying.
func BenchmarkSelectSteer(b *testing.B) {
	loc := newFakeLocator(map[netip.Prefix]fakeLoc{
		netip.MustParsePrefix("81.2.0.0/16"):    {"EU", "GB", 51.5, -0.1},
		netip.MustParsePrefix("216.160.0.0/16"): {"NA", "US", 47.25, -122.31},
	})
	sites := []string{"eu-west", "us-east", "ap-east"}
	clients := []*Client{client("81.2.69.0/24"), client("216.160.83.0/24"), client("81.2.70.0/24"), client("198.51.100.0/24")}
	run := func(b *testing.B, p *Pool) {
		s := NewScratch(len(p.Members))
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p.Select(clients[i&3], IPv4, s)
			i++
		}
	}
	b.Run("latency", func(b *testing.B) {
		body := "    policy: latency\n    check: tcp\n    answers: 2\n    tolerance: 2ms\n" + members(64, func(i int) string {
			return fmt.Sprintf(", site: %s, weight: %d", sites[i%3], i%5+1)
		})
		pools, err := CompileLocated(configWith(b, "  p:\n"+body, steerNodes), loc)
		if err != nil {
			b.Fatal(err)
		}
		p := pools[0]
		st := make([]Status, len(p.Members))
		for i := range st {
			st[i] = Status{Up: i%7 != 3, RTT: []RTT{{"n1", float64(i%13+1) / 1000}, {"n2", float64(i%17+1) / 1000}, {"n3", float64(i%5+1) / 1000}}}
		}
		run(b, p.WithStatus(st))
	})
	b.Run("spill", func(b *testing.B) {
		body := "    chain: [healthy, geo, spill, weighted, first]\n    map: m\n    answers: 2\n" + members(64, func(i int) string {
			return fmt.Sprintf(", site: %s, weight: %d", sites[i%3], i%5+1)
		})
		c := configWith(b, "  p:\n"+body, "geo:\n  maps:\n    m: {default: [eu-west, us-east, ap-east]}\n")
		for _, site := range sites {
			c.Sites[site] = withCap(c.Sites[site], 100)
		}
		pools, err := CompileLocated(c, loc)
		if err != nil {
			b.Fatal(err)
		}
		p := pools[0]
		st := make([]Status, len(p.Members))
		for i := range st {
			st[i] = Status{Up: i%7 != 3, Load: []float64{6, 2, 1}[i%3]} // eu-west ~130 of 100
		}
		run(b, p.WithStatus(st))
	})
}

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

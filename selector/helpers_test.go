package selector

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/geo"
)

// configWith returns a validated configuration holding the given pools
// (YAML under pools:, indented two spaces) and optional geo maps.
func configWith(t testing.TB, pools, geo string) *config.Config {
	t.Helper()
	// A database path satisfies validation; tests locate with a Locator
	// of their own.
	if geo == "" {
		geo = "geo:\n"
	}
	geo = strings.Replace(geo, "geo:\n", "geo:\n  database: test.mmdb\n", 1)
	y := `node: {name: n1, dns: ["127.0.0.1:5354"]}
sites:
  eu-west: {location: [51.51, -0.09]}
  us-east: {location: [38.90, -77.03]}
  ap-east: {location: [35.68, 139.75]}
` + geo + "pools:\n" + pools + "zones: [{file: z.zone}]\n"
	c, ps := config.Parse("t.yaml", []byte(y))
	if len(ps) > 0 {
		t.Fatalf("configuration rejected:\n%v\n%s", ps, y)
	}
	return c
}

// compileOne compiles a configuration holding one pool "p" with the given
// YAML body (indented four spaces) and returns it.
func compileOne(t testing.TB, body string, loc Locator) *Pool {
	t.Helper()
	c := configWith(t, "  p:\n"+body, "")
	pools, err := CompileLocated(c, loc)
	if err != nil {
		t.Fatal(err)
	}
	return pools[0]
}

// members writes n v4 members 192.0.2.1... with extra YAML per member.
func members(n int, extra func(i int) string) string {
	var b strings.Builder
	b.WriteString("    members:\n")
	for i := range n {
		e := ""
		if extra != nil {
			e = extra(i)
		}
		fmt.Fprintf(&b, "      - {address: 10.0.%d.%d%s}\n", i/250, i%250+1, e)
	}
	return b.String()
}

func client(s string) *Client {
	c, err := ParseClient(s)
	if err != nil {
		panic(err)
	}
	return &c
}

// names returns the answer's members by name.
func names(a Answer) []string {
	out := make([]string, len(a.Members))
	for i, m := range a.Members {
		out[i] = a.Pool.Members[m].Name()
	}
	return out
}

// statusWith returns p's statuses with members named in down down.
func withDown(p *Pool, down ...string) *Pool {
	st := make([]Status, len(p.Members))
	for i, m := range p.Members {
		st[i] = Status{Up: true}
		for _, d := range down {
			if m.Name() == d {
				st[i].Up = false
			}
		}
	}
	return p.WithStatus(st)
}

// fakeLocator answers from a table of prefixes, like a database whose
// networks are exactly those prefixes.
type fakeLocator struct{ t geo.Table[geo.Location] }

type fakeLoc struct {
	continent, country string
	lat, lon           float64
}

func newFakeLocator(m map[netip.Prefix]fakeLoc) *fakeLocator {
	f := &fakeLocator{}
	for p, v := range m {
		f.t.Insert(p, geo.Location{Continent: v.continent, Country: v.country, Lat: v.lat, Lon: v.lon, HasCoords: true, Found: true, Bits: p.Bits()})
	}
	return f
}

func (f *fakeLocator) Locate(a netip.Addr) geo.Location {
	l, _, ok := f.t.Lookup(a)
	if !ok {
		return geo.Location{Bits: a.BitLen() / 2}
	}
	return l
}

// tablePools lists a Table's pools as a slice.
func tablePools(t Table) []*Pool {
	out := make([]*Pool, 0, t.Len())
	for _, p := range t.All() {
		out = append(out, p)
	}
	return out
}

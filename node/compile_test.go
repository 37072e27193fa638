package node

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dnsserver"
	"github.com/ternlb/tern/raftstore"
	"github.com/ternlb/tern/zones"
)

// cacheFiles is a configuration of pools (in the order given) and three
// zones: big.zone (a POOL record), small.zone (which $INCLUDEs inc.zone)
// and other.zone.
func cacheFiles(pools []string, small, inc string) raftstore.Bundle {
	var y strings.Builder
	y.WriteString("pools:\n")
	for i, p := range pools {
		fmt.Fprintf(&y, "  %s: {members: [{address: 192.0.2.%d}]}\n", p, i+1)
	}
	y.WriteString("zones:\n  - file: zones/big.zone\n  - file: zones/small.zone\n  - file: zones/other.zone\n")
	soa := "@ 300 IN SOA ns1 hostmaster 1 3600 600 604800 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.53\n"
	return raftstore.Bundle{Main: "tern.yaml", Files: map[string][]byte{
		"tern.yaml":        []byte(y.String()),
		"zones/big.zone":   []byte("$ORIGIN big.test.\n" + soa + "www 30 IN POOL web\n"),
		"zones/small.zone": []byte("$ORIGIN small.test.\n" + soa + small + "$INCLUDE inc.zone\n"),
		"zones/inc.zone":   []byte(inc),
		"zones/other.zone": []byte("$ORIGIN other.test.\n" + soa),
	}}
}

func loadBundle(t *testing.T, b raftstore.Bundle) *config.Config {
	t.Helper()
	c, err := b.Load(b.Main)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The zone cache takes a zone whose files and origin are unchanged from
// the last compiles instead of parsing it again; a zone whose file or
// $INCLUDE changed is parsed again. A change of the pools parses no zone:
// a zone whose pools' indexes moved is taken with its POOL records
// resolved anew (a copy, sharing its records), the others as they were;
// a zone naming a pool that is gone is parsed, for the problem. What it
// returns is what zones.Load returns, problems included.
func TestZoneCache(t *testing.T) {
	c := newZoneCache()
	load := func(b raftstore.Bundle) *zones.Set {
		t.Helper()
		cfg := loadBundle(t, b)
		set, _, ps := c.load(cfg)
		if len(ps) > 0 {
			t.Fatal(ps)
		}
		fresh, ps := zones.Load(cfg)
		if len(ps) > 0 {
			t.Fatal(ps)
		}
		for _, z := range fresh.Zones() {
			if got := set.Zone(z.Origin); got == nil || fmt.Sprint(got.Records()) != fmt.Sprint(z.Records()) {
				t.Fatalf("zone %s from the cache is not what parsing it makes", z.Origin)
			}
		}
		return set
	}
	pools := []string{"api", "web"}
	s1 := load(cacheFiles(pools, "a 300 IN A 192.0.2.1\n", "i 300 IN A 192.0.2.9\n"))
	for _, tc := range []struct {
		name          string
		b             raftstore.Bundle
		parsed        int      // zones parsed again
		replaced      []string // zones not taken as they were (parsed, or repooled)
		repooled      int
		poolIndexOfWW int
	}{
		{"nothing changed", cacheFiles(pools, "a 300 IN A 192.0.2.1\n", "i 300 IN A 192.0.2.9\n"), 0, nil, 0, 1},
		{"one zone file edited", cacheFiles(pools, "a 300 IN A 192.0.2.2\n", "i 300 IN A 192.0.2.9\n"), 1, []string{"small.test."}, 0, 1},
		{"an included file edited", cacheFiles(pools, "a 300 IN A 192.0.2.2\n", "i 300 IN A 192.0.2.8\n"), 1, []string{"small.test."}, 0, 1},
		{"a pool added after web: nothing moves", cacheFiles([]string{"api", "web", "zed"}, "a 300 IN A 192.0.2.2\n", "i 300 IN A 192.0.2.8\n"), 0, nil, 0, 1},
		{"a pool before web: its index moves, no parse", cacheFiles([]string{"aaa", "api", "web", "zed"}, "a 300 IN A 192.0.2.2\n", "i 300 IN A 192.0.2.8\n"), 0, []string{"big.test."}, 1, 2},
		{"back to the pools before", cacheFiles([]string{"aaa", "api", "web", "zed"}, "a 300 IN A 192.0.2.2\n", "i 300 IN A 192.0.2.8\n"), 0, nil, 0, 2},
		{"a pool no zone names removed", cacheFiles([]string{"api", "web", "zed"}, "a 300 IN A 192.0.2.2\n", "i 300 IN A 192.0.2.8\n"), 0, []string{"big.test."}, 1, 1},
		{"a pool edit and a zone edit at once", cacheFiles([]string{"api", "b", "web"}, "a 300 IN A 192.0.2.3\n", "i 300 IN A 192.0.2.8\n"), 1, []string{"big.test.", "small.test."}, 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parsed, repooled := c.parsed.Load(), c.repooled.Load()
			s2 := load(tc.b)
			for _, origin := range []string{"big.test.", "small.test.", "other.test."} {
				again := s2.Zone(origin) != s1.Zone(origin)
				if want := slices.Contains(tc.replaced, origin); again != want {
					t.Errorf("zone %s replaced: %v, want %v", origin, again, want)
				}
			}
			if n := c.parsed.Load() - parsed; n != int64(tc.parsed) {
				t.Errorf("%d zones parsed, want %d", n, tc.parsed)
			}
			if n := c.repooled.Load() - repooled; n != int64(tc.repooled) {
				t.Errorf("%d zones repooled, want %d", n, tc.repooled)
			}
			if _, res := s2.Lookup("www.big.test.", dns.TypeA); res.Kind != zones.PoolName || res.Pool != tc.poolIndexOfWW {
				t.Fatalf("www.big.test.: %+v, want pool index %d", res, tc.poolIndexOfWW)
			}
			s1 = s2
		})
	}

	// The pool a zone names is gone: the zone is parsed, and the problem
	// is zones.Load's.
	gone := cacheFiles([]string{"api", "zed"}, "a 300 IN A 192.0.2.3\n", "i 300 IN A 192.0.2.8\n")
	parsed := c.parsed.Load()
	cfg := loadBundle(t, gone)
	_, _, ps := c.load(cfg)
	if _, want := zones.Load(cfg); len(ps) == 0 || !reflect.DeepEqual(ps, want) {
		t.Fatalf("a zone naming a removed pool: problems %v, want zones.Load's %v", ps, want)
	}
	if c.parsed.Load() == parsed {
		t.Fatal("the zone naming a removed pool was not parsed again")
	}

	// A zone with a problem: zones.Load's very problems, and the zones
	// that did parse before it are kept for the fix.
	c = newZoneCache()
	bad := cacheFiles(pools, "a 300 IN A 192.0.2.1\nb 300 IN POOL nosuch\n", "")
	cfg = loadBundle(t, bad)
	_, _, ps = c.load(cfg)
	_, want := zones.Load(cfg)
	if len(ps) == 0 || !reflect.DeepEqual(ps, want) {
		t.Fatalf("problems %v, want zones.Load's %v", ps, want)
	}
	kept := c.failed[zoneKey{file: "zones/big.zone", display: "zones/big.zone"}]
	if len(kept) != 1 {
		t.Fatalf("the zone parsed before the bad one is not kept: %v", c.cur)
	}
	fixed := load(cacheFiles(pools, "a 300 IN A 192.0.2.1\n", ""))
	if fixed.Zone("big.test.") != kept[0].zone {
		t.Fatal("the fixed configuration parsed the good zone again")
	}
}

// A zone's stamp comes from the content hashes of its files and the
// members of the pools it names, never from its records: a pool-only edit
// parses no zone and hashes no record, and changes the stamp of just the
// zone naming the pool; a one-zone edit parses that zone alone.
func TestZoneCacheStamps(t *testing.T) {
	c := newZoneCache()
	b := cacheFiles([]string{"api", "web"}, "a 300 IN A 192.0.2.1\n", "i 300 IN A 192.0.2.9\n")
	snapOf := func(b raftstore.Bundle) (*config.Config, *dnsserver.Snapshot) {
		cfg := loadBundle(t, b)
		snap, ps := compileWith(cfg, nil, c)
		if len(ps) > 0 {
			t.Fatal(ps)
		}
		return cfg, snap
	}
	counts := func() [2]int64 { return [2]int64{c.parsed.Load(), c.walked.Load()} }
	cfg, snap := snapOf(b)
	first := c.stamps(cfg, snap)
	want := zoneStamps(snap)
	if len(first) != 3 || len(want) != 3 {
		t.Fatalf("stamps %v, want three", first)
	}
	for z, st := range want {
		if first[z].Serial != st.Serial {
			t.Fatalf("%s: serial %d, want the file's %d", z, first[z].Serial, st.Serial)
		}
	}
	if got := counts(); got != [2]int64{3, 0} {
		t.Fatalf("parsed %d zones and walked %d, want 3 and 0", got[0], got[1])
	}
	if again := c.stamps(cfg, snap); !reflect.DeepEqual(again, first) {
		t.Fatalf("stamps again %v, want %v", again, first)
	}

	// Another member of web: the big zone's transferred content changes,
	// though the zone file did not.
	b.Files["tern.yaml"] = []byte(strings.Replace(string(b.Files["tern.yaml"]), "192.0.2.2", "192.0.2.77", 1))
	cfg2, snap2 := snapOf(b)
	if snap2.Zones.Zone("big.test.") != snap.Zones.Zone("big.test.") {
		t.Fatal("the big zone was parsed again for a member's address")
	}
	got := c.stamps(cfg2, snap2)
	if got["big.test."] == first["big.test."] || got["other.test."] != first["other.test."] || got["small.test."] != first["small.test."] {
		t.Fatal("the big zone's stamp did not follow its pool's members, or another zone's did")
	}
	if n := counts(); n != [2]int64{3, 0} {
		t.Fatalf("a pool-only edit parsed %d zones and walked %d, want none", n[0]-3, n[1])
	}

	// An edit of the small zone's $INCLUDE: that zone alone is parsed,
	// and its stamp alone changes.
	b.Files["zones/inc.zone"] = []byte("i 300 IN A 192.0.2.10\n")
	cfg3, snap3 := snapOf(b)
	third := c.stamps(cfg3, snap3)
	if third["small.test."] == got["small.test."] || third["big.test."] != got["big.test."] || third["other.test."] != got["other.test."] {
		t.Fatal("the small zone's stamp did not follow its $INCLUDE, or another zone's moved")
	}
	if n := counts(); n != [2]int64{4, 0} {
		t.Fatalf("a one-zone edit parsed %d zones and walked %d, want 1 and 0", n[0]-3, n[1])
	}
}

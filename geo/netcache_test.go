package geo

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
)

// cityTestDB is MaxMind's City test database as the repository holds it.
const cityTestDB = "../testdata/geoip/GeoIP2-City-Test.mmdb"

// uncached is Locate without the network cache: the tree walk alone.
func uncached(d *DB, a netip.Addr) Location {
	a = a.Unmap()
	c, bits, _ := d.cur.Load().lookup(a)
	return c.in(bits)
}

// probeAddrs are addresses in and around the test database's networks:
// every address of 81.2.69.0/24 (networks of /31 to /27 in one /24, and
// the empty ones between), 2.2.3.0/24 (one network), IPv6 networks and
// random addresses of both families.
func probeAddrs(rng *rand.Rand) []netip.Addr {
	var out []netip.Addr
	for i := range 256 {
		out = append(out, netip.AddrFrom4([4]byte{81, 2, 69, byte(i)}), netip.AddrFrom4([4]byte{2, 2, 3, byte(i)}))
	}
	for _, s := range []string{"2001:218::1", "2001:218:ffff::1", "2a02:cfc0::1", "2a02:cfc0:1::", "::ffff:81.2.69.142", "::1", "::"} {
		out = append(out, netip.MustParseAddr(s))
	}
	for range 2000 {
		var b [16]byte
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		out = append(out, netip.AddrFrom4([4]byte(b[:4])), netip.AddrFrom16(b))
	}
	return out
}

// TestNetworkCacheAgreesWithTheTree: whatever order addresses come in,
// and so whatever the slots hold, Locate answers what the tree walk does.
func TestNetworkCacheAgreesWithTheTree(t *testing.T) {
	for _, tc := range []struct {
		name string
		path func(t *testing.T) string
	}{
		{"maxmind-city-test", func(*testing.T) string { return cityTestDB }},
		{"written", func(t *testing.T) string {
			p := t.TempDir() + "/city.mmdb"
			writeDB(t, p, "GeoIP2-City", testPlaces...)
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Open(tc.path(t), Options{})
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			addrs := probeAddrs(rng)
			for pass := range 3 {
				for _, a := range addrs {
					if got, want := d.Locate(a), uncached(d, a); got != want {
						t.Fatalf("pass %d: Locate(%s) = %+v, the tree says %+v", pass, a, got, want)
					}
				}
				rng.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
			}
			if got := d.Locate(netip.Addr{}); got != (Location{}) {
				t.Errorf("Locate of the zero Addr: %+v", got)
			}
		})
	}
}

// TestNetworkCacheConcurrent: workers that share slots (neighbouring
// networks of one /24) never see another network's answer. Run with
// -race it also checks that the slots are read and written atomically.
func TestNetworkCacheConcurrent(t *testing.T) {
	d, err := Open(cityTestDB, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var addrs []netip.Addr
	var want []Location
	for _, s := range []string{"81.2.69.142", "81.2.69.150", "81.2.69.170", "81.2.69.200", "81.2.69.1", "2.2.3.9"} {
		a := netip.MustParseAddr(s)
		addrs, want = append(addrs, a), append(want, uncached(d, a))
	}
	if want[0] == want[4] {
		t.Fatalf("81.2.69.142 and 81.2.69.1 locate alike (%+v): the test needs different networks in one /24", want[0])
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := range 20000 {
				j := (i*7 + g) % len(addrs)
				if got := d.Locate(addrs[j]); got != want[j] {
					select {
					case errs <- addrs[j].String():
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for a := range errs {
		t.Errorf("a worker got a wrong Location for %s", a)
	}
}

package geo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
	"github.com/ternlb/tern/internal/eventually"
)

// place is one network of a test database.
type place struct {
	cidr               string
	continent, country string
	lat, lon           float64 // NaN: no location
}

// writeDB writes a MaxMind database of type typ holding places to path.
func writeDB(t testing.TB, path, typ string, places ...place) {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: typ, RecordSize: 28, IncludeReservedNetworks: true,
		Description: map[string]string{"en": "Tern test database"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range places {
		_, n, err := net.ParseCIDR(p.cidr)
		if err != nil {
			t.Fatal(err)
		}
		rec := mmdbtype.Map{
			"continent": mmdbtype.Map{"code": mmdbtype.String(p.continent), "names": mmdbtype.Map{"en": mmdbtype.String("somewhere")}},
			"country":   mmdbtype.Map{"iso_code": mmdbtype.String(p.country)},
		}
		if !math.IsNaN(p.lat) {
			rec["location"] = mmdbtype.Map{"latitude": mmdbtype.Float64(p.lat), "longitude": mmdbtype.Float64(p.lon)}
		}
		if err := tree.Insert(n, rec); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	// Write beside and rename, as an operator's updater should: Reload
	// never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

var testPlaces = []place{
	{"81.2.0.0/16", "EU", "GB", 51.5, -0.1},
	{"81.2.69.0/24", "EU", "GB", 51.51, -0.09},
	{"216.160.0.0/16", "NA", "US", 47.25, -122.31},
	{"2001:218::/32", "AS", "JP", 35.68, 139.75},
	{"89.160.0.0/16", "EU", "SE", math.NaN(), 0},
}

func TestLocate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	writeDB(t, path, "GeoIP2-City", testPlaces...)
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr string
		want Location
	}{
		{"81.2.69.142", Location{"EU", "GB", 51.51, -0.09, true, true, 24}},
		{"81.2.70.1", Location{"EU", "GB", 51.5, -0.1, true, true, 0}}, // Bits checked below
		{"::ffff:216.160.83.56", Location{"NA", "US", 47.25, -122.31, true, true, 16}},
		{"2001:218::1", Location{"AS", "JP", 35.68, 139.75, true, true, 32}},
		{"89.160.20.112", Location{Continent: "EU", Country: "SE", Found: true, Bits: 16}},
		{"192.0.2.1", Location{}},
		{"2001:db8::1", Location{}},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			got := d.Locate(netip.MustParseAddr(tc.addr))
			want := tc.want
			if tc.want.Bits == 0 {
				// 81.2.0.0/16 minus 81.2.69.0/24 is stored as several
				// networks; a not-found address lies in some empty network.
				if got.Bits < 1 || got.Bits > netip.MustParseAddr(tc.addr).Unmap().BitLen() {
					t.Errorf("Bits %d out of range", got.Bits)
				}
				want.Bits = got.Bits
			}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
			// The second lookup is served from the record cache.
			if again := d.Locate(netip.MustParseAddr(tc.addr)); again != got {
				t.Errorf("cached lookup %+v differs from %+v", again, got)
			}
		})
	}
	if got := d.Locate(netip.MustParseAddr("81.2.70.1")).Bits; got < 17 || got > 24 {
		t.Errorf("81.2.70.1 lies in a network of /%d, want /17 to /24 (the /16 around the /24)", got)
	}
}

func TestLocateAllocatesNothingOnceCached(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	writeDB(t, path, "GeoIP2-City", testPlaces...)
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"81.2.69.142", "2001:218::1", "192.0.2.1"} {
		a := netip.MustParseAddr(s)
		d.Locate(a)
		if n := testing.AllocsPerRun(100, func() { d.Locate(a) }); n != 0 {
			t.Errorf("Locate(%s): %v allocations, want 0", s, n)
		}
	}
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	asn := filepath.Join(dir, "asn.mmdb")
	writeDB(t, asn, "GeoLite2-ASN", place{cidr: "192.0.2.0/24"})
	garbage := filepath.Join(dir, "garbage.mmdb")
	os.WriteFile(garbage, []byte("this is not a MaxMind database"), 0o644)
	good := filepath.Join(dir, "good.mmdb")
	writeDB(t, good, "GeoIP2-City", testPlaces...)
	b, _ := os.ReadFile(good)
	truncated := filepath.Join(dir, "truncated.mmdb")
	os.WriteFile(truncated, append(b[:len(b)/3:len(b)/3], b[len(b)-200:]...), 0o644)
	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.mmdb"), "no such file"},
		{"ASN database", asn, "is a GeoLite2-ASN database"},
		{"not a database", garbage, "garbage.mmdb"},
		{"truncated", truncated, "truncated.mmdb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.path, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if _, err := Open(asn, Options{}); !errors.Is(err, ErrNotLocationDB) {
		t.Errorf("ASN database: %v is not ErrNotLocationDB", err)
	}
}

// bump moves a file's modification time forward, so a rewrite within the
// file system's timestamp granularity is still seen as a change.
func bump(t *testing.T, path string, by time.Duration) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime().Add(by), fi.ModTime().Add(by)); err != nil {
		t.Fatal(err)
	}
}

func TestReloadSwapsAndKeepsOldOnCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	writeDB(t, path, "GeoIP2-City", place{"192.0.2.0/24", "EU", "FR", 46, 2})
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("192.0.2.1")
	if got := d.Locate(a).Country; got != "FR" {
		t.Fatalf("country %q, want FR", got)
	}
	if swapped, err := d.Reload(); swapped || err != nil {
		t.Fatalf("Reload of an unchanged file: swapped %v err %v", swapped, err)
	}

	writeDB(t, path, "GeoIP2-City", place{"192.0.2.0/24", "AS", "JP", 35.68, 139.75})
	bump(t, path, time.Second)
	if swapped, err := d.Reload(); !swapped || err != nil {
		t.Fatalf("Reload of a new file: swapped %v err %v", swapped, err)
	}
	if got := d.Locate(a).Country; got != "JP" {
		t.Fatalf("after reload country %q, want JP", got)
	}

	os.WriteFile(path, []byte("corrupt"), 0o644)
	bump(t, path, 2*time.Second)
	swapped, err := d.Reload()
	if swapped || err == nil {
		t.Fatalf("Reload of a corrupt file: swapped %v err %v", swapped, err)
	}
	if got := d.Locate(a).Country; got != "JP" {
		t.Errorf("after a corrupt file country %q, want the old JP", got)
	}
	if d.Info().Err == nil {
		t.Error("Info does not report the failed reload")
	}

	writeDB(t, path, "GeoIP2-City", place{"192.0.2.0/24", "NA", "US", 38.9, -77})
	bump(t, path, 3*time.Second)
	if swapped, err := d.Reload(); !swapped || err != nil {
		t.Fatalf("Reload after repair: swapped %v err %v", swapped, err)
	}
	if got := d.Locate(a).Country; got != "US" || d.Info().Err != nil {
		t.Errorf("after repair country %q err %v", got, d.Info().Err)
	}
}

// syncBuffer is a log sink safe for the Run goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunReloadsWhileLookupsGoOn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "city.mmdb")
	writeDB(t, path, "GeoIP2-City", place{"192.0.2.0/24", "EU", "FR", 46, 2})
	var logs syncBuffer
	d, err := Open(path, Options{Interval: 5 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- d.Run(ctx) }()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // lookups racing the swaps (run with -race)
		defer wg.Done()
		a := netip.MustParseAddr("192.0.2.1")
		for {
			select {
			case <-stop:
				return
			default:
				if c := d.Locate(a).Country; c != "FR" && c != "JP" {
					t.Errorf("country %q mid-reload", c)
					return
				}
			}
		}
	}()

	waitFor := func(what string, ok func() bool) {
		t.Helper()
		eventually.NoError(t, 5*time.Second, func() error {
			if ok() {
				return nil
			}
			return fmt.Errorf("logs:\n%s", logs.String())
		}, what)
	}
	os.WriteFile(path, []byte("corrupt"), 0o644)
	bump(t, path, time.Second)
	waitFor("the corrupt file to be reported", func() bool { return strings.Contains(logs.String(), "reload failed") })
	writeDB(t, path, "GeoIP2-City", place{"192.0.2.0/24", "AS", "JP", 35.68, 139.75})
	bump(t, path, 2*time.Second)
	waitFor("the new file to be served", func() bool { return d.Locate(netip.MustParseAddr("192.0.2.1")).Country == "JP" })
	close(stop)
	wg.Wait()
	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run returned %v", err)
	}
	if n := strings.Count(logs.String(), "reload failed"); n != 1 {
		t.Errorf("the corrupt version was reported %d times, want once", n)
	}
}

// MaxMind's own test databases, to prove Tern reads files written by
// MaxMind's tooling and not only by mmdbwriter.
const maxmindTestData = "../../shared/testdata/geoip/"

func TestMaxMindTestDatabases(t *testing.T) {
	if _, err := os.Stat(maxmindTestData + "GeoIP2-City-Test.mmdb"); err != nil {
		t.Skipf("MaxMind test databases not present: %v", err)
	}
	city, err := Open(maxmindTestData+"GeoIP2-City-Test.mmdb", Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		addr, continent, country string
		lat, lon                 float64
	}{
		{"81.2.69.142", "EU", "GB", 51.5142, -0.0931},
		{"216.160.83.56", "NA", "US", 47.2513, -122.3149},
		{"2001:218::1", "AS", "JP", 35.68536, 139.75309},
		{"2a02:cfc0::1", "EU", "FR", 46, 2},
		{"175.16.199.1", "AS", "CN", 43.88, 125.3228},
	}
	for _, tc := range tests {
		l := city.Locate(netip.MustParseAddr(tc.addr))
		if !l.Found || l.Continent != tc.continent || l.Country != tc.country || !l.HasCoords ||
			math.Abs(l.Lat-tc.lat) > 1e-3 || math.Abs(l.Lon-tc.lon) > 1e-3 || l.Bits < 8 {
			t.Errorf("%s: got %+v, want %s %s [%g, %g]", tc.addr, l, tc.continent, tc.country, tc.lat, tc.lon)
		}
	}
	if info := city.Info(); info.Type != "GeoIP2-City" {
		t.Errorf("type %q", info.Type)
	}
	country, err := Open(maxmindTestData+"GeoLite2-Country-Test.mmdb", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if l := country.Locate(netip.MustParseAddr("81.2.69.142")); l.Country != "GB" || l.Continent != "EU" || l.HasCoords {
		t.Errorf("Country database: %+v, want GB EU without coordinates", l)
	}
	for _, bad := range []string{"GeoLite2-ASN-Test.mmdb", "GeoIP2-City-Test-Broken-Double-Format.mmdb", "GeoIP2-City-Test-Invalid-Node-Count.mmdb"} {
		if _, err := Open(maxmindTestData+bad, Options{}); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}

func FuzzLoadBytes(f *testing.F) {
	path := filepath.Join(f.TempDir(), "seed.mmdb")
	writeDB(f, path, "GeoIP2-City", testPlaces...)
	b, _ := os.ReadFile(path)
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte("\xab\xcd\xefMaxMind.com"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := loadBytes(data, "fuzz")
		if err != nil {
			return
		}
		d := &DB{path: "fuzz"}
		d.cur.Store(st)
		for _, a := range []string{"81.2.69.142", "::1", "2001:218::1", "0.0.0.0"} {
			d.Locate(netip.MustParseAddr(a))
		}
	})
}

func BenchmarkLocate(b *testing.B) {
	path := filepath.Join(b.TempDir(), "city.mmdb")
	writeDB(b, path, "GeoIP2-City", testPlaces...)
	d, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	addrs := []netip.Addr{netip.MustParseAddr("81.2.69.142"), netip.MustParseAddr("2001:218::1"), netip.MustParseAddr("192.0.2.1")}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Locate(addrs[i%3])
		i++
	}
}

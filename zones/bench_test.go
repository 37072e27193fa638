package zones

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/config"
)

var benchQueries = []struct {
	name  string
	qname string
	qtype uint16
	kind  Kind
}{
	{"exact", "mail.example.test.", dns.TypeA, Success},
	{"pool", "www.example.test.", dns.TypeA, PoolName},
	{"mixed-case", "WWW.Example.Test.", dns.TypeAAAA, PoolName},
	{"wildcard", "eu.pool.example.test.", dns.TypeA, PoolName},
	{"wildcard-deep", "a.b.c.pool.example.test.", dns.TypeA, PoolName},
	{"cname", "alias.example.test.", dns.TypeA, CNAME},
	{"nodata", "mail.example.test.", dns.TypeMX, NoData},
	{"nxdomain", "nothere.example.test.", dns.TypeA, NXDomain},
	{"delegation", "www.sub.example.test.", dns.TypeA, Delegation},
}

// TestLookupAllocs holds Lookup and Set.Lookup to zero allocations.
func TestLookupAllocs(t *testing.T) {
	z := mustParse(t, ternZone, "")
	s, err := NewSet(z, mustParse(t, childZone, ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range benchQueries {
		t.Run(q.name, func(t *testing.T) {
			if r := z.Lookup(q.qname, q.qtype); r.Kind != q.kind {
				t.Fatalf("kind %v, want %v", r.Kind, q.kind)
			}
			if n := testing.AllocsPerRun(100, func() { z.Lookup(q.qname, q.qtype) }); n != 0 {
				t.Errorf("Zone.Lookup: %v allocations", n)
			}
			if n := testing.AllocsPerRun(100, func() { s.Lookup(q.qname, q.qtype) }); n != 0 {
				t.Errorf("Set.Lookup: %v allocations", n)
			}
			if n := testing.AllocsPerRun(100, func() { s.Zone(q.qname) }); n != 0 {
				t.Errorf("Set.Zone: %v allocations", n)
			}
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	z := mustParse(b, ternZone, "")
	s, err := NewSet(z, mustParse(b, childZone, ""))
	if err != nil {
		b.Fatal(err)
	}
	for _, q := range benchQueries {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := z.Lookup(q.qname, q.qtype); r.Kind != q.kind {
					b.Fatalf("kind %v", r.Kind)
				}
			}
		})
	}
	b.Run("set", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, r := s.Lookup("www.example.test.", dns.TypeA); r.Kind != PoolName {
				b.Fatalf("kind %v", r.Kind)
			}
		}
	})
}

// BenchmarkLoad measures compiling a zone of 10,000 names.
func BenchmarkLoad(b *testing.B) {
	text := head + "$GENERATE 1-5000 host$ A 192.0.2.1\n$GENERATE 1-5000 lb$ POOL web\n"
	b.ReportAllocs()
	for b.Loop() {
		mustParse(b, text, "")
	}
}

// TestLookupConcurrent runs lookups from several goroutines; under -race
// it fails if the query path writes anything shared.
func TestLookupConcurrent(t *testing.T) {
	s, err := NewSet(mustParse(t, ternZone, ""), mustParse(t, childZone, ""))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 200 {
				for _, q := range benchQueries {
					if _, r := s.Lookup(q.qname, q.qtype); r.Kind != q.kind && q.name != "delegation" {
						t.Errorf("%s: %v, want %v", q.qname, r.Kind, q.kind)
						return
					}
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}

// scaleZone writes the zone bench/scale.sh generates: n records, 60% A,
// 20% AAAA, 10% TXT, 10% MX, the last one "last IN A".
func scaleZone(n int) []byte {
	var b strings.Builder
	b.WriteString("$ORIGIN scale.example.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 604800 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n")
	for i := 0; i < n-4; i++ {
		switch r := i % 10; {
		case r < 6:
			fmt.Fprintf(&b, "h%d IN A 10.%d.%d.%d\n", i, i/65536%256, i/256%256, i%256)
		case r < 8:
			fmt.Fprintf(&b, "h%d IN AAAA 2001:db8::%x:%x\n", i, i/65536, i%65536)
		case r < 9:
			fmt.Fprintf(&b, "h%d IN TXT \"record %d of the scale zone\"\n", i, i)
		default:
			fmt.Fprintf(&b, "h%d IN MX 10 mail%d\n", i, i%1000)
		}
	}
	b.WriteString("last IN A 192.0.2.99\n")
	return []byte(b.String())
}

// scaleRecords is the size of the zone BenchmarkLoadScale loads: the
// environment's TERN_BENCH_RECORDS (1000000 is bench/scale.sh's largest),
// else the benchmark is skipped, so that CI does not spend a minute on it.
func scaleRecords(b *testing.B) int {
	n, err := strconv.Atoi(os.Getenv("TERN_BENCH_RECORDS"))
	if err != nil || n < 5 {
		b.Skip("set TERN_BENCH_RECORDS (say 1000000) to load a zone that large")
	}
	return n
}

// BenchmarkLoadScale loads bench/scale.sh's zone, TERN_BENCH_RECORDS
// records large, and reports the heap the loaded zone keeps.
func BenchmarkLoadScale(b *testing.B) {
	n := scaleRecords(b)
	fsys := fstest.MapFS{"z.zone": {Data: scaleZone(n)}}
	b.ReportAllocs()
	var z *Zone
	for b.Loop() {
		z = nil
		runtime.GC()
		var ps config.Problems
		if z, ps = Parse(fsys, "z.zone", "z.zone", "", nil); len(ps) > 0 {
			b.Fatal(ps)
		}
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB")
	if r := z.Lookup("last.scale.example.test.", dns.TypeA); r.Kind != Success {
		b.Fatalf("last: %v", r.Kind)
	}
}

// BenchmarkParserFloor is the floor under BenchmarkLoadScale: miekg/dns's
// ZoneParser alone over the same zone, every record dropped as it comes.
func BenchmarkParserFloor(b *testing.B) {
	data := scaleZone(scaleRecords(b))
	b.ReportAllocs()
	for b.Loop() {
		zp := dns.NewZoneParser(bytes.NewReader(data), "", "z.zone")
		n := 0
		for _, ok := zp.Next(); ok; _, ok = zp.Next() {
			n++
		}
		if zp.Err() != nil {
			b.Fatal(zp.Err())
		}
	}
}

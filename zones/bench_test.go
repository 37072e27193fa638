package zones

import (
	"testing"

	"github.com/miekg/dns"
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

package dnssec

import (
	"encoding/binary"
	"net"
	"testing"
	"testing/fstest"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/zones"
)

func benchZone(b testing.TB, alg uint8) *Zone {
	b.Helper()
	fsys := fstest.MapFS{"z.zone": {Data: []byte("$ORIGIN example.test.\n@ 300 IN SOA ns1 h 1 3600 600 604800 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.53\n")}}
	z, ps := zones.Parse(fsys, "z.zone", "z.zone", "", nil)
	if len(ps) > 0 {
		b.Fatal(ps)
	}
	k, err := Generate("example.test.", alg, true)
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewSigner("example.test.", alg, []*Key{k}, 24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	sz, err := NewZone(z, s, 1<<16, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return sz
}

func poolAnswer(i int) ([]dns.RR, []byte) {
	var rrs []dns.RR
	key := []byte("\x03www\x07example\x04test\x00\x00\x01\x00\x00\x00\x1e")
	for j := range 2 {
		ip := net.IPv4(192, 0, byte(i>>8), byte(i+j))
		rrs = append(rrs, &dns.A{Hdr: dns.RR_Header{Name: "www.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: ip})
		key = binary.BigEndian.AppendUint16(key, 4)
		key = append(key, ip.To4()...)
	}
	return rrs, key
}

// BenchmarkSignMiss is what a cache miss costs: one signature of a
// two-address pool answer, and the cache's store.
func BenchmarkSignMiss(b *testing.B) {
	for _, alg := range []struct {
		name string
		alg  uint8
	}{{"ecdsap256sha256", dns.ECDSAP256SHA256}, {"ed25519", dns.ED25519}} {
		b.Run(alg.name, func(b *testing.B) {
			z := benchZone(b, alg.alg)
			rrs, key := poolAnswer(1)
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := z.SignDynamic(key, rrs, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCacheHit is a hit: the lookup the query path makes.
func BenchmarkCacheHit(b *testing.B) {
	z := benchZone(b, dns.ECDSAP256SHA256)
	rrs, key := poolAnswer(1)
	now := time.Now()
	if _, err := z.SignDynamic(key, rrs, now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := z.Cached(key, now.Unix()); !ok {
			b.Fatal("miss")
		}
	}
}

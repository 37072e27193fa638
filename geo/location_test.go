package geo

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func TestDistanceKm(t *testing.T) {
	tests := []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want                   float64
	}{
		{"London to New York", 51.5074, -0.1278, 40.7128, -74.0060, 5570},
		{"Tokyo to Sydney", 35.68, 139.75, -33.87, 151.21, 7820},
		{"same place", 10, 10, 10, 10, 0},
		{"antipodes", 0, 0, 0, 180, math.Pi * earthRadiusKm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DistanceKm(tc.lat1, tc.lon1, tc.lat2, tc.lon2); math.Abs(got-tc.want) > tc.want*0.005+1 {
				t.Errorf("got %.0f km, want %.0f", got, tc.want)
			}
		})
	}
}

func TestVecOrdersLikeDistance(t *testing.T) {
	pts := [][2]float64{{51.51, -0.09}, {38.9, -77.03}, {35.68, 139.75}, {-33.87, 151.21}, {1.35, 103.8}, {-23.5, -46.6}}
	for _, c := range pts {
		cv := VecOf(c[0], c[1])
		for _, a := range pts {
			for _, b := range pts {
				da, db := DistanceKm(c[0], c[1], a[0], a[1]), DistanceKm(c[0], c[1], b[0], b[1])
				if math.Abs(da-db) > 1 && (da < db) != (cv.Dot(VecOf(a[0], a[1])) > cv.Dot(VecOf(b[0], b[1]))) {
					t.Fatalf("from %v: %v at %.0f km and %v at %.0f km order differently by dot product", c, a, da, b, db)
				}
			}
		}
	}
}

func TestTableLookupAndSpan(t *testing.T) {
	var tb Table[string]
	for _, e := range []struct{ p, v string }{
		{"10.0.0.0/8", "ten"}, {"10.1.0.0/16", "ten-one"}, {"10.1.2.3/32", "host"},
		{"2001:db8::/32", "doc"}, {"::ffff:192.0.2.0/120", "mapped"},
	} {
		tb.Insert(netip.MustParsePrefix(e.p), e.v)
	}
	tb.Insert(netip.MustParsePrefix("10.0.0.0/8"), "ten") // again: replaces
	if tb.Len() != 5 {
		t.Fatalf("Len %d, want 5", tb.Len())
	}
	tests := []struct {
		addr string
		v    string
		span int
		ok   bool
	}{
		{"10.200.0.1", "ten", 9, true},     // 10.1/16 shares 8 bits: the /8 would hold it
		{"10.0.0.1", "ten", 16, true},      // 10.0/16 and 10.1/16 differ in bit 16
		{"10.1.9.9", "ten-one", 21, true},  // 10.1.2.3 shares 20 bits with 10.1.9.9
		{"10.1.2.3", "host", 32, true},     // its own /32
		{"10.1.2.2", "ten-one", 32, true},  // the /31 would hold 10.1.2.3
		{"11.0.0.1", "", 8, false},         // no match; 10/8 shares 7 bits
		{"192.0.2.77", "mapped", 24, true}, // a 4in6 key is an IPv4 key
		{"::ffff:10.1.2.3", "host", 32, true},
		{"2001:db8::1", "doc", 32, true},
		{"2001:db9::1", "", 32, false},
		{"8000::1", "", 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			v, span, ok := tb.Lookup(netip.MustParseAddr(tc.addr))
			if v != tc.v || span != tc.span || ok != tc.ok {
				t.Errorf("got %q /%d %v, want %q /%d %v", v, span, ok, tc.v, tc.span, tc.ok)
			}
		})
	}
}

// TestTableSpanHolds checks the span promise by brute force: every
// address in the span prefix around a client gets the client's result.
func TestTableSpanHolds(t *testing.T) {
	var tb Table[int]
	for i, p := range []string{"10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.128/25", "10.3.0.0/16", "10.1.2.3/32"} {
		tb.Insert(netip.MustParsePrefix(p), i)
	}
	for _, c := range []string{"10.1.2.200", "10.1.2.3", "10.1.2.4", "10.1.3.1", "10.2.0.1", "10.200.1.1", "9.0.0.1"} {
		a := netip.MustParseAddr(c)
		v, span, ok := tb.Lookup(a)
		pf, _ := a.Prefix(max(span, 16)) // walk at most 2^16 addresses
		if span < 16 {
			continue
		}
		for x := pf.Addr(); pf.Contains(x); x = x.Next() {
			if w, _, wok := tb.Lookup(x); w != v || wok != ok {
				t.Fatalf("client %s span /%d: %s gets %d %v, client %d %v", c, span, x, w, wok, v, ok)
			}
		}
	}
}

// scan is the obvious reference for Table.Lookup: every prefix, the
// longest holding a wins; each other prefix lengthens the span past the
// bits it shares with a.
func scan(list []netip.Prefix, a netip.Addr) (vi, span int) {
	vi, best := -1, -1
	for i, p := range list {
		if p.Contains(a) {
			if p.Bits() > best {
				vi, best = i, p.Bits()
			}
			span = max(span, p.Bits())
			continue
		}
		if c := commonBits(a, p.Addr()); c+1 > span {
			span = c + 1
		}
	}
	return vi, span
}

func commonBits(a, b netip.Addr) int {
	ah, al := addrBits(a)
	bh, bl := addrBits(b)
	if ah != bh {
		return bits.LeadingZeros64(ah ^ bh)
	}
	return 64 + bits.LeadingZeros64(al^bl)
}

// TestTableAgreesWithScan checks the trie against the scan on random
// tables, small and large, nested and colliding.
func TestTableAgreesWithScan(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	randAddr := func(v4 bool) netip.Addr {
		if v4 {
			// a small corner of the space, so prefixes nest and collide
			return netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))})
		}
		var b [16]byte
		b[0], b[1], b[2] = 0x20, 0x01, byte(r.IntN(4))
		b[3], b[15] = byte(r.IntN(256)), byte(r.IntN(256))
		return netip.AddrFrom16(b)
	}
	for round := range 60 {
		v4 := round%2 == 0
		var tb Table[int]
		var list []netip.Prefix
		for range 1 + r.IntN(200) {
			a := randAddr(v4)
			bits := r.IntN(33)
			if !v4 {
				bits = r.IntN(129)
			}
			pf, _ := a.Prefix(bits)
			if !slices.Contains(list, pf) {
				tb.Insert(pf, len(list))
				list = append(list, pf)
			}
		}
		for range 500 {
			a := randAddr(v4)
			v, span, ok := tb.Lookup(a)
			wi, wspan := scan(list, a)
			if ok != (wi >= 0) || ok && v != wi || span != wspan {
				t.Fatalf("round %d %s: table %d %v /%d, scan %d /%d", round, a, v, ok, span, wi, wspan)
			}
		}
	}
}

func BenchmarkTableLookup(b *testing.B) {
	for _, n := range []int{8, 5000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			var tb Table[int]
			for i := range n {
				a := netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), 0})
				pf, _ := a.Prefix(16 + r.IntN(9))
				tb.Insert(pf, i)
			}
			addrs := make([]netip.Addr, 256)
			for i := range addrs {
				addrs[i] = netip.AddrFrom4([4]byte{byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256)), 1})
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				tb.Lookup(addrs[i&255])
				i++
			}
		})
	}
}

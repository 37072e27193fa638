package dnssec

import (
	"bytes"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestBitmap compares the NSEC rdata with miekg/dns's packing of the
// same record.
func TestBitmap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		types []uint16
	}{
		{"nxname", []uint16{TypeNXNAME}},
		{"empty non-terminal", nil},
		{"a txt", []uint16{dns.TypeTXT, dns.TypeA}},
		{"duplicates", []uint16{dns.TypeA, dns.TypeA, dns.TypeAAAA}},
		{"window 1", []uint16{dns.TypeA, dns.TypeCAA}},
		{"high windows", []uint16{dns.TypeTA, 65280, dns.TypeMX}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			owner := "x.example.test."
			wire := make([]byte, 256)
			n, _ := dns.PackDomainName(owner, wire, 0, nil, false)
			got := AppendNSECRdata(nil, wire[:n], tc.types)
			bm := append(slices.Clone(tc.types), dns.TypeRRSIG, dns.TypeNSEC)
			slices.Sort(bm)
			bm = slices.Compact(bm)
			want, err := appendRdata(nil, &dns.NSEC{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeNSEC, Class: dns.ClassINET}, NextDomain: `\000.` + owner, TypeBitMap: bm})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want[2:]) {
				t.Errorf("rdata\n%x, want\n%x", got, want[2:])
			}
		})
	}
}

func TestKeyRoundTrip(t *testing.T) {
	for _, alg := range []uint8{dns.ECDSAP256SHA256, dns.ED25519} {
		for _, sep := range []bool{true, false} {
			k, err := Generate("Example.TEST", alg, sep)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			pub, priv, err := k.Write(dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := k.Write(dir); err == nil {
				t.Error("a key file was overwritten")
			}
			for _, p := range []string{pub, priv, k.File} {
				r, err := ReadKey(p)
				if err != nil {
					t.Fatalf("read %s: %v", p, err)
				}
				if r.DNSKEY.PublicKey != k.DNSKEY.PublicKey || r.Tag() != k.Tag() || r.SEP() != sep || r.DNSKEY.Hdr.Name != "example.test." {
					t.Errorf("read back %v, wrote %v", r.DNSKEY, k.DNSKEY)
				}
			}
		}
	}
}

// TestParseKeyErrors: a private key of another pair, or a file that is
// not a key, is refused with a clear error.
func TestParseKeyErrors(t *testing.T) {
	a, _ := Generate("example.test.", dns.ECDSAP256SHA256, true)
	b, _ := Generate("example.test.", dns.ECDSAP256SHA256, true)
	pubA := []byte(a.DNSKEY.String())
	if _, err := ParseKey(pubA, []byte(b.DNSKEY.PrivateKeyString(b.signer)), "b.private"); err == nil {
		t.Error("mismatched pair accepted")
	}
	if _, err := ParseKey([]byte("example.test. 3600 IN A 192.0.2.1"), []byte(a.DNSKEY.PrivateKeyString(a.signer)), "a.private"); err == nil {
		t.Error("a file without DNSKEY accepted")
	}
	rsa := &dns.DNSKEY{Hdr: dns.RR_Header{Name: "example.test.", Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET}, Flags: 257, Protocol: 3, Algorithm: dns.RSASHA256}
	if _, err := rsa.Generate(1024); err == nil {
		if _, err := ParseKey([]byte(rsa.String()), nil, "r.private"); err == nil {
			t.Error("RSA key accepted")
		}
	}
}

// TestKSKZSK: with a KSK and a ZSK, the KSK signs the DNSKEY RRset alone
// and the ZSK the rest; a CSK signs everything.
func TestKSKZSK(t *testing.T) {
	ksk, _ := Generate("example.test.", dns.ECDSAP256SHA256, true)
	zsk, _ := Generate("example.test.", dns.ECDSAP256SHA256, false)
	s, err := NewSigner("example.test.", dns.ECDSAP256SHA256, []*Key{ksk, zsk}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	keys := ApexRecords([]*Key{ksk, zsk}, 3600)
	var dnskeys []dns.RR
	for _, rr := range keys {
		if rr.Header().Rrtype == dns.TypeDNSKEY {
			dnskeys = append(dnskeys, rr)
		}
	}
	a := []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "www.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: netip.MustParseAddr("192.0.2.1").AsSlice()}}
	for _, tc := range []struct {
		rrs  []dns.RR
		want *Key
	}{{dnskeys, ksk}, {a, zsk}} {
		sigs, err := s.Sign(nil, tc.rrs, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rd := range Sigs(sigs) {
			sig := unpackSig(t, tc.rrs[0].Header().Name, rd)
			if sig.KeyTag != tc.want.Tag() {
				t.Errorf("%s signed by %d, want %d", dns.Type(tc.rrs[0].Header().Rrtype), sig.KeyTag, tc.want.Tag())
			}
			if err := sig.Verify(tc.want.DNSKEY, tc.rrs); err != nil {
				t.Error(err)
			}
			n++
		}
		if n != 1 {
			t.Errorf("%d signatures, want 1", n)
		}
	}
	if _, err := NewSigner("other.test.", dns.ECDSAP256SHA256, []*Key{ksk}, time.Hour); err == nil {
		t.Error("a key of another zone accepted")
	}
	if _, err := NewSigner("example.test.", dns.ED25519, []*Key{ksk}, time.Hour); err == nil {
		t.Error("a key of another algorithm accepted")
	}
}

func unpackSig(t testing.TB, owner string, rd []byte) *dns.RRSIG {
	t.Helper()
	rr, _, err := dns.UnpackRRWithHeader(dns.RR_Header{Name: owner, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Rdlength: uint16(len(rd))}, rd, 0)
	if err != nil {
		t.Fatal(err)
	}
	return rr.(*dns.RRSIG)
}

// TestCache: a hit returns what was stored for the same key; another
// key, or a time at or past the refresh, misses; the counters count.
func TestCache(t *testing.T) {
	c := NewCache(3)
	if c.Len() != 4 {
		t.Errorf("size %d, want 4 (a power of two)", c.Len())
	}
	c.put([]byte("a"), []byte("sigs-a"), 100)
	for _, tc := range []struct {
		key  string
		now  int64
		want string
	}{{"a", 99, "sigs-a"}, {"a", 100, ""}, {"b", 1, ""}} {
		got, ok := c.get([]byte(tc.key), tc.now)
		if string(got) != tc.want || ok != (tc.want != "") {
			t.Errorf("get %s at %d: %q %v, want %q", tc.key, tc.now, got, ok, tc.want)
		}
	}
	if c.Hits.Load() != 1 || c.Misses.Load() != 2 {
		t.Errorf("hits %d misses %d, want 1 and 2", c.Hits.Load(), c.Misses.Load())
	}
	// Bounded: many keys never hold more than the size.
	for i := range 100 {
		c.put([]byte{byte(i)}, []byte{1}, 1000)
	}
	n := 0
	for i := range c.slots {
		if c.slots[i].Load() != nil {
			n++
		}
	}
	if n > c.Len() {
		t.Errorf("%d entries in a cache of %d", n, c.Len())
	}
}

// TestRefresh: static signatures are made again once due, not before,
// and the new ones are valid later than the old.
func TestRefresh(t *testing.T) {
	z := benchZone(t, dns.ECDSAP256SHA256)
	ns := z.Zone.NS()
	expiry := func() uint32 {
		for rd := range Sigs(z.Static(ns)) {
			sig := unpackSig(t, ns.Owner(), rd)
			if err := sig.Verify(z.Signer.Keys()[0].DNSKEY, ns.RRs()); err != nil {
				t.Fatal(err)
			}
			return sig.Expiration
		}
		t.Fatal("the apex NS RRset is not signed")
		return 0
	}
	first := expiry()
	due := z.RefreshDue()
	if did, err := z.Refresh(due.Add(-time.Second)); did || err != nil {
		t.Fatalf("refreshed before due: %v %v", did, err)
	}
	if expiry() != first {
		t.Fatal("signatures changed before due")
	}
	if did, err := z.Refresh(due); !did || err != nil {
		t.Fatalf("not refreshed when due: %v %v", did, err)
	}
	if got := expiry(); got <= first {
		t.Errorf("expiration %d after refresh, was %d", got, first)
	}
	if !z.RefreshDue().After(due) {
		t.Error("next refresh not later")
	}
	// SOA is signed per answer (the served serial), POOL never.
	if soa := z.Zone.NS().Sibling(dns.TypeSOA); Signed(soa) || len(z.Static(soa)) != 0 {
		t.Error("SOA signed statically")
	}
}

// TestRollWarnings follows RFC 7583's ZSK pre-publication roll: each step
// taken too soon is warned about, taken in time is not.
func TestRollWarnings(t *testing.T) {
	ksk, _ := Generate("example.test.", dns.ECDSAP256SHA256, true)
	old, _ := Generate("example.test.", dns.ECDSAP256SHA256, false)
	nw, _ := Generate("example.test.", dns.ECDSAP256SHA256, false)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const keyTTL, maxTTL = time.Hour, 2 * time.Hour
	signed := KeyHistory(nil).Observe(t0, []*Key{ksk, old}, nil)
	prepub := signed.clone().Observe(t0.Add(time.Minute), []*Key{ksk, old}, []*Key{nw})
	// A node observes all along: the old key signed until the swap.
	swapped := prepub.clone().Observe(t0.Add(2*time.Hour), []*Key{ksk, old}, []*Key{nw}).
		Observe(t0.Add(2*time.Hour+time.Second), []*Key{ksk, nw}, []*Key{old})
	signedLong := signed.clone().Observe(t0.Add(3*time.Hour), []*Key{ksk, old}, nil)
	for _, tc := range []struct {
		name             string
		h                KeyHistory
		signing, publish []*Key
		at               time.Duration
		want             string // "" for no warning
	}{
		{"first signing", nil, []*Key{ksk, old}, nil, 0, ""},
		{"steady", signed, []*Key{ksk, old}, nil, time.Hour, ""},
		{"new key signs unpublished", signed, []*Key{ksk, nw}, []*Key{old}, time.Hour, "without having been published"},
		{"pre-publish", signed, []*Key{ksk, old}, []*Key{nw}, time.Minute, ""},
		{"swap too soon", prepub, []*Key{ksk, nw}, []*Key{old}, 30 * time.Minute, "less than dnskey_ttl"},
		{"swap in time", prepub, []*Key{ksk, nw}, []*Key{old}, 2 * time.Hour, ""},
		{"old removed too soon", swapped, []*Key{ksk, nw}, nil, 3 * time.Hour, "last signed"},
		{"old removed in time", swapped, []*Key{ksk, nw}, nil, 5 * time.Hour, ""},
		{"removed while signing", signed, []*Key{ksk}, nil, time.Minute, "last signed"},
		{"ksk removed", signedLong, []*Key{old}, nil, 3 * time.Hour, "parent's DS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := RollWarnings(tc.h, tc.signing, tc.publish, t0.Add(tc.at), keyTTL, maxTTL)
			got := strings.Join(ws, "\n")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("warnings %q, want %q", got, tc.want)
			}
		})
	}
}

func (h KeyHistory) clone() KeyHistory { return maps.Clone(h) }

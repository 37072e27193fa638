package dnsserver

import (
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dnssec"
	"github.com/ternlb/tern/zones"
)

// signedSnapshot is testSnapshot with every zone signed by a CSK of its
// own (what node's compile does with key files), and the keys by zone.
func signedSnapshot(t testing.TB) (*Snapshot, map[string]*dns.DNSKEY) {
	t.Helper()
	snap := testSnapshot(t)
	cfg, err := config.Load("testdata/tern.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pools := map[string]int{}
	for i, n := range cfg.PoolNames() {
		pools[n] = i
	}
	keys := map[string]*dns.DNSKEY{}
	var all []*zones.Zone
	signers := map[*zones.Zone]*dnssec.Signer{}
	for _, z := range snap.Zones.Zones() {
		k, err := dnssec.Generate(z.Origin, dns.ECDSAP256SHA256, true)
		if err != nil {
			t.Fatal(err)
		}
		s, err := dnssec.NewSigner(z.Origin, dns.ECDSAP256SHA256, []*dnssec.Key{k}, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		nz, ps := zones.WithRecords(z, dnssec.ApexRecords([]*dnssec.Key{k}, 3600), pools)
		if len(ps) > 0 {
			t.Fatal(ps)
		}
		all = append(all, nz)
		signers[nz] = s
		keys[z.Origin] = k.DNSKEY
	}
	set, err := zones.NewSet(all...)
	if err != nil {
		t.Fatal(err)
	}
	snap.Zones = set
	snap.DNSSEC = map[*zones.Zone]*dnssec.Zone{}
	for z, s := range signers {
		sz, err := dnssec.NewZone(z, s, 1024, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		snap.DNSSEC[z] = sz
	}
	return snap, keys
}

// doQuery is a query with DO and a UDP size.
func doQuery(name string, qtype uint16, size uint16, opts ...dns.EDNS0) *dns.Msg {
	m := withEDNS(newQuery(name, qtype), size, opts...)
	m.IsEdns0().SetDo()
	return m
}

// checkSigned verifies that every RRSIG of r follows the RRset it covers
// in its section and verifies with the signer's key; and that every
// authoritative RRset of the answer and authority sections is signed.
func checkSigned(t *testing.T, r *dns.Msg, keys map[string]*dns.DNSKEY) {
	t.Helper()
	checkRRSIGs(t, r, keys, true)
}

// checkSignatures is checkSigned without requiring every RRset signed
// (an answer to a query without DO has none).
func checkSignatures(t *testing.T, r *dns.Msg, keys map[string]*dns.DNSKEY) {
	t.Helper()
	checkRRSIGs(t, r, keys, false)
}

func checkRRSIGs(t *testing.T, r *dns.Msg, keys map[string]*dns.DNSKEY, all bool) {
	t.Helper()
	for si, sec := range [][]dns.RR{r.Answer, r.Ns, r.Extra} {
		type setKey struct {
			name string
			t    uint16
		}
		sets := map[setKey][]dns.RR{}
		signed := map[setKey]bool{}
		for i, rr := range sec {
			h := rr.Header()
			sig, ok := rr.(*dns.RRSIG)
			if !ok {
				if h.Rrtype != dns.TypeOPT {
					k := setKey{strings.ToLower(h.Name), h.Rrtype}
					sets[k] = append(sets[k], rr)
				}
				continue
			}
			k := setKey{strings.ToLower(h.Name), sig.TypeCovered}
			set := sets[k]
			if len(set) == 0 || i == 0 {
				t.Errorf("section %d: RRSIG %v without its RRset before it", si, sig)
				continue
			}
			key := keys[sig.SignerName]
			if key == nil {
				t.Errorf("RRSIG by unknown signer %s", sig.SignerName)
				continue
			}
			if err := sig.Verify(key, set); err != nil {
				t.Errorf("section %d: %s/%s: %v", si, k.name, dns.Type(k.t), err)
			}
			if sig.Hdr.Ttl != set[0].Header().Ttl {
				t.Errorf("RRSIG TTL %d, its RRset's %d", sig.Hdr.Ttl, set[0].Header().Ttl)
			}
			signed[k] = true
		}
		if !all || si == 2 || (si == 1 && !r.Authoritative) {
			continue // additional data, referrals: checked where signed
		}
		for k := range sets {
			if !signed[k] {
				t.Errorf("section %d: %s/%s is not signed:\n%v", si, k.name, dns.Type(k.t), r)
			}
		}
	}
	if r.AuthenticatedData {
		t.Error("AD set")
	}
}

// TestSignedHandler answers many kinds of query with DO over the real
// server, including ECS-tailored pool answers and answers truncated at
// 512 bytes, whose RRsets must be cut with their signatures.
func TestSignedHandler(t *testing.T) {
	snap, keys := signedSnapshot(t)
	_, addr := startServer(t, snap, Options{})
	for _, tc := range []struct {
		name  string
		m     *dns.Msg
		netw  string
		trunc bool
	}{
		{"pool", doQuery("www.example.test.", dns.TypeA, 1232), "udp", false},
		{"pool any", doQuery("www.example.test.", dns.TypeANY, 1232), "udp", false},
		{"pool two", doQuery("two.example.test.", dns.TypeA, 1232), "udp", false},
		{"pool host member", doQuery("hosts.example.test.", dns.TypeA, 1232), "udp", false},
		{"pool ecs", doQuery("sticky.example.test.", dns.TypeA, 1232, ecsOption(1, 24, "198.51.100.0")), "udp", false},
		{"pool ecs other", doQuery("sticky.example.test.", dns.TypeA, 1232, ecsOption(1, 24, "203.0.113.0")), "udp", false},
		{"pool none up", doQuery("none.example.test.", dns.TypeA, 1232), "udp", false},
		{"cname to pool", doQuery("towww.example.test.", dns.TypeA, 1232), "udp", false},
		{"mx additional", doQuery("manymx.example.test.", dns.TypeMX, 4096), "udp", false},
		{"big truncated", doQuery("big.example.test.", dns.TypeTXT, 512), "udp", true},
		{"big tcp", doQuery("big.example.test.", dns.TypeTXT, 512), "tcp", false},
		{"many truncated", doQuery("many.example.test.", dns.TypeA, 512), "udp", false},
		{"mx at 512", doQuery("manymx.example.test.", dns.TypeMX, 512), "udp", false},
		{"nxdomain", doQuery("nothere.example.test.", dns.TypeA, 1232), "udp", false},
		{"cd ignored", func() *dns.Msg {
			m := doQuery("www.example.test.", dns.TypeA, 1232)
			m.CheckingDisabled = true
			return m
		}(), "udp", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := exchange(t, tc.netw, addr, tc.m)
			if r.Truncated != tc.trunc {
				t.Errorf("TC %v, want %v", r.Truncated, tc.trunc)
			}
			if r.Rcode != dns.RcodeSuccess {
				t.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
			}
			if tc.m.CheckingDisabled && !r.CheckingDisabled {
				t.Error("CD not copied")
			}
			checkSigned(t, r, keys)
			if o := r.IsEdns0(); o == nil || !o.Do() {
				t.Error("DO not echoed")
			}
		})
	}
}

// TestSignedHitNoAllocs: with the signatures cached, a signed answer
// (static, pool, NODATA and compact NXDOMAIN) costs no allocation.
func TestSignedHitNoAllocs(t *testing.T) {
	if raceOn {
		t.Skip("the race detector allocates")
	}
	snap, _ := signedSnapshot(t)
	w := newWorker(1232, slog.New(slog.NewTextHandler(io.Discard, nil)))
	cur := &served{snap: snap}
	src := netip.MustParseAddr("192.0.2.99")
	for _, name := range []string{"static.example.test.", "www.example.test.", "nothere.example.test.", "towww.example.test."} {
		msg := packMsg(t, doQuery(name, dns.TypeA, 1232))
		w.handle(cur, msg, src, false) // the miss
		if n := testing.AllocsPerRun(100, func() { w.handle(cur, msg, src, false) }); n != 0 {
			t.Errorf("%s: %v allocations per signed answer", name, n)
		}
	}
}

// BenchmarkHandlerDNSSEC is BenchmarkHandler's queries with DO against
// signed zones, signatures cached (the hit path).
func BenchmarkHandlerDNSSEC(b *testing.B) {
	snap, _ := signedSnapshot(b)
	for _, bc := range []struct {
		name string
		m    *dns.Msg
	}{
		{"static", doQuery("static.example.test.", dns.TypeA, 1232)},
		{"pool", doQuery("www.example.test.", dns.TypeA, 1232)},
		{"pool-ecs", doQuery("sticky.example.test.", dns.TypeA, 1232, ecsOption(1, 24, "198.51.100.0"))},
		{"nxdomain", doQuery("nothere.example.test.", dns.TypeA, 1232)},
		{"cname", doQuery("towww.example.test.", dns.TypeA, 1232)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			msg := packMsg(b, bc.m)
			w := newWorker(1232, slog.New(slog.NewTextHandler(io.Discard, nil)))
			cur := &served{snap: snap}
			src := netip.MustParseAddr("192.0.2.99")
			w.handle(cur, msg, src, false) // the signatures' miss
			benchHandle(b, w, cur, msg, src)
		})
	}
}

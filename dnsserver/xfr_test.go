package dnsserver

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/zones"
)

const testSecret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="

func xfrOptions() Options {
	return Options{
		TSIGKeys:      []TSIGKey{{Name: "xfr", Secret: testSecret}},
		TransferAllow: []TransferACL{{From: netip.MustParsePrefix("127.0.0.0/8"), Key: "xfr"}},
	}
}

// transfer runs an AXFR or IXFR (serial: the client's, for IXFR) and
// returns the envelopes' records, or the error.
func transfer(t *testing.T, addr, zone string, qtype uint16, serial uint32, key, secret string) ([][]dns.RR, error) {
	t.Helper()
	m := new(dns.Msg)
	if qtype == dns.TypeIXFR {
		m.SetIxfr(zone, serial, "ns.", "mbox.")
	} else {
		m.SetAxfr(zone)
	}
	tr := &dns.Transfer{DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second}
	if key != "" {
		m.SetTsig(key, dns.HmacSHA256, 300, time.Now().Unix())
		tr.TsigSecret = map[string]string{key: secret}
	}
	ch, err := tr.In(m, addr)
	if err != nil {
		return nil, err
	}
	var out [][]dns.RR
	for env := range ch {
		if env.Error != nil {
			return out, env.Error
		}
		out = append(out, env.RR)
	}
	return out, nil
}

func flatten(envs [][]dns.RR) []dns.RR {
	var out []dns.RR
	for _, e := range envs {
		out = append(out, e...)
	}
	return out
}

// TestAXFR transfers the test zone: SOA first and last, POOL names as the
// A/AAAA records of all their members (a pool that is down included),
// host-name pools as a CNAME, and no POOL record.
func TestAXFR(t *testing.T) {
	snap := testSnapshot(t)
	_, addr := startServer(t, snap, xfrOptions())
	envs, err := transfer(t, addr, "example.test.", dns.TypeAXFR, 0, "xfr.", testSecret)
	if err != nil {
		t.Fatalf("AXFR: %v", err)
	}
	rrs := flatten(envs)
	if len(rrs) < 3 || rrs[0].Header().Rrtype != dns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != dns.TypeSOA {
		t.Fatalf("AXFR does not begin and end with the SOA: %v", rrs)
	}
	got := map[string]bool{}
	for _, rr := range rrs[1 : len(rrs)-1] {
		if rr.Header().Rrtype == zones.TypePOOL {
			t.Errorf("POOL record transferred: %v", rr)
		}
		if rr.Header().Rrtype == dns.TypeSOA {
			t.Errorf("SOA inside the transfer: %v", rr)
		}
		got[strings.Join(strings.Fields(rr.String()), " ")] = true
	}
	for _, want := range []string{
		"www.example.test. 30 IN A 192.0.2.1", "www.example.test. 30 IN A 192.0.2.2", "www.example.test. 30 IN A 192.0.2.3",
		"www.example.test. 30 IN AAAA 2001:db8::1",
		"none.example.test. 300 IN A 192.0.2.41", // down, still in the static view
		"hosts.example.test. 300 IN CNAME static.example.test.",
		"outside.example.test. 300 IN CNAME www.example.org.",
		"static.example.test. 300 IN TXT \"static text\"",
		"sub.example.test. 300 IN NS ns.sub.example.test.",
	} {
		if !got[want] {
			t.Errorf("AXFR lacks %q", want)
		}
	}
	// Everything the zone has, POOL names expanded: count matches.
	z := snap.Zones.Zone("example.test.")
	want := 2
	for range transferRecords(z, poolsByName(snap)) {
		want++
	}
	if len(rrs) != want {
		t.Errorf("AXFR has %d records, want %d", len(rrs), want)
	}
}

func TestIXFR(t *testing.T) {
	snap := testSnapshot(t)
	_, addr := startServer(t, snap, xfrOptions())
	serial := snap.Zones.Zone("example.test.").SOA.Serial
	envs, err := transfer(t, addr, "example.test.", dns.TypeIXFR, serial, "xfr.", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if rrs := flatten(envs); len(rrs) != 1 || rrs[0].(*dns.SOA).Serial != serial {
		t.Errorf("IXFR at our serial: %v, want our SOA alone", rrs)
	}
	envs, err = transfer(t, addr, "example.test.", dns.TypeIXFR, serial-1, "xfr.", testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if rrs := flatten(envs); len(rrs) < 10 || rrs[0].Header().Rrtype != dns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != dns.TypeSOA {
		t.Errorf("IXFR from an older serial: %d records, want the whole zone", len(rrs))
	}
}

// TestTransferRefused: every way a transfer is turned away, and the
// rcode and TSIG error it gets.
func TestTransferRefused(t *testing.T) {
	snap := testSnapshot(t)
	o := xfrOptions()
	o.TSIGKeys = append(o.TSIGKeys, TSIGKey{Name: "other", Secret: testSecret})
	_, addr := startServer(t, snap, o)
	o2 := xfrOptions()
	o2.TransferAllow = []TransferACL{{From: netip.MustParsePrefix("192.0.2.0/24")}}
	_, elsewhere := startServer(t, snap, o2)
	_, none := startServer(t, snap, Options{})
	for _, tc := range []struct {
		name, addr, zone, key, secret string
		rcode, tsigErr                int
	}{
		{"unsigned where a key is required", addr, "example.test.", "", "", dns.RcodeRefused, 0},
		{"a key the entry does not name", addr, "example.test.", "other.", testSecret, dns.RcodeRefused, 0},
		{"unknown key", addr, "example.test.", "nokey.", testSecret, dns.RcodeNotAuth, dns.RcodeBadKey},
		{"wrong secret", addr, "example.test.", "xfr.", "d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmc=", dns.RcodeNotAuth, dns.RcodeBadSig},
		{"zone not served", addr, "example.org.", "xfr.", testSecret, dns.RcodeNotAuth, 0},
		{"name inside a zone", addr, "www.example.test.", "xfr.", testSecret, dns.RcodeNotAuth, 0},
		{"address not allowed", elsewhere, "example.test.", "", "", dns.RcodeRefused, 0},
		{"no transfers configured", none, "example.test.", "", "", dns.RcodeRefused, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetAxfr(tc.zone)
			c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
			if tc.key != "" {
				m.SetTsig(tc.key, dns.HmacSHA256, 300, time.Now().Unix())
				c.TsigSecret = map[string]string{tc.key: tc.secret}
			}
			r, _, err := c.Exchange(m, tc.addr)
			if r == nil {
				t.Fatalf("no response: %v", err)
			}
			if r.Rcode != tc.rcode || len(r.Answer) != 0 {
				t.Errorf("rcode %s with %d answers, want %s", dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[tc.rcode])
			}
			if tc.tsigErr != 0 {
				ts := r.IsTsig()
				if ts == nil || int(ts.Error) != tc.tsigErr || ts.MAC != "" {
					t.Errorf("TSIG %v, want unsigned error %s", ts, dns.RcodeToString[tc.tsigErr])
				}
			} else if tc.key != "" && tc.rcode != dns.RcodeNotAuth && err != nil {
				// (miekg/dns's client takes every NOTAUTH for a TSIG
				// failure and cannot verify those.)
				t.Errorf("a signed refusal must verify: %v", err)
			}
		})
	}
	// Over UDP a transfer is refused even from an allowed client.
	m := new(dns.Msg)
	m.SetAxfr("example.test.")
	if r := exchange(t, "udp", addr, m); r.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR over UDP: %s, want REFUSED", dns.RcodeToString[r.Rcode])
	}
	// Incoming NOTIFY: Tern is a primary only.
	n := new(dns.Msg)
	n.SetNotify("example.test.")
	if r := exchange(t, "udp", addr, n); r.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY: %s, want NOTIMP", dns.RcodeToString[r.Rcode])
	}
}

// TestAXFRLargeZone: a zone of 20,000 records goes out in several
// messages of at most 64 KiB, each TSIG-signed in sequence (dns.Transfer
// verifies every one), SOA first and last.
func TestAXFRLargeZone(t *testing.T) {
	var b strings.Builder
	b.WriteString("$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns hostmaster 7 3600 600 604800 60\n@ IN NS ns\nns IN A 192.0.2.1\n")
	for i := range 20000 {
		fmt.Fprintf(&b, "h%d IN TXT \"host number %d of a large zone\"\n", i, i)
	}
	z, ps := zones.Parse(fstest.MapFS{"big.zone": {Data: []byte(b.String())}}, "big.zone", "big.zone", "", nil)
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	set, err := zones.NewSet(z)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startServer(t, &Snapshot{Zones: set}, xfrOptions())
	envs, err := transfer(t, addr, "big.test.", dns.TypeAXFR, 0, "xfr.", testSecret)
	if err != nil {
		t.Fatalf("AXFR: %v", err)
	}
	rrs := flatten(envs)
	if len(envs) < 10 || len(rrs) != 20000+2+2 {
		t.Errorf("%d messages, %d records; want several messages and %d records", len(envs), len(rrs), 20004)
	}
	if rrs[0].Header().Rrtype != dns.TypeSOA || rrs[len(rrs)-1].Header().Rrtype != dns.TypeSOA {
		t.Error("SOA not first and last")
	}
}

// TestServedSerial: the serial Store derives, as queries and transfers see
// it.
func TestServedSerial(t *testing.T) {
	snap := testSnapshot(t)
	file := snap.Zones.Zone("example.test.").SOA.Serial
	s, addr := startServer(t, snap, xfrOptions())
	serial := func() uint32 {
		r := exchange(t, "udp", addr, newQuery("example.test.", dns.TypeSOA))
		return r.Answer[0].(*dns.SOA).Serial
	}
	negSerial := func() uint32 {
		r := exchange(t, "udp", addr, newQuery("nothere.example.test.", dns.TypeA))
		return r.Ns[0].(*dns.SOA).Serial
	}
	if got := serial(); got != file {
		t.Fatalf("first snapshot: serial %d, want the file's %d", got, file)
	}
	// Same content again (a health change): same serial.
	s.Store(testSnapshot(t))
	if got := serial(); got != file {
		t.Errorf("same content: serial %d, want %d", got, file)
	}
	// A pool's members change, the file's serial does not: bumped.
	changed := testSnapshot(t)
	changed.Pools.At(poolIndex(t, changed, "web")).Members[0].Addr = netip.MustParseAddr("192.0.2.99")
	s.Store(changed)
	if got, neg := serial(), negSerial(); got != file+1 || neg != file+1 {
		t.Errorf("members changed: serial %d (negative answer %d), want %d", got, neg, file+1)
	}
	envs, err := transfer(t, addr, "example.test.", dns.TypeAXFR, 0, "xfr.", testSecret)
	if err != nil || envs[0][0].(*dns.SOA).Serial != file+1 {
		t.Errorf("AXFR after the change: %v", err)
	}
	// Given serials win.
	given := testSnapshot(t)
	given.Serials = map[string]uint32{"example.test.": 4000000000}
	s.Store(given)
	if got := serial(); got != 4000000000 {
		t.Errorf("given serial: %d", got)
	}
}

func TestDeriveSerials(t *testing.T) {
	snap := testSnapshot(t)
	z := snap.Zones.Zone("example.test.")
	file := z.SOA.Serial
	prev := func(serial, fileSerial uint32, sameHash bool) map[string]*zoneXfr {
		zx := &zoneXfr{serial: serial, fileSerial: fileSerial, hashed: true}
		if sameHash {
			zx.hash = contentHash(transferRecords(z, poolsByName(snap)))
		}
		return map[string]*zoneXfr{"example.test.": zx}
	}
	for _, tc := range []struct {
		name string
		prev map[string]*zoneXfr
		want uint32
	}{
		{"first", nil, file},
		{"unchanged", prev(file, file, true), file},
		{"unchanged after a bump", prev(file+3, file, true), file + 3},
		{"content changed", prev(file, file, false), file + 1},
		{"content changed after a bump", prev(file+3, file, false), file + 4},
		{"file serial raised past ours", prev(file-5, file-5, false), file},
		{"file serial raised, not past ours", prev(file+3, file-1, false), file + 4},
		{"file serial raised, same content", prev(file+3, file-1, true), file + 3},
		{"far ahead", prev(file+0x40000000, file, false), file + 0x40000001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, over := deriveSerials(snap, tc.prev)
			if got := out["example.test."].serial; got != tc.want {
				t.Errorf("serial %d, want %d", got, tc.want)
			}
			if v, ok := over[z.SOA]; ok != (tc.want != file) || ok && v != tc.want {
				t.Errorf("override %d, %v", v, ok)
			}
		})
	}
}

// TestBadTime: a request signed outside the fudge gets NOTAUTH with TSIG
// error BADTIME, signed, our time in Other Data.
func TestBadTime(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), xfrOptions())
	m := new(dns.Msg)
	m.SetAxfr("example.test.")
	m.SetTsig("xfr.", dns.HmacSHA256, 300, time.Now().Unix()-3600)
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second, TsigSecret: map[string]string{"xfr.": testSecret}}
	r, _, _ := c.Exchange(m, addr)
	if r == nil {
		t.Fatal("no response")
	}
	ts := r.IsTsig()
	if r.Rcode != dns.RcodeNotAuth || ts == nil || ts.Error != dns.RcodeBadTime || ts.MAC == "" || ts.OtherLen != 6 {
		t.Errorf("rcode %s, TSIG %v; want NOTAUTH, signed BADTIME with our time", dns.RcodeToString[r.Rcode], ts)
	}
}

// TestReconfigure: transfer, TSIG and RRL settings change on a running
// server; a bad set changes nothing.
func TestReconfigure(t *testing.T) {
	s, addr := startServer(t, testSnapshot(t), Options{})
	if _, err := transfer(t, addr, "example.test.", dns.TypeAXFR, 0, "xfr.", testSecret); err == nil {
		t.Fatal("AXFR allowed before any transfer settings")
	}
	if err := s.Reconfigure(xfrOptions()); err != nil {
		t.Fatal(err)
	}
	if _, err := transfer(t, addr, "example.test.", dns.TypeAXFR, 0, "xfr.", testSecret); err != nil {
		t.Fatalf("AXFR after Reconfigure: %v", err)
	}
	bad := xfrOptions()
	bad.TransferAllow = append(bad.TransferAllow, TransferACL{Key: "missing"})
	if err := s.Reconfigure(bad); err == nil || !strings.Contains(err.Error(), `"missing"`) {
		t.Fatalf("Reconfigure with an unknown key: %v", err)
	}
	if _, err := transfer(t, addr, "example.test.", dns.TypeAXFR, 0, "xfr.", testSecret); err != nil {
		t.Fatalf("AXFR after a rejected Reconfigure: %v", err)
	}
	o := xfrOptions()
	o.RRL = &RRL{ResponsesPerSecond: 1, Slip: 1}
	if err := s.Reconfigure(o); err != nil {
		t.Fatal(err)
	}
	l := s.pol.Load().rrl
	exchange(t, "udp", addr, newQuery("static.example.test.", dns.TypeA))
	if r := exchange(t, "udp", addr, newQuery("static.example.test.", dns.TypeA)); !r.Truncated || len(r.Answer) != 0 {
		t.Errorf("second query at 1/s with slip 1: %v, want an empty truncated answer", r)
	}
	if err := s.Reconfigure(o); err != nil || s.pol.Load().rrl != l {
		t.Errorf("the same RRL settings replaced the limiter (and its accounts): %v", err)
	}
}

func TestVersionSerials(t *testing.T) {
	snap := testSnapshot(t)
	serials, content := VersionSerials(snap)
	file := snap.Zones.Zone("example.test.").SOA.Serial
	if len(serials) != 2 || serials["example.test."] != file || len(content) != 2 {
		t.Fatalf("VersionSerials = %v, want the file's serial for both zones", serials)
	}
	// The content fingerprint is the transfer's: it follows the pools'
	// members, not their health.
	again := *snap
	again.Pools = withPool(snap.Pools, 0, snap.Pools.At(0)) // a copy of the table, the same pools
	_, same := VersionSerials(&again)
	if same["example.test."] != content["example.test."] {
		t.Error("the same zone and pools gave another content fingerprint")
	}
	web := poolIndex(t, snap, "web")
	p := *again.Pools.At(web)
	p.Members = p.Members[:len(p.Members)-1]
	again.Pools = withPool(again.Pools, web, &p)
	if _, fewer := VersionSerials(&again); fewer["example.test."] == content["example.test."] {
		t.Error("a pool member less left the content fingerprint as it was")
	}
}

// TestTransferKeyPerRequest: on one TCP connection, a signed query and
// then an unsigned AXFR: the AXFR is unsigned, whatever came before, so
// an allow entry that wants the key refuses it.
func TestTransferKeyPerRequest(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), xfrOptions())
	c, err := dns.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.TsigSecret = map[string]string{"xfr.": testSecret}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	m := newQuery("static.example.test.", dns.TypeA)
	m.SetTsig("xfr.", dns.HmacSHA256, 300, time.Now().Unix())
	if err := c.WriteMsg(m); err != nil {
		t.Fatal(err)
	}
	if r, err := c.ReadMsg(); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("signed query: %v %v", r, err)
	}
	a := new(dns.Msg)
	a.SetAxfr("example.test.")
	if err := c.WriteMsg(a); err != nil {
		t.Fatal(err)
	}
	r, err := c.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeRefused || len(r.Answer) != 0 || r.IsTsig() != nil {
		t.Errorf("unsigned AXFR after a signed query: %s with %d records, TSIG %v; want REFUSED, unsigned", dns.RcodeToString[r.Rcode], len(r.Answer), r.IsTsig())
	}
}

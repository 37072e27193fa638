package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dnssec"
	"github.com/ternlb/tern/dnsserver"
	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/zones"
)

// signedZone has a name of every kind a signed answer must prove: pool,
// static, wildcard, CNAME into a pool, a secure and an insecure
// delegation with glue, an empty non-terminal.
const signedZone = `$ORIGIN example.test.
@ 300 IN SOA ns1 hostmaster 1 3600 600 604800 60
@ 300 IN NS ns1
ns1 300 IN A 192.0.2.53
www 5 IN POOL web
static 300 IN A 192.0.2.10
static 300 IN TXT "hello"
*.wild 300 IN TXT "wild"
alias 300 IN CNAME www
a.b.ent 300 IN A 192.0.2.11
sub 300 IN NS ns.sub
ns.sub 300 IN A 192.0.2.54
sub 300 IN DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF
insecure 300 IN NS ns.insecure
ns.insecure 300 IN A 192.0.2.55
`

// signedNode writes a key (CSK, alg) and runs a node serving signedZone
// signed with it, the pool's members probed on port; it returns the DNS
// address and the key.
func signedNode(t *testing.T, dir string, port int, alg string) (string, *dnssec.Key) {
	t.Helper()
	_, addr, k := signedNodeN(t, dir, port, alg, "")
	return addr, k
}

// signedNodeN is signedNode that returns the node too, its configuration
// ending in extra.
func signedNodeN(t *testing.T, dir string, port int, alg, extra string) (*Node, string, *dnssec.Key) {
	t.Helper()
	a, err := dnssec.Algorithm(alg)
	if err != nil {
		t.Fatal(err)
	}
	k, err := dnssec.Generate("example.test.", a, true)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "keys"), 0o700)
	if _, _, err := k.Write(filepath.Join(dir, "keys")); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`node:
  name: t1
  dns: ["127.0.0.1:0"]
checks:
  h: {type: http, port: %d, path: /healthz, interval: 200ms, timeout: 100ms, fall: 2, rise: 2}
pools:
  web:
    check: h
    members: [{address: 127.0.0.1}, {address: 127.0.0.2}]
zones:
  - file: z.zone
    dnssec: {algorithm: %s, keys: [keys/%s], signature_validity: 24h, cache_size: 64}
%s`, port, alg, k.BaseName(), extra)
	n := runNodeOpts(t, dir, yaml, signedZone, Options{})
	select {
	case <-n.Serving():
	case <-time.After(10 * time.Second):
		t.Fatal("node did not start serving")
	}
	return n, n.DNSAddrs()[0].String(), k
}

// query asks addr with DO set (and CO when co).
func query(t *testing.T, addr, name string, qtype uint16, co bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, true)
	if co {
		m.IsEdns0().Hdr.Ttl |= 0x4000 // CO; SetZ masks it off
	}
	c := &dns.Client{Net: "tcp", Timeout: 3 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s: %v", name, dns.Type(qtype), err)
	}
	return r
}

// verifyAll checks that every RRset of r's answer and authority sections
// (a referral's NS but) has an RRSIG by key that verifies now, with the
// RRset's TTL, and that AD is clear. It returns the number verified.
func verifyAll(t *testing.T, r *dns.Msg, key *dns.DNSKEY) int {
	t.Helper()
	if r.AuthenticatedData {
		t.Errorf("AD set by an authoritative server: %v", r)
	}
	n := 0
	for _, sec := range [][]dns.RR{r.Answer, r.Ns} {
		sets := map[string][]dns.RR{}
		sigs := map[string][]*dns.RRSIG{}
		for _, rr := range sec {
			h := rr.Header()
			if s, ok := rr.(*dns.RRSIG); ok {
				k := strings.ToLower(h.Name) + "/" + dns.Type(s.TypeCovered).String()
				sigs[k] = append(sigs[k], s)
				continue
			}
			k := strings.ToLower(h.Name) + "/" + dns.Type(h.Rrtype).String()
			sets[k] = append(sets[k], rr)
		}
		for k, set := range sets {
			if set[0].Header().Rrtype == dns.TypeNS && !r.Authoritative {
				if len(sigs[k]) > 0 {
					t.Errorf("%s: a referral's NS RRset is signed", k)
				}
				continue
			}
			if len(sigs[k]) == 0 {
				t.Errorf("%s: no RRSIG in %v", k, r)
				continue
			}
			for _, s := range sigs[k] {
				if err := s.Verify(key, set); err != nil {
					t.Errorf("%s: RRSIG does not verify: %v", k, err)
				}
				if !s.ValidityPeriod(time.Now()) {
					t.Errorf("%s: RRSIG not valid now", k)
				}
				if s.Hdr.Ttl != set[0].Header().Ttl {
					t.Errorf("%s: RRSIG TTL %d, RRset's %d", k, s.Hdr.Ttl, set[0].Header().Ttl)
				}
				n++
			}
		}
		for _, rr := range r.Extra {
			if _, ok := rr.(*dns.RRSIG); ok && !r.Authoritative {
				t.Errorf("glue signed: %v", rr)
			}
		}
	}
	return n
}

// nsecAt returns the NSEC record at name in r's authority section.
func nsecAt(r *dns.Msg, name string) *dns.NSEC {
	for _, rr := range r.Ns {
		if n, ok := rr.(*dns.NSEC); ok && strings.EqualFold(n.Hdr.Name, name) {
			return n
		}
	}
	return nil
}

// TestSignedAnswers queries a signed node for every kind of answer and
// verifies each signature with the zone's key.
func TestSignedAnswers(t *testing.T) {
	for _, alg := range []string{"ecdsap256sha256", "ed25519"} {
		t.Run(alg, func(t *testing.T) {
			port := freePort(t)
			b1 := &backend{addr: fmt.Sprintf("127.0.0.1:%d", port)}
			b1.start(t)
			defer b1.stop()
			n, addr, key := signedNodeN(t, t.TempDir(), port, alg, "")

			// The DNSKEY RRset is the key's, self-signed; CDS is its DS.
			r := query(t, addr, "example.test.", dns.TypeDNSKEY, false)
			if len(r.Answer) < 2 || verifyAll(t, r, key.DNSKEY) == 0 {
				t.Fatalf("DNSKEY: %v", r)
			}
			r = query(t, addr, "example.test.", dns.TypeCDS, false)
			if cds, ok := r.Answer[0].(*dns.CDS); !ok || cds.Digest != key.DS(0).Digest {
				t.Errorf("CDS: %v, want the key's DS", r.Answer)
			}
			verifyAll(t, r, key.DNSKEY)

			for _, tc := range []struct {
				name  string
				qtype uint16
				check func(*dns.Msg) error
			}{
				{"www.example.test.", dns.TypeA, wantAnswers(1, dns.TypeA)},
				{"static.example.test.", dns.TypeA, wantAnswers(1, dns.TypeA)},
				{"static.example.test.", dns.TypeTXT, wantAnswers(1, dns.TypeTXT)},
				{"example.test.", dns.TypeSOA, wantAnswers(1, dns.TypeSOA)},
				{"example.test.", dns.TypeNS, wantAnswers(1, dns.TypeNS)},
				{"x.wild.example.test.", dns.TypeTXT, wantAnswers(1, dns.TypeTXT)},
				{"alias.example.test.", dns.TypeA, wantAnswers(2, dns.TypeCNAME, dns.TypeA)},
				{"nothere.example.test.", dns.TypeA, wantDenial("nothere.example.test.", true)},
				{"static.example.test.", dns.TypeMX, wantDenial("static.example.test.", false)},
				{"www.example.test.", dns.TypeMX, wantDenial("www.example.test.", false)},
				{"www.example.test.", dns.TypeAAAA, wantDenial("www.example.test.", false)},
				{"b.ent.example.test.", dns.TypeA, wantDenial("b.ent.example.test.", false)},
				{"x.wild.example.test.", dns.TypeA, wantDenial("x.wild.example.test.", false)},
				{"host.sub.example.test.", dns.TypeA, wantReferral(dns.TypeDS)},
				{"host.insecure.example.test.", dns.TypeA, wantReferral(dns.TypeNSEC)},
				{"sub.example.test.", dns.TypeDS, wantAnswers(1, dns.TypeDS)},
			} {
				r := query(t, addr, tc.name, tc.qtype, false)
				if err := tc.check(r); err != nil {
					t.Errorf("%s %s: %v\n%v", tc.name, dns.Type(tc.qtype), err, r)
				}
				verifyAll(t, r, key.DNSKEY)
			}

			// RFC 9824 4: a resolver that sets CO gets NXDOMAIN back.
			if r := query(t, addr, "nothere.example.test.", dns.TypeA, true); r.Rcode != dns.RcodeNameError {
				t.Errorf("with CO: rcode %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
			}
			// Without DO: no signatures, NXDOMAIN as ever.
			m := new(dns.Msg)
			m.SetQuestion("nothere.example.test.", dns.TypeA)
			r, err := dns.Exchange(m, addr)
			if err != nil || r.Rcode != dns.RcodeNameError || len(r.Ns) != 1 {
				t.Errorf("without DO: %v %v", err, r)
			}
			m.SetQuestion("static.example.test.", dns.TypeA)
			if r, err = dns.Exchange(m, addr); err != nil || len(r.Answer) != 1 {
				t.Errorf("without DO: %v %v", err, r)
			}

			// The pool's answer is signed once, then comes from the cache,
			// once the members' states have settled (127.0.0.2 goes down
			// at its second failed probe, which changes the RRset the cache
			// is keyed by) and the settled answer has been signed.
			eventually.True(t, 5*time.Second, func() bool {
				ps, err := (apiPools{n}).Pools(context.Background())
				if err != nil || len(ps) != 1 {
					return false
				}
				up := map[string]bool{}
				for _, m := range ps[0].Members {
					up[m.Address] = m.Up
				}
				return len(up) == 2 && up["127.0.0.1"] && !up["127.0.0.2"] // 127.0.0.2 has no backend: down after fall 2
			}, "127.0.0.1 up and 127.0.0.2 down")
			query(t, addr, "www.example.test.", dns.TypeA, false)
			hits := func() (h, m float64) {
				mfs, err := n.Registry().Gather()
				if err != nil {
					t.Fatal(err)
				}
				for _, mf := range mfs {
					for _, mt := range mf.GetMetric() {
						switch mf.GetName() {
						case "tern_dnssec_signature_cache_hits_total":
							h += mt.GetCounter().GetValue()
						case "tern_dnssec_signature_cache_misses_total":
							m += mt.GetCounter().GetValue()
						}
					}
				}
				return h, m
			}
			h0, m0 := hits()
			for range 5 {
				query(t, addr, "www.example.test.", dns.TypeA, false)
			}
			if h1, m1 := hits(); h1 < h0+5 || m1 != m0 || m0 == 0 {
				t.Errorf("cache hits %v -> %v, misses %v -> %v: want 5 more hits, no more misses", h0, h1, m0, m1)
			}
		})
	}
}

func wantAnswers(n int, types ...uint16) func(*dns.Msg) error {
	return func(r *dns.Msg) error {
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
			return fmt.Errorf("rcode %s aa %v", dns.RcodeToString[r.Rcode], r.Authoritative)
		}
		var got []uint16
		for _, rr := range r.Answer {
			if t := rr.Header().Rrtype; t != dns.TypeRRSIG && !slices.Contains(got, t) {
				got = append(got, t)
			}
		}
		if !slices.Equal(got, types) {
			return fmt.Errorf("answer types %v, want %v", got, types)
		}
		return nil
	}
}

// wantDenial wants RFC 9824's answer: NOERROR, SOA and one NSEC at the
// query name, next name \000.qname, NXNAME in the bitmap for a name that
// does not exist, else not the qtype.
func wantDenial(name string, nx bool) func(*dns.Msg) error {
	return func(r *dns.Msg) error {
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 {
			return fmt.Errorf("rcode %s, %d answers: want NOERROR and none", dns.RcodeToString[r.Rcode], len(r.Answer))
		}
		n := nsecAt(r, name)
		if n == nil {
			return fmt.Errorf("no NSEC at %s", name)
		}
		if n.NextDomain != `\000.`+name {
			return fmt.Errorf("NSEC next %s", n.NextDomain)
		}
		if slices.Contains(n.TypeBitMap, r.Question[0].Qtype) {
			return fmt.Errorf("NSEC bitmap %v has the qtype", n.TypeBitMap)
		}
		if slices.Contains(n.TypeBitMap, dnssec.TypeNXNAME) != nx {
			return fmt.Errorf("NSEC bitmap %v: NXNAME must be there just when the name does not exist", n.TypeBitMap)
		}
		return nil
	}
}

// wantReferral wants a referral with the child's DS, or (an insecure
// delegation) an NSEC at the cut without DS.
func wantReferral(proof uint16) func(*dns.Msg) error {
	return func(r *dns.Msg) error {
		if r.Authoritative || len(r.Answer) != 0 {
			return fmt.Errorf("not a referral")
		}
		for _, rr := range r.Ns {
			if rr.Header().Rrtype == proof {
				if n, ok := rr.(*dns.NSEC); ok && (slices.Contains(n.TypeBitMap, dns.TypeDS) || !slices.Contains(n.TypeBitMap, dns.TypeNS)) {
					return fmt.Errorf("NSEC at the cut %v: want NS, no DS", n.TypeBitMap)
				}
				return nil
			}
		}
		return fmt.Errorf("no %s in the authority section", dns.Type(proof))
	}
}

// needTool skips (or, in CI, fails) without a validator binary.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if _, err := os.Stat("/usr/sbin/" + name); err == nil {
			return "/usr/sbin/" + name
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (make test installs it)", name)
		}
		t.Skipf("%s is not installed", name)
	}
	return p
}

// TestSignedTransfer transfers the signed zone and has ldns-verify-zone
// check every signature and the NSEC chain of what a secondary gets.
func TestSignedTransfer(t *testing.T) {
	verify := needTool(t, "ldns-verify-zone")
	port := freePort(t)
	b1 := &backend{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	b1.start(t)
	defer b1.stop()
	dir := t.TempDir()
	_, addr, key := signedNodeN(t, dir, port, "ecdsap256sha256", "transfer:\n  allow: [{from: 127.0.0.0/8}]\n")
	tr := &dns.Transfer{}
	m := new(dns.Msg)
	m.SetAxfr("example.test.")
	ch, err := tr.In(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	var zone strings.Builder
	var nsec, sigs int
	for env := range ch {
		if env.Error != nil {
			t.Fatal(env.Error)
		}
		for _, rr := range env.RR {
			switch rr.(type) {
			case *dns.NSEC:
				nsec++
			case *dns.RRSIG:
				sigs++
			}
			zone.WriteString(rr.String() + "\n")
		}
	}
	// Apex, ns1, www, static, *.wild, alias, a.b.ent, sub, insecure:
	// every owner but glue has its NSEC.
	if nsec != 9 || sigs == 0 {
		t.Errorf("%d NSEC, %d RRSIG:\n%s", nsec, sigs, zone.String())
	}
	f := filepath.Join(dir, "transferred.zone")
	// AXFR ends with the SOA again: a zone file has it once.
	text := zone.String()
	text = text[:strings.LastIndex(strings.TrimSuffix(text, "\n"), "\n")+1]
	os.WriteFile(f, []byte(text), 0o644)
	anchor := filepath.Join(dir, "anchor.key")
	os.WriteFile(anchor, []byte(key.DNSKEY.String()+"\n"), 0o644)
	out, err := exec.Command(verify, "-k", anchor, "-V", "3", f).CombinedOutput()
	t.Logf("%s", out)
	if err != nil || !strings.Contains(string(out), "Zone is verified and complete") {
		t.Errorf("ldns-verify-zone: %v\n%s\n%s", err, out, text)
	}
}

// TestSignedZoneReused: a compile that leaves a signed zone and its keys
// as they were takes the signed zone of the last compile (no signing);
// a new key signs it again.
func TestSignedZoneReused(t *testing.T) {
	dir := t.TempDir()
	k, _ := dnssec.Generate("example.test.", dns.ECDSAP256SHA256, true)
	k2, _ := dnssec.Generate("example.test.", dns.ECDSAP256SHA256, false)
	for _, key := range []*dnssec.Key{k, k2} {
		if _, _, err := key.Write(dir); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "z.zone"), []byte(signedZone), 0o644)
	cache := newZoneCache()
	write := func(member, keys string) *dnssec.Zone {
		t.Helper()
		os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte(`node: {name: t1, dns: ["127.0.0.1:0"]}
pools:
  web: {members: [{address: `+member+`}]}
zones:
  - file: z.zone
    dnssec: {keys: [`+keys+`]}
`), 0o644)
		cfg, err := config.Load(filepath.Join(dir, "tern.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		snap, ps := compileKeyed(cfg, nil, cache, cfg.HostPath)
		if len(ps) > 0 {
			t.Fatal(ps)
		}
		for _, sz := range snap.DNSSEC {
			return sz
		}
		t.Fatal("no signed zone")
		return nil
	}
	first := write("192.0.2.1", k.BaseName())
	if again := write("192.0.2.2", k.BaseName()); again != first {
		t.Error("a pool's change signed the zone again")
	}
	if rolled := write("192.0.2.2", k.BaseName()+", "+k2.BaseName()); rolled == first || len(rolled.Signer.Keys()) != 2 {
		t.Error("a new key did not sign the zone again")
	}
}

// TestSignedConfigErrors: tern check names the line and what to do for
// each mistake in a zone's dnssec entry.
func TestSignedConfigErrors(t *testing.T) {
	dir := t.TempDir()
	k, _ := dnssec.Generate("example.test.", dns.ECDSAP256SHA256, true)
	other, _ := dnssec.Generate("other.test.", dns.ECDSAP256SHA256, true)
	ed, _ := dnssec.Generate("example.test.", dns.ED25519, true)
	for _, key := range []*dnssec.Key{k, other, ed} {
		if _, _, err := key.Write(dir); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "z.zone"), []byte(signedZone), 0o644)
	for _, tc := range []struct{ entry, want string }{
		{"{keys: [Kmissing]}", "tern dnssec keygen example.test."},
		{"{keys: [" + other.BaseName() + "]}", "is for other.test."},
		{"{keys: [" + ed.BaseName() + "]}", "algorithm 15"},
		{"{algorithm: rsasha1, keys: [" + k.BaseName() + "]}", "write ecdsap256sha256"},
		{"{}", "tern dnssec keygen ZONE"},
		{"{keys: [" + k.BaseName() + "], signature_validity: 1m}", "signature_validity"},
	} {
		os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte(`node: {name: t1, dns: ["127.0.0.1:0"]}
pools:
  web: {members: [{address: 192.0.2.1}]}
zones:
  - file: z.zone
    dnssec: `+tc.entry+`
`), 0o644)
		ps := Check(filepath.Join(dir, "tern.yaml"))
		if len(ps) == 0 || !strings.Contains(ps.Error(), tc.want) || ps[0].Line != 6 {
			t.Errorf("%s: %v, want a problem at line 6 saying %q", tc.entry, ps, tc.want)
		}
	}
}

// TestZSKRoll walks a pre-publication ZSK roll (RFC 7583 3.2) through
// reloads: at every step the DNSKEY RRset holds the keys named, the KSK
// alone signs it, the active ZSK alone signs the rest, and every answer
// verifies from the KSK.
func TestZSKRoll(t *testing.T) {
	dir := t.TempDir()
	ksk, _ := dnssec.Generate("example.test.", dns.ECDSAP256SHA256, true)
	zsk1, _ := dnssec.Generate("example.test.", dns.ECDSAP256SHA256, false)
	zsk2, _ := dnssec.Generate("example.test.", dns.ECDSAP256SHA256, false)
	for _, key := range []*dnssec.Key{ksk, zsk1, zsk2} {
		if _, _, err := key.Write(dir); err != nil {
			t.Fatal(err)
		}
	}
	yaml := func(keys, publish []*dnssec.Key) []byte {
		names := func(ks []*dnssec.Key) string {
			var out []string
			for _, k := range ks {
				out = append(out, k.BaseName())
			}
			return strings.Join(out, ", ")
		}
		return []byte(`node: {name: t1, dns: ["127.0.0.1:0"]}
pools:
  web: {members: [{address: 192.0.2.1}]}
zones:
  - file: z.zone
    dnssec: {keys: [` + names(keys) + `], publish: [` + names(publish) + `]}
`)
	}
	steps := []struct {
		name          string
		keys, publish []*dnssec.Key
		signer        *dnssec.Key
		wantPublished []*dnssec.Key
	}{
		{"old ZSK signs", []*dnssec.Key{ksk, zsk1}, nil, zsk1, []*dnssec.Key{ksk, zsk1}},
		{"new ZSK published", []*dnssec.Key{ksk, zsk1}, []*dnssec.Key{zsk2}, zsk1, []*dnssec.Key{ksk, zsk1, zsk2}},
		{"new ZSK signs, old published", []*dnssec.Key{ksk, zsk2}, []*dnssec.Key{zsk1}, zsk2, []*dnssec.Key{ksk, zsk1, zsk2}},
		{"old ZSK removed", []*dnssec.Key{ksk, zsk2}, nil, zsk2, []*dnssec.Key{ksk, zsk2}},
	}
	n := runNodeFiles(t, dir, map[string][]byte{"tern.yaml": yaml(steps[0].keys, nil), "z.zone": []byte(signedZone)}, Options{})
	<-n.Serving()
	addr := n.DNSAddrs()[0].String()
	for i, st := range steps {
		if i > 0 {
			os.WriteFile(filepath.Join(dir, "tern.yaml"), yaml(st.keys, st.publish), 0o644)
			cfg, err := config.Load(filepath.Join(dir, "tern.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Reload(context.Background(), cfg); err != nil {
				t.Fatalf("%s: reload: %v", st.name, err)
			}
		}
		r := query(t, addr, "example.test.", dns.TypeDNSKEY, false)
		var tags []uint16
		for _, rr := range r.Answer {
			if k, ok := rr.(*dns.DNSKEY); ok {
				tags = append(tags, k.KeyTag())
			}
		}
		var want []uint16
		for _, k := range st.wantPublished {
			want = append(want, k.Tag())
		}
		slices.Sort(tags)
		slices.Sort(want)
		if !slices.Equal(tags, want) {
			t.Errorf("%s: DNSKEY tags %v, want %v", st.name, tags, want)
		}
		for _, q := range []struct {
			name   string
			qtype  uint16
			signer *dnssec.Key
		}{{"example.test.", dns.TypeDNSKEY, ksk}, {"static.example.test.", dns.TypeA, st.signer}, {"www.example.test.", dns.TypeA, st.signer}, {"nothere.example.test.", dns.TypeA, st.signer}} {
			r := query(t, addr, q.name, q.qtype, false)
			for _, sec := range [][]dns.RR{r.Answer, r.Ns} {
				for _, rr := range sec {
					if sig, ok := rr.(*dns.RRSIG); ok && sig.KeyTag != q.signer.Tag() {
						t.Errorf("%s: %s %s signed by %d, want %d", st.name, q.name, dns.Type(sig.TypeCovered), sig.KeyTag, q.signer.Tag())
					}
				}
			}
			verifyAll(t, r, q.signer.DNSKEY)
		}
	}
}

// TestCheckWarnsRollTooSoon: a node records the keys it serves in its
// data directory; tern check then warns of a new ZSK that would sign
// before it was published, and of a key removed right after it signed.
func TestCheckWarnsRollTooSoon(t *testing.T) {
	dir := t.TempDir()
	ksk, _ := dnssec.Generate("example.test.", dns.ECDSAP256SHA256, true)
	zsk, _ := dnssec.Generate("example.test.", dns.ECDSAP256SHA256, false)
	nw, _ := dnssec.Generate("example.test.", dns.ECDSAP256SHA256, false)
	for _, key := range []*dnssec.Key{ksk, zsk, nw} {
		if _, _, err := key.Write(dir); err != nil {
			t.Fatal(err)
		}
	}
	yaml := func(keys string) []byte {
		return []byte(`node: {name: t1, dns: ["127.0.0.1:0"], data: data}
pools:
  web: {members: [{address: 192.0.2.1}]}
zones:
  - file: z.zone
    dnssec: {keys: [` + keys + `]}
`)
	}
	runNodeFiles(t, dir, map[string][]byte{"tern.yaml": yaml(ksk.BaseName() + ", " + zsk.BaseName()), "z.zone": []byte(signedZone)}, Options{})
	eventually.True(t, 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(dir, "data", keysFile))
		return err == nil
	}, "the key history written")
	if ps, ws := CheckWarn(filepath.Join(dir, "tern.yaml")); len(ps) > 0 || len(ws) > 0 {
		t.Fatalf("steady: %v %v", ps, ws)
	}
	os.WriteFile(filepath.Join(dir, "tern.yaml"), yaml(ksk.BaseName()+", "+nw.BaseName()), 0o644)
	ps, ws := CheckWarn(filepath.Join(dir, "tern.yaml"))
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	msgs := ws.Error()
	for _, want := range []string{"signs without having been published", "last signed"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("warnings %q, want %q", msgs, want)
		}
	}
	if len(ws) > 0 && ws[0].Line != 6 {
		t.Errorf("warning at line %d, want the dnssec entry's (6)", ws[0].Line)
	}
}

// TestResignLoop: the node's re-signing loop makes a zone's signatures
// again once they are due, without a reload: a zone signed a validity
// period ago is re-signed on the loop's first pass.
func TestResignLoop(t *testing.T) {
	dir := t.TempDir()
	k, _ := dnssec.Generate("example.test.", dns.ECDSAP256SHA256, true)
	if _, _, err := k.Write(dir); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "z.zone"), []byte(signedZone), 0o644)
	os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte(`node: {name: t1, dns: ["127.0.0.1:0"]}
pools:
  web: {members: [{address: 192.0.2.1}]}
zones:
  - file: z.zone
    dnssec: {keys: [`+k.BaseName()+`], signature_validity: 2h}
`), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "tern.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	set, _ := zones.Load(cfg)
	set, signed, ps := signZones(cfg, set, cfg.HostPath, nil, time.Now().Add(-2*time.Hour))
	if len(ps) > 0 {
		t.Fatal(ps)
	}
	snap := &dnsserver.Snapshot{Zones: set, DNSSEC: signed}
	var sz *dnssec.Zone
	for _, z := range signed {
		sz = z
	}
	if !sz.RefreshDue().Before(time.Now()) {
		t.Fatal("the test zone is not due")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		resign(ctx, func() *dnsserver.Snapshot { return snap }, time.Hour, "", slog.New(slog.DiscardHandler))
		close(done)
	}()
	eventually.True(t, 10*time.Second, func() bool { return sz.RefreshDue().After(time.Now()) }, "the zone re-signed")
	cancel()
	<-done
	r := snap.Zones.Zones()[0].NS()
	for rd := range dnssec.Sigs(sz.Static(r)) {
		rr, _, err := dns.UnpackRRWithHeader(dns.RR_Header{Name: r.Owner(), Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Rdlength: uint16(len(rd))}, rd, 0)
		if err != nil {
			t.Fatal(err)
		}
		if sig := rr.(*dns.RRSIG); !sig.ValidityPeriod(time.Now().Add(time.Hour)) {
			t.Errorf("re-made signature not valid an hour from now: %v", sig)
		}
	}
}

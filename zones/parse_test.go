package zones

import (
	"fmt"
	"testing"
	"testing/fstest"

	"github.com/miekg/dns"
)

// TestRecordPositions checks the file and line each record is attributed
// to, which every problem message depends on: comments, blank lines,
// directives, multi-line records, blank owners, CRLF line ends, nested
// $INCLUDEs resolved relative to the including file, and $GENERATE.
func TestRecordPositions(t *testing.T) {
	fsys := fstest.MapFS{
		"conf/zones/z.zone": {Data: []byte(`; a comment
$ORIGIN example.test.
$TTL 300

@   IN SOA ns1 hostmaster (
        1     ; serial
        3600 600 604800 60 )
    IN NS ns1
$INCLUDE inc/a.zone sub
ns1 IN A 192.0.2.1
$ttl 60
   ; indented comment
multi IN TXT ( "one"
               "two" )
crlf IN A 192.0.2.2` + "\r\n" + `crlf2 IN A 192.0.2.3` + "\r\n" + `$GENERATE 1-2 host$ A 192.0.2.$
last IN TXT "no newline at the end"`)},
		"conf/zones/inc/a.zone": {Data: []byte(`
a IN TXT "in a, origin sub"
$INCLUDE b.zone
$INCLUDE ../common.zone
after-b IN TXT x
`)},
		"conf/zones/inc/b.zone":  {Data: []byte("b IN TXT \"in b\"\n")},
		"conf/zones/common.zone": {Data: []byte("\n\n\ncommon IN TXT \"in common\"\n")},
	}
	type entry struct {
		rr   dns.RR
		file string
		line int
	}
	var entries []entry
	ps, syntaxErr := read(fsys, "conf/zones/z.zone", "conf/zones/z.zone", "", mustRead(t, fsys, "conf/zones/z.zone"),
		func(rr dns.RR, file string, line int) { entries = append(entries, entry{rr, file, line}) })
	if len(ps) > 0 || syntaxErr {
		t.Fatalf("problems: %v", ps)
	}
	want := []string{
		"conf/zones/z.zone:5 example.test. SOA",
		"conf/zones/z.zone:8 example.test. NS",
		"conf/zones/inc/a.zone:2 a.sub.example.test. TXT",
		"conf/zones/inc/b.zone:1 b.sub.example.test. TXT",
		"conf/zones/common.zone:4 common.sub.example.test. TXT",
		"conf/zones/inc/a.zone:5 after-b.sub.example.test. TXT",
		"conf/zones/z.zone:10 ns1.example.test. A",
		"conf/zones/z.zone:13 multi.example.test. TXT",
		"conf/zones/z.zone:15 crlf.example.test. A",
		"conf/zones/z.zone:16 crlf2.example.test. A",
		"conf/zones/z.zone:17 host1.example.test. A",
		"conf/zones/z.zone:17 host2.example.test. A",
		"conf/zones/z.zone:18 last.example.test. TXT",
	}
	if len(entries) != len(want) {
		for _, e := range entries {
			t.Logf("%s:%d %s", e.file, e.line, e.rr)
		}
		t.Fatalf("got %d records, want %d", len(entries), len(want))
	}
	for i, e := range entries {
		got := fmt.Sprintf("%s:%d %s %s", e.file, e.line, e.rr.Header().Name, dns.Type(e.rr.Header().Rrtype))
		if got != want[i] {
			t.Errorf("record %d: got %q, want %q", i, got, want[i])
		}
	}
	if ttl := entries[7].rr.Header().Ttl; ttl != 60 {
		t.Errorf("$ttl 60 not applied: %d", ttl)
	}
}

func mustRead(t testing.TB, fsys fstest.MapFS, name string) []byte {
	t.Helper()
	f, ok := fsys[name]
	if !ok {
		t.Fatalf("no %s", name)
	}
	return f.Data
}

func TestPOOLType(t *testing.T) {
	RegisterPOOL()
	RegisterPOOL() // idempotent
	rr, err := dns.NewRR("www.example.test. 30 IN POOL web")
	if err != nil {
		t.Fatal(err)
	}
	if rr.Header().Rrtype != TypePOOL {
		t.Fatalf("type %d, want %d", rr.Header().Rrtype, TypePOOL)
	}
	if p, ok := poolOf(rr); !ok || p != "web" {
		t.Fatalf("pool %q %v", p, ok)
	}
	if got := rr.String(); got != "www.example.test.\t30\tIN\tPOOL\tweb" {
		t.Errorf("String() = %q", got)
	}
	// Wire round trip, and the RFC 3597 generic form parses to the same.
	buf := make([]byte, 512)
	off, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := dns.UnpackRR(buf[:off], 0)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := poolOf(back); p != "web" {
		t.Errorf("unpacked pool %q", p)
	}
	generic, err := dns.NewRR(`www.example.test. 30 IN TYPE65280 \# 4 03776562`)
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := poolOf(generic); p != "web" {
		t.Errorf("generic form gives pool %q", p)
	}
	cp := dns.Copy(rr)
	if p, _ := poolOf(cp); p != "web" {
		t.Errorf("copy gives pool %q", p)
	}
	var short POOL
	if _, err := short.Unpack([]byte{5, 'a'}); err == nil {
		t.Errorf("Unpack of a truncated string: no error")
	}
}

package zones

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

// head is a valid zone's start: lines 1-6.
const head = `$ORIGIN example.test.
$TTL 300
@   IN SOA ns1 hostmaster ( 1 3600
        600 604800 60 )
@   IN NS  ns1
ns1 IN A   192.0.2.1
`

var testPools = map[string]int{"api": 0, "web": 1}

// want is one expected problem: its position exactly, and a phrase of its
// message.
type want struct {
	pos    string // "file:line" or "file" when the problem has no line
	phrase string
}

func TestValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		files  map[string]string // z.zone is the zone file
		origin string
		want   []want
	}{
		{
			name:  "valid",
			files: map[string]string{"z.zone": head + "www IN POOL web\nwww IN TXT \"beside a pool\"\n"},
		},
		{
			name:   "no SOA",
			files:  map[string]string{"z.zone": "@ IN NS ns1\nns1 IN A 192.0.2.1\n"},
			origin: "example.test.",
			want:   []want{{"d/z.zone", "has no SOA record"}},
		},
		{
			name:  "no SOA and no origin",
			files: map[string]string{"z.zone": "ns1.example.test. 300 IN A 192.0.2.1\n"},
			want:  []want{{"d/z.zone", "no SOA record, so the zone has no name"}},
		},
		{
			name:  "second SOA",
			files: map[string]string{"z.zone": head + "@ IN SOA ns2 hostmaster 2 3600 600 604800 60\n"},
			want:  []want{{"d/z.zone:7", "second SOA record at the apex (the first is at line 3)"}},
		},
		{
			name:  "SOA below the apex",
			files: map[string]string{"z.zone": head + "sub IN SOA ns1 hostmaster 2 3600 600 604800 60\n"},
			want:  []want{{"d/z.zone:7", "SOA record at sub.example.test.: a zone's only SOA belongs at its apex example.test."}},
		},
		{
			name:   "origin from the configuration, SOA elsewhere",
			files:  map[string]string{"z.zone": head},
			origin: "other.test.",
			want: []want{
				{"d/z.zone", "zone other.test. has no SOA record"},
				{"d/z.zone", "zone other.test. has no NS records"},
				{"d/z.zone:3", "outside the zone other.test."},
				{"d/z.zone:5", "outside the zone other.test."},
				{"d/z.zone:6", "outside the zone other.test."},
			},
		},
		{
			name:  "no NS at the apex",
			files: map[string]string{"z.zone": "$ORIGIN example.test.\n$TTL 60\n\n@ IN SOA ns1 hostmaster 1 3600 600 604800 60\nns1 IN A 192.0.2.1\n"},
			want:  []want{{"d/z.zone:4", "has no NS records at its apex"}},
		},
		{
			name:  "CNAME beside other data",
			files: map[string]string{"z.zone": head + "www IN CNAME ns1\nwww IN TXT \"x\"\nwww IN A 192.0.2.9\n@ IN CNAME ns1\n"},
			want: []want{
				{"d/z.zone:8", "a CNAME (at line 7) and TXT records"},
				{"d/z.zone:9", "a CNAME (at line 7) and A records"},
				{"d/z.zone:3", "a CNAME (at line 10) and SOA records"},
				{"d/z.zone:5", "a CNAME (at line 10) and NS records"},
			},
		},
		{
			name:  "two CNAMEs",
			files: map[string]string{"z.zone": head + "www IN CNAME ns1\nwww IN CNAME ns2\n"},
			want:  []want{{"d/z.zone:8", "more than one CNAME (the first is at line 7)"}},
		},
		{
			name:  "data outside the zone",
			files: map[string]string{"z.zone": head + "www.other.test. IN A 192.0.2.2\n$ORIGIN test.\nx IN A 192.0.2.3\n"},
			want: []want{
				{"d/z.zone:7", "www.other.test. A is outside the zone example.test."},
				{"d/z.zone:9", "x.test. A is outside the zone example.test."},
			},
		},
		{
			name:  "unknown pool",
			files: map[string]string{"z.zone": head + "www IN POOL nope\napi IN POOL API\n"},
			want: []want{
				{"d/z.zone:7", `pool "nope" is not in the configuration (its pools: api, web)`},
				{"d/z.zone:8", `did you mean "api"?`},
			},
		},
		{
			name:  "POOL without a pool name",
			files: map[string]string{"z.zone": head + "www IN POOL web extra\nok IN POOL web\n"},
			want:  []want{{"d/z.zone:7", "POOL takes exactly one pool name"}},
		},
		{
			name:  "POOL beside A, AAAA and CNAME",
			files: map[string]string{"z.zone": head + "www IN POOL web\nwww IN A 192.0.2.7\nwww IN AAAA 2001:db8::7\napi IN POOL api\napi IN CNAME www\n"},
			want: []want{
				{"d/z.zone:8", "has a POOL record (at line 7) and A records"},
				{"d/z.zone:9", "has a POOL record (at line 7) and AAAA records"},
				{"d/z.zone:11", "has a POOL record (at line 10) and CNAME records"},
			},
		},
		{
			name:  "two POOLs at a name",
			files: map[string]string{"z.zone": head + "www IN POOL web\nwww IN POOL api\nwww IN POOL web\n"},
			want:  []want{{"d/z.zone:8", "more than one POOL record (the first, naming web, is at line 7)"}},
		},
		{
			name: "occluded data below a delegation",
			files: map[string]string{"z.zone": head + `sub     IN NS  ns.sub
sub     IN DS  12345 13 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ns.sub  IN A   192.0.2.53
ns.sub  IN AAAA 2001:db8::53
sub     IN TXT "at the cut"
www.sub IN A   192.0.2.80
deep.sub IN NS ns.deep.sub
x.y.sub IN POOL web
`},
			want: []want{
				{"d/z.zone:11", "sub.example.test. TXT is at the delegation of sub.example.test. (NS at line 7)"},
				{"d/z.zone:12", "www.sub.example.test. A is at or below the delegation of sub.example.test. (at line 7) and no NS record names it"},
				{"d/z.zone:13", "deep.sub.example.test. NS is below the delegation of sub.example.test."},
				{"d/z.zone:14", "x.y.sub.example.test. POOL is below the delegation"},
			},
		},
		{
			name:  "wildcard delegation",
			files: map[string]string{"z.zone": head + "*.w IN NS ns1\n"},
			want:  []want{{"d/z.zone:7", "a wildcard cannot be a delegation"}},
		},
		{
			name:  "TTLs of an RRset differ",
			files: map[string]string{"z.zone": head + "www 60 IN A 192.0.2.1\nwww 120 IN A 192.0.2.2\nwww 60 IN A 192.0.2.1\nwww 90 IN A 192.0.2.1\napi 30 IN POOL api\napi 60 IN POOL api\n"},
			want: []want{
				{"d/z.zone:8", "TTL 120 differs from TTL 60 of the same RRset at line 7"},
				{"d/z.zone:10", "www.example.test. A is written again with TTL 90; at line 7 its TTL is 60"},
				{"d/z.zone:12", "api.example.test. POOL is written again with TTL 60; at line 11 its TTL is 30"},
			},
		},
		{
			name:  "class other than IN",
			files: map[string]string{"z.zone": head + "www CH TXT x\n"},
			want:  []want{{"d/z.zone:7", "class CH: Tern serves class IN only"}},
		},
		{
			name:  "DNAME",
			files: map[string]string{"z.zone": head + "old IN DNAME new.test.\n"},
			want:  []want{{"d/z.zone:7", "old.example.test. DNAME: Tern does not implement DNAME"}},
		},
		{
			name:  "record without data",
			files: map[string]string{"z.zone": head + "www IN A\n"},
			want:  []want{{"d/z.zone:7", "www.example.test. A has no data"}},
		},
		{
			name:  "meta type",
			files: map[string]string{"z.zone": head + "www IN TYPE255 \\# 0\n"},
			want:  []want{{"d/z.zone:7", "ANY is not a record type a zone can hold"}},
		},
		{
			name:  "syntax error stops the parse, earlier problems stay",
			files: map[string]string{"z.zone": head + "out.test. IN A 192.0.2.1\nwww IN A 192.0.2.300\nlater.test. IN A 192.0.2.1\n"},
			want: []want{
				{"d/z.zone:7", "outside the zone"},
				{"d/z.zone:8", `syntax error: bad A A: "192.0.2.300"`},
			},
		},
		{
			name:  "syntax error before NS: no missing-NS problem",
			files: map[string]string{"z.zone": "$ORIGIN example.test.\n$TTL 60\n@ IN SOA ns1 hostmaster 1 3600 600 604800 60\n@ IN NS ns1 (\n"},
			want:  []want{{"d/z.zone:4", "syntax error"}},
		},
		{
			name:  "relative name without an origin",
			files: map[string]string{"z.zone": "; no origin\nwww 60 IN A 192.0.2.1\n"},
			want:  []want{{"d/z.zone:2", `relative owner name "www" without an origin`}},
		},
		{
			name: "syntax error in an included file",
			files: map[string]string{
				"z.zone":     head + "$INCLUDE inc/a.zone\n",
				"inc/a.zone": "; included\n\nok IN A 192.0.2.1\nbad IN AAAA 192.0.2.1\n",
			},
			want: []want{{"d/inc/a.zone:4", `syntax error: bad AAAA AAAA: "192.0.2.1"`}},
		},
		{
			name: "problems in an included file",
			files: map[string]string{
				"z.zone":     head + "$INCLUDE inc/a.zone\nwww IN CNAME ns1\n",
				"inc/a.zone": "; included\nwww IN TXT x\nother.test. IN A 192.0.2.1\n",
			},
			want: []want{
				{"d/inc/a.zone:2", "a CNAME (at d/z.zone:8) and TXT records"},
				{"d/inc/a.zone:3", "outside the zone"},
			},
		},
		{
			name:  "$INCLUDE outside the zone's directory",
			files: map[string]string{"z.zone": head + "$INCLUDE ../secret\n", "../secret": "x"},
			want:  []want{{"d/z.zone:7", `the file is outside "d", the zone file's directory`}},
		},
		{
			name:  "absolute $INCLUDE",
			files: map[string]string{"z.zone": head + "$INCLUDE /etc/passwd\n"},
			want:  []want{{"d/z.zone:7", "outside"}},
		},
		{
			name:  "$INCLUDE of a missing file",
			files: map[string]string{"z.zone": head + "\n$INCLUDE nope.zone\n"},
			want:  []want{{"d/z.zone:8", `$INCLUDE "d/nope.zone": file does not exist`}},
		},
		{
			name:  "$INCLUDE loop",
			files: map[string]string{"z.zone": head + "$INCLUDE loop.zone\n", "loop.zone": "$INCLUDE loop.zone\n"},
			want:  []want{{"d/loop.zone:1", "too deeply nested $INCLUDE"}},
		},
		{
			name: "every problem of a zone at once",
			files: map[string]string{"z.zone": `$ORIGIN example.test.
$TTL 300
@ IN SOA ns1 hostmaster 1 3600 600 604800 60
www IN POOL nope
www IN A 192.0.2.1
alias IN CNAME www
alias IN MX 10 www
out.test. IN TXT x
`},
			want: []want{
				{"d/z.zone:3", "no NS records"},
				{"d/z.zone:4", `pool "nope"`},
				{"d/z.zone:7", "a CNAME (at line 6) and MX records"},
				{"d/z.zone:8", "outside the zone"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for name, text := range tc.files {
				if strings.HasPrefix(name, "../") {
					fsys[strings.TrimPrefix(name, "../")] = &fstest.MapFile{Data: []byte(text)}
				} else {
					fsys["zones/"+name] = &fstest.MapFile{Data: []byte(text)}
				}
			}
			z, ps := Parse(fsys, "zones/z.zone", "d/z.zone", tc.origin, testPools)
			if (z == nil) != (len(ps) > 0) {
				t.Errorf("zone %v with %d problems: want a zone exactly when there are none", z, len(ps))
			}
			var got []string
			for _, p := range ps {
				pos := p.File
				if p.Line > 0 {
					pos = fmt.Sprintf("%s:%d", p.File, p.Line)
				}
				got = append(got, pos+": "+p.Msg)
			}
			used := make([]bool, len(got))
		next:
			for _, w := range tc.want {
				for i, g := range got {
					if !used[i] && strings.HasPrefix(g, w.pos+": ") && strings.Contains(g, w.phrase) {
						used[i] = true
						continue next
					}
				}
				t.Errorf("missing problem %s: ...%s...", w.pos, w.phrase)
			}
			for i, g := range got {
				if !used[i] {
					t.Errorf("unexpected problem %s", g)
				}
			}
		})
	}
}

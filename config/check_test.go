package config

import (
	"strings"
	"testing"
	"time"
)

func TestCheckProblems(t *testing.T) {
	tests := []struct {
		name  string
		check string
		want  []string // each a substring of one problem, in line order
	}{
		{"tcp ok", "{type: tcp, port: 80}", nil},
		{"http defaults ok", "{type: http}", nil},
		{"https full ok", "{type: https, method: HEAD, path: /healthz, host: www.example.com, expect_status: [200, 204], expect_body: ok, expect_body_regexp: '^o+k', tls_server_name: www.example.com, tls_skip_verify: true}", nil},
		{"dns ok", "{type: dns, query: www.example.com, qtype: AAAA, expect_rcode: NXDOMAIN, expect_answer: '2001:db8::1'}", nil},
		{"exec ok", "{type: exec, command: [/bin/true]}", nil},
		{"load ok", "{type: load, path: /load, load_smoothing: 1, load_threshold: 0}", nil},
		{"unknown type", "{type: icmp}", []string{`check "t": type "icmp" is not one of`}},
		{"tcp without port", "{type: tcp}", []string{`a tcp check needs port:`}},
		{"bad regexp", "{type: http, expect_body_regexp: 'a('}", []string{`check "t": expect_body_regexp: error parsing regexp`}},
		{"bad method", "{type: http, method: get}", []string{`method "get": write an HTTP method in capitals`}},
		{"relative path", "{type: http, path: healthz}", []string{`path "healthz": write an absolute path`}},
		{"bad status", "{type: http, expect_status: [200, 700]}", []string{`700 is not an HTTP status`}},
		{"dns without query", "{type: dns}", []string{`a dns check needs query:`}},
		{"dns bad qtype and rcode", "{type: dns, query: example.com, qtype: AX, expect_rcode: FINE}", []string{`qtype "AX" is not a DNS type`, `expect_rcode "FINE" is not an rcode`}},
		{"exec without command", "{type: exec}", []string{`an exec check needs command:`}},
		{"body on tcp", "{type: tcp, port: 80, expect_body: ok}", []string{`check "t": expect_body applies to http and https checks, not tcp`}},
		{"dns key on http", "{type: http, query: x.example}", []string{`query applies to dns checks, not http`}},
		{"tls on http", "{type: http, tls_skip_verify: true}", []string{`tls_skip_verify applies to https checks, not http`}},
		{"command on tcp", "{type: tcp, port: 1, command: [x]}", []string{`command applies to exec checks`}},
		{"load smoothing range", "{type: load, load_smoothing: 1.5, load_threshold: -1}", []string{`load_smoothing 1.5`, `load_threshold -1 must not be negative`}},
		{"smoothing on http", "{type: http, load_smoothing: 0.5}", []string{`load_smoothing applies to load checks, not http`}},
		{"rise too large", "{type: tcp, port: 1, rise: 1000}", []string{`rise and fall must be 1 to 100`}},
		{"negative timeout", "{type: tcp, port: 1, timeout: -1s}", []string{`timeout must be positive`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(base, "{type: tcp, port: 80}", tc.check, 1)
			_, ps := Parse("x.yaml", []byte(y))
			if len(ps) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(tc.want), ps)
			}
			for i, w := range tc.want {
				if !strings.Contains(ps[i].String(), w) || ps[i].Line == 0 {
					t.Errorf("problem %d = %q, want a line and %q", i, ps[i].String(), w)
				}
			}
		})
	}
}

func TestCheckDefaults(t *testing.T) {
	y := strings.Replace(base, "  t: {type: tcp, port: 80}\n",
		"  t: {type: tcp, port: 80}\n  h: {type: https}\n  d: {type: dns, query: example.com}\n  l: {type: load, interval: 1s}\n  e: {type: exec, command: [x], interval: 500ms}\n", 1)
	c, ps := Parse("x.yaml", []byte(y))
	if len(ps) != 0 {
		t.Fatal(ps)
	}
	h, d, l, e := c.Checks["h"], c.Checks["d"], c.Checks["l"], c.Checks["e"]
	if h.Port != 443 || h.Method != "GET" || h.Path != "/" || len(h.ExpectStatus) != 1 || h.ExpectStatus[0] != 200 {
		t.Errorf("https defaults: %+v", h)
	}
	if h.Interval.D() != 5*time.Second || h.Timeout.D() != 2*time.Second || h.Rise != 2 || h.Fall != 3 {
		t.Errorf("timing defaults: %+v", h)
	}
	if d.Port != 53 || d.QType != "A" || d.ExpectRcode != "NOERROR" {
		t.Errorf("dns defaults: %+v", d)
	}
	if l.Port != 80 || l.LoadSmoothing != 0.3 || l.LoadThreshold != 0.05 || l.Timeout.D() != time.Second {
		t.Errorf("load defaults: %+v", l)
	}
	if e.Port != 0 || e.Timeout.D() != 500*time.Millisecond {
		t.Errorf("exec defaults: %+v", e)
	}
}

package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReferenceExample(t *testing.T) {
	c, err := Load("../../shared/examples/tern.yaml")
	if err != nil {
		t.Fatalf("reference configuration rejected:\n%v", err)
	}
	if got := c.Pools["web"].Members[0].Weight; got != 2 {
		t.Errorf("web member 0 weight = %d, want 2", got)
	}
	if got := c.Pools["api"].MinHealthy.Of(2); got != 1 {
		t.Errorf("api min_healthy of 2 = %d, want 1", got)
	}
	if got := c.Checks["http-ok"].Interval.D().String(); got != "1s" {
		t.Errorf("http-ok interval = %s", got)
	}
	if got := c.DisplayPath(c.Zones[0].File); got != "../../shared/examples/zones/gslb.example.test.zone" {
		t.Errorf("zone display path = %q", got)
	}
	if got := c.HostPath(c.Geo.Database); !strings.HasSuffix(got, "/shared/testdata/geoip/GeoIP2-City-Test.mmdb") || got[0] != '/' {
		t.Errorf("geo host path = %q", got)
	}
}

const base = `node:
  name: n1
  dns: ["127.0.0.1:5354"]
sites:
  a: {location: [1, 2]}
checks:
  t: {type: tcp, port: 80}
pools:
  p:
    members:
      - {address: 192.0.2.1, site: a}
zones:
  - file: z.zone
`

func TestProblemsEveryOneWithLine(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each a substring of one problem, in line order
	}{
		{"valid", base, nil},
		{"unknown keys all reported", strings.Replace(base, "  name: n1\n", "  name: n1\n  nmae: x\n", 1) + "extra: 1\n",
			[]string{`x.yaml:3: unknown key "nmae"`, `x.yaml:15: unknown key "extra"`}},
		{"bad policy and weight", strings.Replace(base, "    members:\n      - {address: 192.0.2.1, site: a}", "    policy: fastest\n    members:\n      - {address: 192.0.2.1, site: b, weight: -1}", 1),
			[]string{`x.yaml:10: pool "p": policy "fastest"`, `x.yaml:12: pool "p": site "b"`, `x.yaml:12: pool "p": weight -1`}},
		{"bad member address", strings.Replace(base, "192.0.2.1", "300.1.1.1/8", 1),
			[]string{`x.yaml:11: pool "p": "300.1.1.1/8" is neither an IP address nor a host name`}},
		{"mistyped IPv4 member", strings.Replace(base, "192.0.2.1", "127.0.1.300", 1),
			[]string{`x.yaml:11: pool "p": member "127.0.1.300" looks like an IPv4 address but is not one`}},
		{"IPv4 member short of an octet", strings.Replace(base, "192.0.2.1", "192.0.2.", 1),
			[]string{`x.yaml:11: pool "p": member "192.0.2." looks like an IPv4 address but is not one`}},
		{"host name with numeric labels", strings.Replace(base, "192.0.2.1", "10.0.0.web.example", 1), nil},
		{"check timeout", strings.Replace(base, "{type: tcp, port: 80}", "{type: tcp, port: 80, interval: 1s, timeout: 2s}", 1),
			[]string{`x.yaml:7: check "t": timeout 2s is longer than interval 1s`}},
		{"bad duration", strings.Replace(base, "{type: tcp, port: 80}", "{type: tcp, port: 80, interval: soon}", 1),
			[]string{`x.yaml:7: "soon" is not a duration`}},
		{"fallback loop", strings.Replace(base, "  p:\n", "  q:\n    all_down: fallback:p\n    members: [{address: 192.0.2.9}]\n  p:\n    all_down: fallback:q\n", 1),
			[]string{`x.yaml:10: pool "q": all_down fallbacks form a loop`, `x.yaml:13: pool "p": all_down fallbacks form a loop`}},
		{"geo map unknown site", base + "geo:\n  maps:\n    m:\n      \"continent:XX\": [nowhere]\n",
			[]string{`x.yaml:17: geo map "m": "continent:XX"`, `x.yaml:17: geo map "m" key "continent:XX" names site "nowhere"`}},
		{"min_healthy", strings.Replace(base, "    members:", "    min_healthy: 150%\n    members:", 1),
			[]string{`x.yaml:10: min_healthy "150%"`}},
		{"probe wait", strings.Replace(base, "  name: n1\n", "  name: n1\n  probe_wait: 1h\n", 1), []string{`x.yaml:3: probe_wait 1h0m0s: write 0`}},
		{"no zones", strings.Replace(base, "zones:\n  - file: z.zone\n", "", 1), []string{`no zones`}},
		{"duplicate member", strings.Replace(base, "      - {address: 192.0.2.1, site: a}", "      - {address: 192.0.2.1}\n      - {address: 192.0.2.1}", 1),
			[]string{`x.yaml:12: pool "p": member "192.0.2.1" is listed twice`}},
		{"bad probe", strings.Replace(base, "site: a}", "site: a, probe: \"192.0.2.1:99999\"}", 1),
			[]string{`pool "p": probe "192.0.2.1:99999": port "99999" is out of range`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ps := Parse("x.yaml", []byte(tc.yaml))
			if len(ps) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(tc.want), ps)
			}
			for i, w := range tc.want {
				if !strings.Contains(ps[i].String(), w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, ps[i].String(), w)
				}
			}
		})
	}
}

func TestNotYAML(t *testing.T) {
	_, ps := Parse("x.yaml", []byte("node: [\n"))
	if len(ps) != 1 || ps[0].Line == 0 {
		t.Fatalf("want one problem with a line, got %v", ps)
	}
}

func TestMinHealthyOf(t *testing.T) {
	for _, tc := range []struct {
		m    MinHealthy
		n    int
		want int
	}{{MinHealthy{}, 5, 1}, {MinHealthy{Count: 2}, 5, 2}, {MinHealthy{Percent: 50}, 5, 3}, {MinHealthy{Percent: 100}, 4, 4}} {
		if got := tc.m.Of(tc.n); got != tc.want {
			t.Errorf("%+v.Of(%d) = %d, want %d", tc.m, tc.n, got, tc.want)
		}
	}
}

// TestLoadChecksTLSFiles: tern check (config.Load) reports a node.tls file
// that is missing, at its line.
func TestLoadChecksTLSFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tern.yaml")
	os.WriteFile(cfg, []byte(strings.Replace(base, "  dns: [\"127.0.0.1:5354\"]\n", "  dns: [\"127.0.0.1:5354\"]\n  tls: {cert: n1.crt, key: n1.key, ca: ca.crt}\n", 1)), 0o644)
	_, err := Load(cfg)
	var ps Problems
	if !errors.As(err, &ps) || len(ps) == 0 || !strings.Contains(ps.Error(), "tern.yaml:4:") {
		t.Fatalf("missing certificate files: %v, want problems at the tls line", err)
	}
}

// A file that cannot be read is named once, as given, with the reason
// (not the root-relative path Load reads it by).
func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nothere.yaml"))
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.HasSuffix(err.Error(), `nothere.yaml": no such file or directory`) || strings.Count(err.Error(), "nothere.yaml") != 1 {
		t.Errorf("Load: %v", err)
	}
}

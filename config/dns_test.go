package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const secret32 = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=" // 32 bytes

func TestDNSSections(t *testing.T) {
	good := base + `rrl: {responses_per_second: 20, slip: 0, exempt: [192.0.2.0/24, "2001:db8::1"]}
tsig:
  keys:
    xfr: {algorithm: hmac-sha256, secret: ` + secret32 + `}
transfer:
  allow: [{from: 127.0.0.0/8, key: xfr}, {from: 192.0.2.7}]
  notify: [{to: "127.0.0.2:5300", key: xfr}, {to: "192.0.2.8"}]
`
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"valid", good, nil},
		{"rrl ranges", base + "rrl: {responses_per_second: 0, slip: 11, window: 2h, ipv4_prefix: 33, ipv6_prefix: 129, table_size: 10, exempt: [nope]}\n",
			[]string{`x.yaml:14: responses_per_second 0`, `x.yaml:14: slip 11`, `x.yaml:14: window 2h0m0s`, `x.yaml:14: ipv4_prefix 33`,
				`x.yaml:14: ipv6_prefix 129`, `x.yaml:14: table_size 10`, `x.yaml:14: exempt "nope"`}},
		{"tsig keys", base + "tsig:\n  keys:\n    a: {algorithm: hmac-md5, secret: " + secret32 + "}\n    b: {}\n    c: {secret: x, secret_file: f}\n    d: {secret: \"!!\"}\n    e: {secret: YWJj}\n",
			[]string{`x.yaml:16: TSIG algorithm "hmac-md5"`, `x.yaml:17: TSIG key "b" has no secret`, `x.yaml:18: TSIG key "c" has both`,
				`x.yaml:19: TSIG key "d": secret is not base64`, `x.yaml:20: TSIG key "e": secret is 3 bytes`}},
		{"transfer", base + "transfer:\n  allow:\n    - {}\n    - {from: 10.0.0.0/33, key: nokey}\n  notify:\n    - {to: ns.example.com, key: other}\n",
			[]string{`x.yaml:16: a transfer allow entry needs from:`, `x.yaml:17: from "10.0.0.0/33"`, `x.yaml:17: key "nokey" is not under tsig.keys`,
				`x.yaml:19: notify to "ns.example.com"`, `x.yaml:19: key "other" is not under tsig.keys`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, ps := Parse("x.yaml", []byte(tc.yaml))
			if len(ps) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(tc.want), ps)
			}
			for i, w := range tc.want {
				if !strings.Contains(ps[i].String(), w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, ps[i].String(), w)
				}
			}
			if tc.name != "valid" {
				return
			}
			r := c.RRL
			if r.SlipValue() != 0 || r.Window.D() != 15*time.Second || r.IPv4Prefix != 24 || r.IPv6Prefix != 56 || r.TableSize != 65536 {
				t.Errorf("rrl defaults: %+v slip %d", r, r.SlipValue())
			}
			keys, ps := c.TSIGSecrets()
			if len(ps) > 0 || keys["xfr"] != (TSIGSecret{Name: "xfr.", Algorithm: "hmac-sha256.", Secret: secret32}) {
				t.Errorf("TSIGSecrets = %v, %v", keys, ps)
			}
		})
	}
}

func TestNoRRLByDefault(t *testing.T) {
	c, ps := Parse("x.yaml", []byte(base))
	if len(ps) > 0 || c.RRL != nil {
		t.Fatalf("rrl = %+v, %v; want off", c.RRL, ps)
	}
}

// TestTSIGSecretFile reads a key from a file beside the configuration and
// reports a missing or bad one at the line of its secret_file.
func TestTSIGSecretFile(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tern.yaml")
	os.WriteFile(filepath.Join(dir, "z.zone"), []byte("@ 3600 IN SOA ns h 1 2 3 4 5\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "good.key"), []byte(secret32+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "bad.key"), []byte("short\n"), 0o600)
	os.WriteFile(cfg, []byte(base+"tsig:\n  keys:\n    good: {secret_file: good.key}\n    bad: {secret_file: bad.key}\n    gone: {secret_file: gone.key}\n"), 0o644)
	c, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys, ps := c.TSIGSecrets()
	if keys["good"].Secret != secret32 {
		t.Errorf("good key = %+v", keys["good"])
	}
	if len(ps) != 2 || !strings.Contains(ps[0].String(), `tern.yaml:17: TSIG key "bad": secret_file `) ||
		!strings.Contains(ps[1].String(), `tern.yaml:18: TSIG key "gone": secret_file `) || !strings.Contains(ps[1].String(), "no such file") {
		t.Errorf("problems = %v", ps)
	}
}

func TestNotifyAddr(t *testing.T) {
	for in, want := range map[string]string{"192.0.2.1": "192.0.2.1:53", "192.0.2.1:5300": "192.0.2.1:5300", "2001:db8::1": "[2001:db8::1]:53", "[2001:db8::1]:54": "[2001:db8::1]:54"} {
		got, err := NotifyAddr(in)
		if err != nil || got.String() != want {
			t.Errorf("NotifyAddr(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}

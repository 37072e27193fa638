package dnsserver

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Real clients against the server: dig (Debian's bind9-dnsutils) and
// kdig (knot-dnsutils), which the Makefile's test target installs. Each
// test skips when its tool is missing.

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (make test installs it)", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestClientsVerifyTSIG: dig and kdig verify a signed answer to an
// ordinary query, over UDP and TCP.
func TestClientsVerifyTSIG(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{TSIGKeys: []TSIGKey{{Name: "xfr", Secret: testSecret}}})
	host, port, _ := net.SplitHostPort(addr)
	for _, tool := range []string{"dig", "kdig"} {
		for _, transport := range []string{"+notcp", "+tcp"} {
			t.Run(tool+transport, func(t *testing.T) {
				out := runTool(t, tool, "@"+host, "-p", port, "-y", "hmac-sha256:xfr:"+testSecret, transport, "+norec", "static.example.test.", "A")
				if !strings.Contains(out, "192.0.2.100") || !strings.Contains(out, "NOERROR") {
					t.Fatalf("no answer:\n%s", out)
				}
				if !strings.Contains(out, "TSIG PSEUDOSECTION") {
					t.Errorf("answer not signed:\n%s", out)
				}
				for _, bad := range []string{"tsig verify failure", "Couldn't verify", "WARNING", "BADSIG", "BADKEY", "BADTIME"} {
					if strings.Contains(out, bad) {
						t.Errorf("%s reports %q:\n%s", tool, bad, out)
					}
				}
			})
		}
	}
	t.Run("dig with a wrong secret: BADSIG", func(t *testing.T) {
		path, err := exec.LookPath("dig")
		if err != nil {
			t.Skip("dig not installed (make test installs it)")
		}
		out, _ := exec.Command(path, "@"+host, "-p", port, "-y", "hmac-sha256:xfr:d3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmctd3Jvbmc=", "+norec", "+tries=1", "static.example.test.", "A").CombinedOutput()
		if !strings.Contains(string(out), "BADSIG") && !strings.Contains(string(out), "tsig verify failure") {
			t.Errorf("dig did not see the failure:\n%s", out)
		}
	})
}

var digCookie = regexp.MustCompile(`; COOKIE: ([0-9a-f]+) \(good\)`)

// TestDigCookie: dig +cookie gets a server cookie back, and a second query
// sending it is accepted: the same server cookie, "(good)".
func TestDigCookie(t *testing.T) {
	_, addr := startServer(t, testSnapshot(t), Options{})
	host, port, _ := net.SplitHostPort(addr)
	out := runTool(t, "dig", "@"+host, "-p", port, "+cookie", "+norec", "static.example.test.", "A")
	m := digCookie.FindStringSubmatch(out)
	if m == nil || len(m[1]) != 48 {
		t.Fatalf("no good 24-byte cookie in dig's output:\n%s", out)
	}
	for _, transport := range []string{"+notcp", "+tcp"} {
		again := runTool(t, "dig", "@"+host, "-p", port, "+cookie="+m[1], transport, "+norec", "static.example.test.", "A")
		m2 := digCookie.FindStringSubmatch(again)
		if m2 == nil || m2[1] != m[1] {
			t.Errorf("%s: the server cookie %s was not accepted:\n%s", transport, m[1][16:], again)
		}
		if !strings.Contains(again, "192.0.2.100") {
			t.Errorf("%s: no answer:\n%s", transport, again)
		}
	}
}

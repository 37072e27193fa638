package test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ternlb/tern/internal/eventually"
)

// dnsvizNames are the names of the reference zone dnsviz examines: the
// apex, POOL names, static data, a CNAME, a wildcard and a name that
// does not exist. (sub's delegation is left out: its server, 127.0.1.53,
// is nobody.)
var dnsvizNames = []string{
	"gslb.example.test", "www.gslb.example.test", "api.gslb.example.test", "static.gslb.example.test",
	"alias.gslb.example.test", "x.wild.gslb.example.test", "mail.gslb.example.test", "nothere.gslb.example.test",
}

// TestDNSViz runs dnsviz (Debian's dnsviz) against Tern serving the
// reference configuration, as an authoritative server for
// gslb.example.test on both of its name servers' addresses, and asserts
// that dnsviz grok finds no error and no warning in Tern's answers. Only
// inside a network namespace of the test's own with nothing but
// loopback: dnsviz resolves names by itself. The zone is unsigned and has
// no parent here; dnsviz is told not to look above it (the "+"), so
// neither shows.
func TestDNSViz(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	dnsviz, err := exec.LookPath("dnsviz")
	if err != nil {
		t.Skip("dnsviz not installed (make test installs it)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed")
	}
	bin := ternBinary(t)
	ns := fmt.Sprintf("tern-dnsviz-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	nsExec(t, "ip", "-n", ns, "link", "set", "lo", "up")

	// Inside the namespace every port is free: Tern answers on port 53 of
	// both addresses the zone's NS records name.
	dir := copyExample(t, "127.0.0.1:53", "127.0.0.1:8054")
	cfg := filepath.Join(dir, "tern.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b = []byte(strings.Replace(string(b), `dns: ["127.0.0.1:53"]`, `dns: ["127.0.0.1:53", "127.0.0.2:53"]`, 1))
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var log lockedBuffer
	tern := exec.Command("ip", "netns", "exec", ns, bin, "serve", "--config", "tern.yaml")
	tern.Dir = dir
	tern.Stdout, tern.Stderr = &log, &log
	if err := tern.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- tern.Wait() }()
	t.Cleanup(func() {
		tern.Process.Kill()
		<-done
	})
	eventually.True(t, 30*time.Second, func() bool { return strings.Contains(log.String(), "msg=serving") }, "tern to serve")

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	probe := filepath.Join(dir, "probe.json")
	args := append([]string{"netns", "exec", ns, dnsviz, "probe", "-A", "-p", "-o", probe,
		"-x", "gslb.example.test+:ns1.gslb.example.test=127.0.0.1,ns2.gslb.example.test=127.0.0.2"}, dnsvizNames...)
	if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("dnsviz probe: %v\n%s\ntern:\n%s", err, out, log.String())
	}
	// -P: loopback addresses are private, and that is this test's choice.
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, dnsviz, "grok", "-P", "-r", probe).Output()
	if err != nil {
		t.Fatalf("dnsviz grok: %v", err)
	}
	var grok map[string]any
	if err := json.Unmarshal(out, &grok); err != nil {
		t.Fatalf("dnsviz grok output: %v\n%s", err, out)
	}
	for _, name := range dnsvizNames {
		r, _ := grok[name+"."].(map[string]any)
		if r == nil {
			t.Errorf("%s: not in dnsviz grok's output", name)
			continue
		}
		want := "NOERROR"
		if strings.HasPrefix(name, "nothere.") {
			want = "NXDOMAIN"
		}
		if r["status"] != want {
			t.Errorf("%s: status %v, want %s", name, r["status"], want)
		}
	}
	for _, f := range grokFindings(grok, "") {
		t.Errorf("dnsviz: %s", f)
	}
	// dnsviz checks cookies too (RFC 7873): its second query sends the
	// server cookie it learned, and Tern must accept it.
	statuses := grokCookies(grok)
	const accepted = "VALID_SERVER_COOKIE/CLIENT_AND_SERVER_COOKIE"
	if !slices.Contains(statuses, accepted) {
		t.Errorf("dnsviz never saw its server cookie accepted: %v", statuses)
	}
	for _, s := range statuses {
		switch s {
		case accepted, "CLIENT_COOKIE_ONLY/CLIENT_AND_SERVER_COOKIE", "NO_COOKIE/NO_COOKIE_OPT":
		default:
			t.Errorf("dnsviz cookie status %s", s)
		}
	}
}

// grokFindings lists every error and warning in dnsviz grok's output,
// with where it was found.
func grokFindings(v any, path string) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if k != "errors" && k != "warnings" {
				out = append(out, grokFindings(v[k], path+"/"+k)...)
				continue
			}
			list, _ := v[k].([]any)
			for _, e := range list {
				m, _ := e.(map[string]any)
				out = append(out, fmt.Sprintf("%s %s: %v: %v (servers %v)", path, strings.TrimSuffix(k, "s"), m["code"], m["description"], m["servers"]))
			}
		}
	case []any:
		for i, e := range v {
			out = append(out, grokFindings(e, fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	return out
}

// grokCookies lists the request/response cookie statuses dnsviz grok
// reports per server.
func grokCookies(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k != "cookie_status" {
				out = append(out, grokCookies(e)...)
				continue
			}
			servers, _ := e.(map[string]any)
			for _, s := range servers {
				m, _ := s.(map[string]any)
				out = append(out, fmt.Sprintf("%v/%v", m["request"], m["response"]))
			}
		}
	case []any:
		for _, e := range v {
			out = append(out, grokCookies(e)...)
		}
	}
	return out
}

// TestCheckWarnsUndelegatedChild: tern check warns, and still passes,
// when it serves a child zone that its served parent does not delegate.
func TestCheckWarnsUndelegatedChild(t *testing.T) {
	bin := ternBinary(t)
	dir := t.TempDir()
	files := map[string]string{
		"tern.yaml": "node: {name: n1}\nzones:\n  - file: parent.zone\n  - file: child.zone\n",
		"parent.zone": `$ORIGIN example.test.
@ 300 IN SOA ns1 hostmaster 1 3600 600 604800 60
@ 300 IN NS ns1
ns1 300 IN A 192.0.2.53
`,
		"child.zone": `$ORIGIN sub.example.test.
$TTL 300
@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 604800 60
@ IN NS ns1.example.test.
`,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func() string {
		cmd := exec.Command(bin, "check", "--config", "tern.yaml")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tern check: %v (a warning must not fail it)\n%s", err, out)
		}
		return string(out)
	}
	out := check()
	if want := "child.zone:3: warning: zone sub.example.test. is served with its parent zone example.test."; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	if !strings.Contains(out, "tern.yaml: ok") {
		t.Errorf("output lacks ok:\n%s", out)
	}
	// With the delegation in the parent, no warning.
	if err := os.WriteFile(filepath.Join(dir, "parent.zone"), []byte(files["parent.zone"]+"sub 300 IN NS ns1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := check(); strings.Contains(out, "warning") {
		t.Errorf("a warning with the delegation in place:\n%s", out)
	}
}

package node

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/dnssec"
	"github.com/ternlb/tern/internal/eventually"
)

// The answers of a signed node checked by real validators: BIND's delv
// with the zone's key as its trust anchor, and unbound as a validating
// resolver stubbed to the node on loopback.

// validated are the questions every validator must find secure: pool,
// static, wildcard, CNAME, NXDOMAIN, NODATA, DNSKEY.
var validated = []struct {
	name  string
	qtype uint16
}{
	{"www.example.test.", dns.TypeA},
	{"static.example.test.", dns.TypeA},
	{"static.example.test.", dns.TypeTXT},
	{"x.wild.example.test.", dns.TypeTXT},
	{"alias.example.test.", dns.TypeA},
	{"nothere.example.test.", dns.TypeA},
	{"static.example.test.", dns.TypeMX},
	{"www.example.test.", dns.TypeAAAA},
	{"b.ent.example.test.", dns.TypeA},
	{"x.wild.example.test.", dns.TypeA},
	{"example.test.", dns.TypeDNSKEY},
	{"example.test.", dns.TypeSOA},
	{"sub.example.test.", dns.TypeDS},
}

// signedPoolNode runs a signed node (signedNode) whose pool members' two
// backends are up; the test stops the second to change the answer. It
// returns the node's folder and DNS address, the key and that backend.
func signedPoolNode(t *testing.T) (string, string, *dnssec.Key, *backend) {
	t.Helper()
	port := freePort(t)
	b1 := &backend{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	b2 := &backend{addr: fmt.Sprintf("127.0.0.2:%d", port)}
	b1.start(t)
	b2.start(t)
	t.Cleanup(b1.stop)
	dir := t.TempDir()
	addr, key := signedNode(t, dir, port, "ecdsap256sha256")
	return dir, addr, key, b2
}

// TestDelvValidates runs delv for each question and wants "fully
// validated", then takes a pool member down and wants the changed answer
// validated too.
func TestDelvValidates(t *testing.T) {
	delv := needTool(t, "delv")
	dir, addr, key, b2 := signedPoolNode(t)
	host, p, _ := net.SplitHostPort(addr)
	anchors := filepath.Join(dir, "anchors.conf")
	d := key.DNSKEY
	os.WriteFile(anchors, fmt.Appendf(nil, "trust-anchors { %s static-key %d %d %d \"%s\"; };\n", d.Hdr.Name, d.Flags, d.Protocol, d.Algorithm, d.PublicKey), 0o644)
	run := func(name string, qtype uint16) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, delv, "-a", anchors, "+root="+d.Hdr.Name, "@"+host, "-p", p, name, dns.Type(qtype).String()).CombinedOutput()
		if err != nil && !bytes.Contains(out, []byte("validated")) {
			t.Errorf("delv %s %s: %v\n%s", name, dns.Type(qtype), err, out)
		}
		return string(out)
	}
	for _, q := range validated {
		out := run(q.name, q.qtype)
		t.Logf("delv %s %s:\n%s", q.name, dns.Type(q.qtype), out)
		if !strings.Contains(out, "; fully validated") && !strings.Contains(out, "; negative response, fully validated") {
			t.Errorf("delv %s %s: not validated:\n%s", q.name, dns.Type(q.qtype), out)
		}
	}
	// A health change changes the answer, which still validates.
	if out := run("www.example.test.", dns.TypeA); !strings.Contains(out, "127.0.0.2") {
		t.Fatalf("both members up, want 127.0.0.2 in:\n%s", out)
	}
	b2.stop()
	eventually.True(t, 5*time.Second, func() bool {
		return slices.Equal(answers(t, addr, "www.example.test."), []string{"127.0.0.1"})
	}, "dead member leaves the answer")
	out := run("www.example.test.", dns.TypeA)
	if !strings.Contains(out, "; fully validated") || strings.Contains(out, "127.0.0.2") {
		t.Errorf("after the health change:\n%s", out)
	}
}

// TestUnboundValidates runs unbound as a validating resolver that knows
// the zone's key and reaches nothing but the node (a stub zone on
// loopback; every other name refused, queries sent from 127.0.0.1 only),
// and wants AD on every answer, across a health change.
func TestUnboundValidates(t *testing.T) {
	unbound := needTool(t, "unbound")
	dir, addr, key, b2 := signedPoolNode(t)
	resolver := startUnbound(t, unbound, dir, addr, key.DNSKEY)

	ask := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		m.SetEdns0(1232, true)
		r, err := dns.Exchange(m, resolver)
		if err != nil {
			t.Fatalf("unbound %s %s: %v", name, dns.Type(qtype), err)
		}
		return r
	}
	for _, q := range validated {
		r := ask(q.name, q.qtype)
		t.Logf("unbound %s %s: AD %v %s %d answers", q.name, dns.Type(q.qtype), r.AuthenticatedData, dns.RcodeToString[r.Rcode], len(r.Answer))
		if !r.AuthenticatedData || (r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError) {
			t.Errorf("unbound %s %s: AD %v rcode %s:\n%v", q.name, dns.Type(q.qtype), r.AuthenticatedData, dns.RcodeToString[r.Rcode], r)
		}
	}
	b2.stop()
	eventually.True(t, 5*time.Second, func() bool {
		return slices.Equal(answers(t, addr, "www.example.test."), []string{"127.0.0.1"})
	}, "dead member leaves the answer")
	// The resolver cached the old answer for its TTL (5s); a new name
	// through the CNAME is asked fresh... the pool's own TTL expires first.
	eventually.True(t, 10*time.Second, func() bool {
		r := ask("www.example.test.", dns.TypeA)
		if !r.AuthenticatedData {
			t.Fatalf("after the health change: no AD:\n%v", r)
		}
		return len(r.Answer) == 2 // one A and its RRSIG
	}, "unbound serves the new answer, validated")
}

// startUnbound runs unbound on a free loopback port, validating with
// anchor, resolving example.test. at tern (host:port) and nothing else.
func startUnbound(t *testing.T, unbound, dir, tern string, anchor *dns.DNSKEY) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	host, tp, _ := net.SplitHostPort(tern)
	conf := filepath.Join(dir, "unbound.conf")
	a := *anchor
	a.Hdr.Ttl = 3600
	os.WriteFile(conf, fmt.Appendf(nil, `server:
  interface: 127.0.0.1@%d
  port: %d
  do-ip6: no
  do-tcp: yes
  outgoing-interface: 127.0.0.1
  do-not-query-localhost: no
  username: ""
  chroot: ""
  directory: "%s"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  val-log-level: 2
  module-config: "validator iterator"
  trust-anchor: "%s"
  local-zone: "." refuse
  local-zone: "example.test." transparent
  qname-minimisation: no
  cache-max-ttl: 5
  cache-max-negative-ttl: 5
remote-control:
  control-enable: no
stub-zone:
  name: "example.test."
  stub-addr: %s@%s
`, port, port, dir, a.String(), host, tp), 0o644)
	var out bytes.Buffer
	cmd := exec.Command(unbound, "-d", "-c", conf)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("unbound's log:\n%s", out.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	eventually.True(t, 10*time.Second, func() bool {
		m := new(dns.Msg)
		m.SetQuestion("example.test.", dns.TypeSOA)
		_, err := dns.Exchange(m, addr)
		return err == nil
	}, "unbound answers")
	return addr
}

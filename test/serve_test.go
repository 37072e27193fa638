package test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/internal/eventually"
)

// freePort returns a port free for TCP and UDP on 127.0.0.1; see
// freePortOn.
func freePort(t *testing.T) int { return freePortOn(t, "127.0.0.1") }

var (
	portMu   sync.Mutex
	portNext int // next candidate; 0: not yet chosen
)

// freePortOn returns a port free for both TCP and UDP on ip (a DNS server
// needs both). Ports come from below the kernel's ephemeral range, so that
// no outgoing connection and no bind to port 0 -- by this test process,
// the tern processes it starts, or another package's tests running beside
// it -- can take the port between now and when a node binds it, seconds
// later for a joining node.
func freePortOn(t *testing.T, ip string) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	lo, hi := testPortRange()
	if portNext == 0 {
		portNext = lo + rand.IntN(hi-lo) // processes side by side start apart
	}
	for range hi - lo {
		port := portNext
		portNext++
		if portNext >= hi {
			portNext = lo
		}
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatalf("no free port on %s", ip)
	return 0
}

// testPortRange is the 10,000 ports just below the kernel's ephemeral
// range (net.ipv4.ip_local_port_range), or 20000-30000 when it is unknown.
func testPortRange() (lo, hi int) {
	lo, hi = 20000, 30000
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return lo, hi
	}
	eph, err := strconv.Atoi(f[0])
	if err != nil || eph < 11024 {
		return lo, hi
	}
	return eph - 10000, eph
}

// copyExample copies the reference configuration to a temporary folder with
// its DNS and API listeners moved to addr and apiAddr, so tests can serve
// and change it.
func copyExample(t *testing.T, addr, apiAddr string) string {
	t.Helper()
	src, err := filepath.Abs(filepath.Join("..", "..", "shared", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); err != nil {
		t.Skipf("reference configuration not found at %s", src)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "tern.yaml")
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `dns: ["127.0.0.1:5354"]`, fmt.Sprintf("dns: [%q]", addr), 1)
	s = strings.Replace(s, `api: "127.0.0.1:8054"`, fmt.Sprintf("api: %q", apiAddr), 1)
	s = strings.Replace(s, `raft: "127.0.0.1:7054"`, fmt.Sprintf(`raft: "127.0.0.1:%d"`, freePort(t)), 1)
	s = strings.Replace(s, `../testdata/geoip/`, filepath.Join(src, "..", "testdata", "geoip")+"/", 1)
	if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func query(addr, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Timeout: time.Second}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

func TestCheckReferenceExample(t *testing.T) {
	bin := ternBinary(t)
	dir := filepath.Join("..", "..", "shared", "examples")
	if _, err := os.Stat(dir); err != nil {
		t.Skip("reference configuration not found")
	}
	cmd := exec.Command(bin, "check", "--config", "tern.yaml")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tern check rejected the reference configuration: %v\n%s", err, out)
	}
}

// TestRepositoryExample: the copy of the reference example in examples/
// checks, and says what ../shared/examples says but for where it keeps
// its data (outside the example folder).
func TestRepositoryExample(t *testing.T) {
	bin := ternBinary(t)
	cmd := exec.Command(bin, "check", "--config", "tern.yaml")
	cmd.Dir = filepath.Join("..", "examples")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tern check rejected examples/tern.yaml: %v\n%s", err, out)
	}
	shared := filepath.Join("..", "..", "shared", "examples")
	if _, err := os.Stat(shared); err != nil {
		t.Skip("reference configuration not found")
	}
	for _, f := range []string{"tern.yaml", "zones/gslb.example.test.zone"} {
		ours, err := os.ReadFile(filepath.Join("..", "examples", f))
		if err != nil {
			t.Fatal(err)
		}
		ref, err := os.ReadFile(filepath.Join(shared, f))
		if err != nil {
			t.Fatal(err)
		}
		ref = bytes.Replace(ref, []byte(`  data: "./data/n1"             # Raft log, stable store and snapshots`),
			[]byte(`  data: "../data/n1"            # Raft log, stable store and snapshots (outside this folder)`), 1)
		if !bytes.Equal(ours, ref) {
			t.Errorf("examples/%s differs from the reference example's (beyond node.data): copy it again", f)
		}
	}
}

func TestCheckReportsEveryProblem(t *testing.T) {
	bin := ternBinary(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte(`node:
  name: n1
  colour: blue
pools:
  web:
    policy: fastest
    members: [{address: 192.0.2.1}]
zones:
  - file: z.zone
`), 0o644)
	os.WriteFile(filepath.Join(dir, "z.zone"), []byte(`$ORIGIN example.test.
@ 300 IN SOA ns1 hostmaster 1 3600 600 604800 60
@ 300 IN NS ns1
ns1 300 IN A 192.0.2.53
www 300 IN POOL nosuchpool
`), 0o644)
	cmd := exec.Command(bin, "check", "--config", "tern.yaml")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("tern check exit = %v, want 1\n%s", err, out)
	}
	for _, want := range []string{
		`tern.yaml:3: unknown key "colour"`,
		`tern.yaml:6: pool "web": policy "fastest"`,
		`z.zone:5:`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestServeReloadAndStop(t *testing.T) {
	bin := ternBinary(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	apiAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	dir := copyExample(t, addr, apiAddr)
	var out lockedBuffer
	cmd := exec.Command(bin, "serve", "--config", "tern.yaml")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})

	var r *dns.Msg
	eventually.True(t, 20*time.Second, func() bool {
		var err error
		r, err = query(addr, "static.gslb.example.test.", dns.TypeA)
		return err == nil
	}, "the server to answer")
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !r.Authoritative {
		t.Fatalf("static A: %v", r)
	}
	if r, err := query(addr, "www.gslb.example.test.", dns.TypeA); err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		t.Fatalf("www A (POOL): %v %v", r, err)
	}

	// The API answers, and an operator can drain a member through the CLI.
	ternCLI := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "TERN_API="+apiAddr)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("tern %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// tern status exits 1 until the node's Raft has elected it: wait.
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, err := exec.Command(bin, "status", "--api", apiAddr).CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tern status never healthy: %v\n%s", err, out)
		}
	}
	if s := ternCLI("status"); !strings.Contains(s, "serving") || !strings.Contains(s, "true") {
		t.Fatalf("tern status: %s", s)
	}
	// Every api member fails its probe (nothing listens on their port 443),
	// so all_down: all answers with all three. Forcing the priority-2
	// member up makes it the only up member: failover answers it alone.
	ternCLI("member", "up", "api", "127.0.1.40")
	eventually.True(t, 5*time.Second, func() bool {
		r, err := query(addr, "api.gslb.example.test.", dns.TypeA)
		return err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == "127.0.1.40"
	}, "the forced-up member to answer alone")

	// The example is a one-node cluster: SIGHUP takes in the node's own
	// settings only and says the edited zone is not applied; tern apply
	// applies it.
	zone := filepath.Join(dir, "zones", "gslb.example.test.zone")
	zb, _ := os.ReadFile(zone)
	os.WriteFile(zone, append(zb, []byte("reloaded IN A 192.0.2.99\n")...), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	eventually.True(t, 10*time.Second, func() bool {
		return strings.Contains(out.String(), "NOT applied")
	}, "the reload to say the file is not applied")
	if r, err := query(addr, "reloaded.gslb.example.test.", dns.TypeA); err != nil || len(r.Answer) != 0 {
		t.Fatalf("SIGHUP on a cluster node applied the edited zone: %v %v", r, err)
	}
	if s := ternCLI("apply", "--config", filepath.Join(dir, "tern.yaml")); !strings.Contains(s, "applied: version 2") {
		t.Fatalf("tern apply: %s", s)
	}
	eventually.True(t, 10*time.Second, func() bool {
		r, err := query(addr, "reloaded.gslb.example.test.", dns.TypeA)
		return err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1
	}, "the applied name")

	// A bad change is logged and the running configuration keeps serving.
	os.WriteFile(zone, append(zb, []byte("broken IN POOL nosuchpool\n")...), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	eventually.True(t, 10*time.Second, func() bool {
		return strings.Contains(out.String(), "reload rejected")
	}, "the rejected reload to be logged")
	if r, err := query(addr, "reloaded.gslb.example.test.", dns.TypeA); err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("after a bad reload the old configuration must still serve: %v %v", r, err)
	}

	// SIGTERM stops it cleanly.
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tern serve exited with %v after SIGTERM\n%s", err, out.String())
		}
		done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("tern serve did not stop within 10s of SIGTERM")
	}
}

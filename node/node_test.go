package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/internal/eventually"
)

// backend is a real HTTP server on addr that can be stopped and started.
type backend struct {
	addr string
	srv  *http.Server
}

func (b *backend) start(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatalf("backend %s: %v", b.addr, err)
	}
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	})}
	go b.srv.Serve(ln)
}

func (b *backend) stop() { b.srv.Close() }

// freePort finds a port free on both 127.0.0.1 and 127.0.0.2.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l1, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l1.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
		l1.Close()
		if err == nil {
			l2.Close()
			return port
		}
	}
	t.Fatal("no port free on both loopback addresses")
	return 0
}

// runNode writes yaml and zone (as z.zone) into dir, loads them and runs
// a node until the test ends.
func runNode(t *testing.T, dir, yaml, zone string) *Node {
	t.Helper()
	return runNodeOpts(t, dir, yaml, zone, Options{})
}

// runNodeOpts is runNode with options (a discarding logger unless one is
// given; ProbeWait 2s).
func runNodeOpts(t *testing.T, dir, yaml, zone string, o Options) *Node {
	t.Helper()
	o.ProbeWait = 2 * time.Second
	return runNodeFiles(t, dir, map[string][]byte{"tern.yaml": []byte(yaml), "z.zone": []byte(zone)}, o)
}

// runNodeFiles writes files (paths relative to dir) and runs a node on
// dir/tern.yaml with o (a discarding logger unless one is given).
func runNodeFiles(t *testing.T, dir string, files map[string][]byte, o Options) *Node {
	t.Helper()
	for p, data := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := config.Load(filepath.Join(dir, "tern.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	n, err := New(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node stopped with %v", err)
		}
	})
	return n
}

// startNode runs a node on yaml and zone in a new folder and waits until
// it serves; it returns the node and its DNS address.
func startNode(t *testing.T, yaml, zone string) (*Node, string) {
	t.Helper()
	n := runNode(t, t.TempDir(), yaml, zone)
	select {
	case <-n.Serving():
	case <-time.After(10 * time.Second):
		t.Fatal("node did not start serving")
	}
	return n, n.DNSAddrs()[0].String()
}

const testZone = `$ORIGIN example.test.
@ 300 IN SOA ns1 hostmaster 1 3600 600 604800 60
@ 300 IN NS ns1
ns1 300 IN A 192.0.2.53
www 5 IN POOL web
`

// answers returns the sorted A addresses the server gives for name.
func answers(t *testing.T, addr, name string) []string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	r, err := dns.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	slices.Sort(out)
	return out
}

// twoMembers is a standalone node's configuration whose pool web has the
// members 127.0.0.1 and 127.0.0.2, probed by check h (a YAML flow mapping).
func twoMembers(check string) string {
	return `node:
  name: t1
  dns: ["127.0.0.1:0"]
checks:
  h: ` + check + `
pools:
  web:
    check: h
    members: [{address: 127.0.0.1}, {address: 127.0.0.2}]
zones:
  - file: z.zone
`
}

// TestBackendDeathLeavesAnswers kills a real HTTP backend and measures how
// long until the answers drop it, then brings it back.
func TestBackendDeathLeavesAnswers(t *testing.T) {
	port := freePort(t)
	const interval, fall, rise = 200 * time.Millisecond, 2, 2
	yaml := twoMembers(fmt.Sprintf("{type: http, port: %d, path: /healthz, interval: %v, timeout: 100ms, fall: %d, rise: %d}", port, interval, fall, rise))
	b1 := &backend{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	b2 := &backend{addr: fmt.Sprintf("127.0.0.2:%d", port)}
	b1.start(t)
	b2.start(t)
	defer b1.stop()
	_, addr := startNode(t, yaml, testZone)

	both := []string{"127.0.0.1", "127.0.0.2"}
	if got := answers(t, addr, "www.example.test."); !slices.Equal(got, both) {
		t.Fatalf("after the first probe round: %v, want %v", got, both)
	}

	b2.stop()
	// fall results at interval spacing make the verdict; the snapshot
	// must follow within one more interval.
	limit := time.Duration(fall+1)*interval + time.Second // slack for -race on a busy CI machine
	gone := eventually.True(t, limit, func() bool {
		return slices.Equal(answers(t, addr, "www.example.test."), []string{"127.0.0.1"})
	}, "dead backend leaves the answers")
	t.Logf("backend left the answers %v after it died (interval %v, fall %d)", gone.Round(time.Millisecond), interval, fall)

	b2.start(t)
	defer b2.stop()
	back := eventually.True(t, time.Duration(rise+1)*interval+time.Second, func() bool {
		return slices.Equal(answers(t, addr, "www.example.test."), both)
	}, "revived backend returns")
	t.Logf("backend came back %v after it restarted (rise %d)", back.Round(time.Millisecond), rise)
}

// TestFlappingFasterThanFallChangesNothing: a backend that fails fewer
// consecutive probes than fall never leaves the answers.
func TestFlappingFasterThanFallChangesNothing(t *testing.T) {
	port := freePort(t)
	yaml := twoMembers(fmt.Sprintf("{type: http, port: %d, interval: 50ms, timeout: 40ms, fall: 3, rise: 1}", port))
	var fail atomicBool
	srv := func(a string) *http.Server {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatal(err)
		}
		s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if a == fmt.Sprintf("127.0.0.2:%d", port) && fail.flip() {
				w.WriteHeader(http.StatusServiceUnavailable) // every other probe fails
			}
		})}
		go s.Serve(ln)
		return s
	}
	s1, s2 := srv(fmt.Sprintf("127.0.0.1:%d", port)), srv(fmt.Sprintf("127.0.0.2:%d", port))
	defer s1.Close()
	defer s2.Close()
	_, addr := startNode(t, yaml, testZone)
	deadline := time.Now().Add(1500 * time.Millisecond) // about 30 probes
	for time.Now().Before(deadline) {
		if got := answers(t, addr, "www.example.test."); len(got) != 2 {
			t.Fatalf("a member failing every other probe (fall 3) left the answers: %v", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReloadKeepsVerdicts: a reload builds a new prober, whose members have
// no result yet; they must keep the old verdicts meanwhile, so a down
// member does not come back into the answers for a moment.
func TestReloadKeepsVerdicts(t *testing.T) {
	port := freePort(t)
	yaml := twoMembers(fmt.Sprintf("{type: http, port: %d, interval: 300ms, timeout: 200ms, fall: 1, rise: 1}", port))
	b1 := &backend{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	b1.start(t)
	defer b1.stop()
	// The dead member hangs rather than refuses, so a new prober needs the
	// whole timeout for its first verdict: the window a reload must cover.
	hung := make(chan struct{})
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.2:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hung })}
	go hs.Serve(ln)
	defer hs.Close()
	defer close(hung)
	n, addr := startNode(t, yaml, testZone)
	if got := answers(t, addr, "www.example.test."); !slices.Equal(got, []string{"127.0.0.1"}) {
		t.Fatalf("before reload: %v, want only the live member", got)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte(yaml), 0o644)
	os.WriteFile(filepath.Join(dir, "z.zone"), []byte(testZone+"extra 300 IN A 192.0.2.7\n"), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "tern.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Reload(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(600 * time.Millisecond); time.Now().Before(end); {
		if got := answers(t, addr, "www.example.test."); !slices.Equal(got, []string{"127.0.0.1"}) {
			t.Fatalf("during the reload the dead member came back: %v", got)
		}
	}
	if got := answers(t, addr, "extra.example.test."); !slices.Equal(got, []string{"192.0.2.7"}) {
		t.Fatalf("the reloaded zone is not served: %v", got)
	}

	// A bad configuration is refused whole and changes nothing.
	bad := *cfg
	bad.Zones = []config.Zone{{File: "missing.zone"}}
	if err := n.Reload(context.Background(), &bad); err == nil {
		t.Fatal("a configuration with a missing zone file was accepted")
	}
	if got := answers(t, addr, "extra.example.test."); !slices.Equal(got, []string{"192.0.2.7"}) {
		t.Fatalf("after a refused reload: %v", got)
	}
}

// TestFallbackPoolUsesCurrentHealth: when a pool's members are all down and
// it falls back to another pool, the fallback answers with its own members'
// current health, not the states it was compiled with.
func TestFallbackPoolUsesCurrentHealth(t *testing.T) {
	port := freePort(t)
	yaml := fmt.Sprintf(`node:
  name: t1
  dns: ["127.0.0.1:0"]
checks:
  h: {type: tcp, port: %d, interval: 1s, timeout: 200ms, fall: 1, rise: 1}
pools:
  web:
    check: h
    all_down: fallback:spare
    members: [{address: 127.0.0.3}]
  spare:
    check: h
    members: [{address: 127.0.0.1}, {address: 127.0.0.2}]
zones:
  - file: z.zone
`, port)
	live := &backend{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	live.start(t)
	defer live.stop()
	_, addr := startNode(t, yaml, testZone)
	for range 20 {
		if got := answers(t, addr, "www.example.test."); !slices.Equal(got, []string{"127.0.0.1"}) {
			t.Fatalf("web is all down and falls back to spare, whose only live member is 127.0.0.1; got %v", got)
		}
	}
}

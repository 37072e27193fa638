package test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/features"
	"github.com/ternlb/tern/internal/eventually"
)

// Topologies of network namespaces for the dispatcher's end-to-end tests.
// Each test builds its own: a bridge in a namespace of its own and one
// namespace per host, with eth0 on the bridge. Every address lives inside
// those namespaces; everything is removed when the test ends.

var (
	terndOnce sync.Once
	terndPath string
	terndErr  error
	terndOut  []byte
	nsSeq     atomic.Int32
)

// ternd builds the helper binary (the dispatcher's commands, servers and
// clients) once per run.
func ternd(t *testing.T) string {
	t.Helper()
	terndOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ternd-")
		if err != nil {
			terndErr = err
			return
		}
		terndPath = filepath.Join(dir, "ternd")
		cmd := exec.Command("go", "build", "-o", terndPath, "./test/netns/ternd")
		cmd.Dir = ".."
		terndOut, terndErr = cmd.CombinedOutput()
	})
	if terndErr != nil {
		t.Fatalf("build ternd: %v\n%s", terndErr, terndOut)
	}
	return terndPath
}

// needNetnsXDP skips unless this process may build namespaces and load XDP.
func needNetnsXDP(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, XDP)")
	}
	for _, tool := range []string{"ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	if err := features.HaveProgramType(ebpf.XDP); err != nil {
		t.Skipf("no XDP here: %v", err)
	}
}

// dispOut collects a process's output while it runs.
type dispOut struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *dispOut) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *dispOut) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func nsExec(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dtopo is one L2 segment of namespaces.
type dtopo struct {
	t      *testing.T
	id     string
	bridge string
	prefix string // "10.X.Y"
	hosts  map[string]string
	bpffs  string
}

func newDTopo(t *testing.T) *dtopo {
	t.Helper()
	needNetnsXDP(t)
	n := nsSeq.Add(1)
	tp := &dtopo{
		t:      t,
		id:     fmt.Sprintf("%d-%d", os.Getpid()%100000, n),
		prefix: fmt.Sprintf("10.%d.%d", 150+os.Getpid()%50, n),
		hosts:  map[string]string{},
	}
	tp.bpffs = "/sys/fs/bpf/tern-e2e-" + tp.id
	t.Cleanup(func() { os.RemoveAll(tp.bpffs) })
	tp.bridge = tp.ns("br")
	nsExec(t, "ip", "-n", tp.bridge, "link", "add", "br0", "type", "bridge")
	nsExec(t, "ip", "-n", tp.bridge, "link", "set", "br0", "up")
	return tp
}

func (tp *dtopo) ns(role string) string {
	name := "td-" + role + "-" + tp.id
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tp.t.Skipf("cannot create a network namespace: %v %s", err, out)
	}
	tp.t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	nsExec(tp.t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

func (tp *dtopo) addr(n int) string { return fmt.Sprintf("%s.%d", tp.prefix, n) }

// host adds namespace role with eth0 = prefix.n/24 on the bridge, TX
// checksum offload off, and IPv6 duplicate address detection off on eth0
// (set before the link comes up, so its link-local address is usable at
// once: a server answering from a VIP on lo solicits the client's address
// from its link-local one, and while that is tentative the kernel sends
// no solicitation at all, so the first connections' SYN-ACKs were lost).
func (tp *dtopo) host(role string, n int) string {
	t := tp.t
	ns := tp.ns(role)
	tp.hosts[role] = ns
	port := fmt.Sprintf("p%d", n)
	nsExec(t, "ip", "-n", tp.bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
	nsExec(t, "ip", "-n", tp.bridge, "link", "set", port, "master", "br0", "up")
	nsExec(t, "ip", "-n", ns, "addr", "add", tp.addr(n)+"/24", "dev", "eth0")
	tp.sysctl(role, "net.ipv6.conf.eth0.accept_dad=0")
	nsExec(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	nsExec(t, "ip", "netns", "exec", ns, ternd(t), "txoff", "eth0")
	return ns
}

func (tp *dtopo) mac(role string) string {
	out := nsExec(tp.t, "ip", "-n", tp.hosts[role], "-br", "link", "show", "eth0")
	f := strings.Fields(out)
	if len(f) < 3 {
		tp.t.Fatalf("no MAC in %q", out)
	}
	return f[2]
}

// sysctl sets key=value in role's namespace (through /proc/sys: the
// sysctl program may not be installed).
func (tp *dtopo) sysctl(role, kv string) {
	key, value, _ := strings.Cut(kv, "=")
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	nsExec(tp.t, "ip", "netns", "exec", tp.hosts[role], "sh", "-c", "echo "+value+" > "+path)
}

// realServer adds host role as a direct-server-return target of vips:
// each VIP on lo, ARP for them silenced (arp_ignore=1, arp_announce=2).
func (tp *dtopo) realServer(role string, n int, vips ...string) string {
	ns := tp.host(role, n)
	for _, v := range vips {
		nsExec(tp.t, "ip", "-n", ns, "addr", "add", v+"/32", "dev", "lo")
	}
	for _, kv := range []string{
		"net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2",
		"net.ipv4.conf.eth0.arp_ignore=1", "net.ipv4.conf.eth0.arp_announce=2",
	} {
		tp.sysctl(role, kv)
	}
	return ns
}

// server makes role a real server for vips (realServer) with an HTTP
// server on :80 and an echo server on :9000. Its health check fails while
// downFile exists.
func (tp *dtopo) server(role string, n int, vips ...string) (downFile string) {
	tp.realServer(role, n, vips...)
	downFile = filepath.Join(tp.t.TempDir(), role+".down")
	h := tp.start(role, false, "httpd", "--name", role, "--size", "20000", "--down-file", downFile)
	e := tp.start(role, false, "echo", "--name", role)
	eventually.True(tp.t, 5*time.Second, func() bool {
		return strings.Contains(h.out.String(), "listening") && strings.Contains(e.out.String(), "listening")
	}, role+" servers listening")
	return downFile
}

// nsProc is a process running in a namespace.
type nsProc struct {
	cmd  *exec.Cmd
	out  *dispOut
	done chan struct{}
}

// start runs args in role's namespace: tern for dispatch and decap,
// else ternd. A dispatcher runs under
// nsenter --net, which keeps the mount namespace, so its bpffs pins
// outlive it for the next run to take over; the others run under
// ip netns exec.
func (tp *dtopo) start(role string, dispatcher bool, args ...string) *nsProc {
	t := tp.t
	ns := tp.hosts[role]
	bin := ternd(t)
	if args[0] == "dispatch" || args[0] == "decap" {
		bin = ternBinary(t) // the dispatcher's commands as tern runs them
	}
	var argv []string
	if dispatcher {
		argv = append([]string{"nsenter", "--net=/run/netns/" + ns, bin}, args...)
	} else {
		argv = append([]string{"ip", "netns", "exec", ns, bin}, args...)
	}
	p := &nsProc{cmd: exec.Command(argv[0], argv[1:]...), out: &dispOut{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("output of %s %v:\n%s", role, args, p.out.String())
		}
	})
	return p
}

// stop signals the process and waits for it (SIGKILL after 5s).
func (p *nsProc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// wait waits for the process to exit and returns its output.
func (p *nsProc) wait(t *testing.T, within time.Duration) string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("process %v still running after %v:\n%s", p.cmd.Args, within, p.out.String())
	}
	return p.out.String()
}

// dispatcherYAML returns a configuration with one dispatcher section.
func (tp *dtopo) writeConfig(name, dispatcher string) string {
	dir := tp.t.TempDir()
	cfg := `node:
  name: ` + name + `
  data: ` + filepath.Join(dir, "data") + `
checks:
  http:
    type: http
    port: 80
    path: /healthz
    interval: 300ms
    timeout: 250ms
    rise: 1
    fall: 2
zones:
  - file: unused.zone
dispatcher:
` + dispatcher
	p := filepath.Join(dir, "tern.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		tp.t.Fatal(err)
	}
	return p
}

// dispatch starts a dispatcher in role's namespace with configuration
// section sec, pinned as instance role.
func (tp *dtopo) dispatch(role, sec string) *nsProc {
	cfg := tp.writeConfig(role, sec)
	return tp.start(role, true, "dispatch", "--config", cfg, "--instance", role, "--bpffs", tp.bpffs, "--stats-interval", "200ms")
}

// get makes n HTTP requests to url from role and counts answers by server.
func (tp *dtopo) get(role, url string, n int) (map[string]int, []string) {
	out := nsExec(tp.t, "ip", "netns", "exec", tp.hosts[role], ternd(tp.t), "get", "--url", url, "--count", fmt.Sprint(n), "--timeout", "2s")
	by := map[string]int{}
	var errs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "error:") {
			errs = append(errs, line)
			continue
		}
		f := strings.Fields(line)
		if len(f) == 2 {
			by[f[0]]++
		}
	}
	return by, errs
}

// stream starts a TCP stream from role to addr for d.
func (tp *dtopo) stream(role, addr string, d time.Duration) *nsProc {
	return tp.start(role, false, "stream", "--addr", addr, "--duration", d.String())
}

// dispStreamResult parses a finished stream's output: its server and "ok"
// or the failure.
func dispStreamResult(out string) (server string, ok bool, line string) {
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "server" {
			server = f[1]
		}
		if len(f) >= 1 && (f[0] == "ok" || f[0] == "fail") {
			return server, f[0] == "ok", l
		}
	}
	return server, false, out
}

// ifaceBytes returns eth0's received and sent bytes in role's namespace.
func (tp *dtopo) ifaceBytes(role string) (rx, tx int64) {
	out := nsExec(tp.t, "ip", "-n", tp.hosts[role], "-s", "link", "show", "eth0")
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if strings.Contains(l, "RX:") && i+1 < len(lines) {
			fmt.Sscan(lines[i+1], &rx)
		}
		if strings.Contains(l, "TX:") && i+1 < len(lines) {
			fmt.Sscan(lines[i+1], &tx)
		}
	}
	return rx, tx
}

// hasAddr reports whether role's eth0 holds addr (IPv4 or IPv6) as a
// host address.
func (tp *dtopo) hasAddr(role, addr string) bool {
	out := nsExec(tp.t, "ip", "-n", tp.hosts[role], "-br", "addr", "show", "dev", "eth0")
	for _, f := range strings.Fields(out) {
		if f == addr+"/32" || f == addr+"/128" {
			return true
		}
	}
	return false
}

// xdpProg is the id of the XDP program on role's eth0, 0 if none.
func (tp *dtopo) xdpProg(role string) int {
	out := nsExec(tp.t, "ip", "-n", tp.hosts[role], "-d", "link", "show", "eth0")
	f := strings.Fields(out)
	for i := 0; i+1 < len(f); i++ {
		if strings.HasPrefix(f[i], "prog/xdp") && i+2 < len(f) && f[i+1] == "id" {
			id, _ := strconv.Atoi(f[i+2])
			return id
		}
	}
	return 0
}

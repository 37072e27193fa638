package test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ternlb/tern/internal/eventually"
)

// dsite is the common topology: a client, dispatchers and three real
// servers s1-s3 holding the VIP on lo, all on one bridge.
type dsite struct {
	*dtopo
	vip   string
	downs map[string]string // server -> its health check's down file
}

func newDSite(t *testing.T, vips ...string) *dsite {
	tp := newDTopo(t)
	s := &dsite{dtopo: tp, downs: map[string]string{}}
	s.vip = tp.addr(200)
	if len(vips) == 0 {
		vips = []string{s.vip}
	}
	tp.host("client", 100)
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("s%d", i)
		s.downs[name] = tp.server(name, 10+i, vips...)
	}
	return s
}

// servers returns the servers: lines of a service in mode.
func (s *dsite) servers(mode string) string {
	var b strings.Builder
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("s%d", i)
		fmt.Fprintf(&b, "        - {address: %s, mac: %q}\n", s.addr(10+i), s.mac(name))
	}
	return b.String()
}

// services returns the dispatcher's services for vip: HTTP on 80 checked
// by "http", the echo stream on 9000 (checked by it too with
// checkStreams).
func (s *dsite) services(vip, mode string, checkStreams ...bool) string {
	streamCheck := "none"
	if len(checkStreams) > 0 && checkStreams[0] {
		streamCheck = "http"
	}
	return fmt.Sprintf(`    - vip: %s
      port: 80
      mode: %s
      check: http
      servers:
%s    - vip: %s
      port: 9000
      mode: %s
      check: %s
      servers:
%s`, vip, mode, s.servers(mode), vip, mode, streamCheck, s.servers(mode))
}

var dispLoadLine = regexp.MustCompile(`(?:msg=")?dispatch: load"? vip=(\S+) forwarding=(\S+) packets=(\d+)[^\n]*`)

// dispLoad returns the integer field key (packets, bytes) of the last load
// line the dispatcher logged for vip, 0 before any.
func dispLoad(out, vip, key string) int64 {
	field := regexp.MustCompile(`\b` + regexp.QuoteMeta(key) + `=(\d+)`)
	var n int64
	for _, m := range dispLoadLine.FindAllStringSubmatch(out, -1) {
		if f := field.FindStringSubmatch(m[0]); m[1] == vip && f != nil {
			n, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return n
}

// dispForwarded returns the last packet count the dispatcher logged for vip.
func dispForwarded(out, vip string) int64 { return dispLoad(out, vip, "packets") }

var dispFlowsLine = regexp.MustCompile(`(?:msg=")?dispatch: load"? vip=(\S+) .* active_flows=(\d+) new_flows=(\d+)`)

// dispFlows returns the last active-flow estimate and count of new flows
// the dispatcher logged for vip (-1, -1 before any).
func dispFlows(out, vip string) (active, opened int64) {
	active, opened = -1, -1
	for _, m := range dispFlowsLine.FindAllStringSubmatch(out, -1) {
		if m[1] == vip {
			active, _ = strconv.ParseInt(m[2], 10, 64)
			opened, _ = strconv.ParseInt(m[3], 10, 64)
		}
	}
	return active, opened
}

// dispCheckFlows: the dispatcher counted the client's n closed HTTP
// connections as opened and, their FINs seen, none as active; a TCP
// stream through it then counts as active while it runs and not after.
func dispCheckFlows(t *testing.T, s *dsite, d *nsProc, n int64) {
	t.Helper()
	eventually.True(t, 3*time.Second, func() bool {
		active, opened := dispFlows(d.out.String(), s.vip)
		return opened >= n && active == 0
	}, "closed connections counted opened, none active")
	_, opened0 := dispFlows(d.out.String(), s.vip)
	t.Logf("dispatcher counted %d TCP flows opened, 0 active", opened0)
	st := s.stream("client", s.vip+":9000", 2*time.Second)
	eventually.True(t, 2*time.Second, func() bool {
		active, opened := dispFlows(d.out.String(), s.vip)
		return active >= 1 && opened > opened0
	}, "the stream counted active")
	active, _ := dispFlows(d.out.String(), s.vip)
	t.Logf("during the stream: %d active", active)
	if _, ok, line := dispStreamResult(st.wait(t, 10*time.Second)); !ok {
		t.Fatalf("stream: %s", line)
	}
	eventually.True(t, 3*time.Second, func() bool {
		active, _ := dispFlows(d.out.String(), s.vip)
		return active == 0
	}, "the closed stream no longer active")
}

func dispCheckAll(t *testing.T, s *dsite, vip string, n int) {
	t.Helper()
	by, errs := s.get("client", "http://"+vip+"/", n)
	if len(errs) > 0 {
		t.Fatalf("%d of %d requests failed: %v", len(errs), n, errs[0])
	}
	for _, srv := range []string{"s1", "s2", "s3"} {
		if by[srv] == 0 {
			t.Fatalf("server %s got none of %d requests: %v", srv, n, by)
		}
	}
	t.Logf("requests by server: %v", by)
}

// TestDispatcherModes: HTTP from a client to the VIP reaches all three
// servers through the dispatcher, in mac and ipip mode, and the replies
// (20 kB each) go from the servers straight to the client. The dispatcher
// counts the connections opened, and as active only while they are open.
func TestDispatcherModes(t *testing.T) {
	for _, mode := range []string{"mac", "ipip"} {
		t.Run(mode, func(t *testing.T) {
			s := newDSite(t)
			s.host("d1", 2)
			if mode == "ipip" {
				for i := 1; i <= 3; i++ {
					name := fmt.Sprintf("s%d", i)
					// The tunnel adds 20 bytes: advertise a smaller MSS.
					nsExec(t, "ip", "-n", s.hosts[name], "route", "replace", s.prefix+".0/24", "dev", "eth0", "src", s.addr(10+i), "advmss", "1440")
					d := s.start(name, false, "decap", "--iface", "eth0", "--vip", s.vip)
					eventually.True(t, 5*time.Second, func() bool { return strings.Contains(d.out.String(), "decap attached") }, name+" decap attached")
				}
			}
			d := s.dispatch("d1", "  interface: eth0\n  services:\n"+s.services(s.vip, mode))
			eventually.True(t, 5*time.Second, func() bool {
				return strings.Count(d.out.String(), "service forwarding") == 2
			}, "dispatcher forwarding")

			rx0, tx0 := s.ifaceBytes("d1")
			crx0, _ := s.ifaceBytes("client")
			dispCheckAll(t, s, s.vip, 60)
			rx1, tx1 := s.ifaceBytes("d1")
			crx1, _ := s.ifaceBytes("client")
			got := crx1 - crx0
			t.Logf("client received %d bytes; dispatcher received %d, sent %d", got, rx1-rx0, tx1-tx0)
			if got < 60*20000 {
				t.Fatalf("client received only %d bytes", got)
			}
			// The dispatcher sees the requests and ACKs, never the replies.
			if rx1-rx0 > got/10 {
				t.Fatalf("dispatcher received %d bytes of the client's %d: replies do not bypass it", rx1-rx0, got)
			}
			if tx1-tx0 < (rx1-rx0)/2 {
				t.Fatalf("dispatcher sent %d bytes of the %d it received: not forwarding", tx1-tx0, rx1-rx0)
			}
			eventually.True(t, 3*time.Second, func() bool { return dispForwarded(d.out.String(), s.vip) >= 60*4 }, "counters logged")
			dispCheckFlows(t, s, d, 60)
		})
	}
}

// TestDispatcherFailover: the primary dispatcher's host dies during a
// long TCP stream; the backup takes the VIP within a second and the
// stream completes without a reset.
func TestDispatcherFailover(t *testing.T) {
	s := newDSite(t)
	s.host("d1", 2)
	s.host("d2", 3)
	ha := func(self, peer int, prio int) string {
		return fmt.Sprintf(`  ha:
    local: %s:7500
    peers: [%s:7500]
    key: "e2e-shared-secret-0123"
    priority: %d
`, s.addr(self), s.addr(peer), prio)
	}
	svc := "  interface: eth0\n  services:\n" + s.services(s.vip, "mac")
	d1 := s.dispatch("d1", svc+ha(2, 3, 200))
	eventually.True(t, 5*time.Second, func() bool { return s.hasAddr("d1", s.vip) }, "d1 holds the VIP")
	d2 := s.dispatch("d2", svc+ha(3, 2, 100))
	eventually.True(t, 5*time.Second, func() bool { return strings.Contains(d2.out.String(), "ha: backup") }, "d2 is backup")
	if strings.Contains(d2.out.String(), "differ from ours") {
		t.Fatal("dispatchers with the same services see different configuration digests")
	}
	dispCheckAll(t, s, s.vip, 30)

	streams := make([]*nsProc, 4)
	for i := range streams {
		streams[i] = s.stream("client", s.vip+":9000", 3*time.Second)
	}
	eventually.True(t, 3*time.Second, func() bool { return dispForwarded(d1.out.String(), s.vip) > 400 }, "streams through d1")
	killed := time.Now()
	// The host dies: the process stops dead and the link goes down.
	d1.stop(syscall.SIGKILL)
	nsExec(t, "ip", "-n", s.hosts["d1"], "link", "set", "eth0", "down")
	eventually.True(t, 2*time.Second, func() bool { return s.hasAddr("d2", s.vip) }, "d2 holds the VIP")
	took := time.Since(killed)
	t.Logf("backup holds the VIP %v after the primary died", took)
	if took > time.Second {
		t.Fatalf("takeover took %v", took)
	}
	for i, st := range streams {
		out := st.wait(t, 20*time.Second)
		srv, ok, line := dispStreamResult(out)
		if !ok {
			t.Fatalf("stream %d (to %s) broken by the failover: %s", i, srv, line)
		}
		t.Logf("stream %d: %s", i, line)
	}
	dispCheckAll(t, s, s.vip, 30)
	if dispForwarded(d2.out.String(), s.vip) == 0 {
		eventually.True(t, 2*time.Second, func() bool { return dispForwarded(d2.out.String(), s.vip) > 0 }, "d2 dispForwarded")
	}
}

// TestDispatcherRestart: restarting the dispatcher during a stream drops
// no connection: the program and maps stay pinned and the new process
// takes them over, counters included: the new process counts the open
// streams as active flows until they end.
func TestDispatcherRestart(t *testing.T) {
	s := newDSite(t)
	s.host("d1", 2)
	sec := "  interface: eth0\n  services:\n" + s.services(s.vip, "mac")
	d := s.dispatch("d1", sec)
	eventually.True(t, 5*time.Second, func() bool { return strings.Count(d.out.String(), "service forwarding") == 2 }, "forwarding")

	streams := make([]*nsProc, 4)
	for i := range streams {
		streams[i] = s.stream("client", s.vip+":9000", 4*time.Second)
	}
	eventually.True(t, 3*time.Second, func() bool { return dispForwarded(d.out.String(), s.vip) > 400 }, "streams through d1")
	d.stop(syscall.SIGTERM)
	// No dispatcher process for a while: the pinned program forwards alone.
	const gap = 500 * time.Millisecond
	time.Sleep(gap)
	d2 := s.dispatch("d1", sec)
	eventually.True(t, 5*time.Second, func() bool { return strings.Contains(d2.out.String(), "datapath attached") }, "restarted")
	// The pinned counters carry the open streams into the new process's
	// estimate of active flows.
	eventually.True(t, 2*time.Second, func() bool {
		for _, m := range dispFlowsLine.FindAllStringSubmatch(d2.out.String(), -1) {
			if n, _ := strconv.Atoi(m[2]); m[1] == s.vip && n >= len(streams) {
				return true
			}
		}
		return false
	}, "the restarted dispatcher counts the 4 streams active")
	for i, st := range streams {
		srv, ok, line := dispStreamResult(st.wait(t, 20*time.Second))
		if !ok {
			t.Fatalf("stream %d (to %s) broken by the restart: %s", i, srv, line)
		}
		t.Logf("stream %d: %s", i, line)
		// The longest wait for an echo: had forwarding stopped for the
		// gap, it would be the gap plus a retransmission timeout.
		var maxGap int
		fmt.Sscan(strings.Fields(line)[3], &maxGap)
		if time.Duration(maxGap)*time.Millisecond >= gap {
			t.Fatalf("stream %d stalled %dms across the restart: forwarding stopped", i, maxGap)
		}
	}
	eventually.True(t, 3*time.Second, func() bool {
		active, _ := dispFlows(d2.out.String(), s.vip)
		return active == 0
	}, "the ended streams no longer active")
	dispCheckAll(t, s, s.vip, 30)

	// With --detach the program and its pins go at exit.
	if out := nsExec(t, "ip", "-n", s.hosts["d1"], "link", "show", "eth0"); !strings.Contains(out, "xdp") {
		t.Fatalf("ip link does not show the program:\n%s", out)
	}
	d2.stop(syscall.SIGTERM)
	d3 := s.start("d1", true, "dispatch", "--config", s.writeConfig("d1", sec), "--instance", "d1", "--bpffs", s.bpffs, "--detach")
	eventually.True(t, 5*time.Second, func() bool { return strings.Contains(d3.out.String(), "datapath attached") }, "restarted")
	d3.stop(syscall.SIGTERM)
	if out := nsExec(t, "ip", "-n", s.hosts["d1"], "link", "show", "eth0"); strings.Contains(out, "xdp") {
		t.Fatalf("program still attached after --detach:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(s.bpffs, "d1")); !os.IsNotExist(err) {
		t.Fatalf("pins left after --detach: %v", err)
	}
}

func dispHA(s *dsite, self, peer, prio int, extra string) string {
	return fmt.Sprintf(`  ha:
    local: %s:7500
    peers: [%s:7500]
    key: "e2e-shared-secret-0123"
    priority: %d
    preempt: true
%s`, s.addr(self), s.addr(peer), prio, extra)
}

// TestDispatcherMutualHA: each dispatcher is primary for one VIP and
// backup for the other; the survivor of a stop serves both; back again,
// preemption returns each VIP to its primary.
func TestDispatcherMutualHA(t *testing.T) {
	s := newDSite(t)
	vipA, vipB := s.vip, s.addr(201)
	for i := 1; i <= 3; i++ {
		nsExec(t, "ip", "-n", s.hosts[fmt.Sprintf("s%d", i)], "addr", "add", vipB+"/32", "dev", "lo")
	}
	s.host("d1", 2)
	s.host("d2", 3)
	svc := "  interface: eth0\n  services:\n" + s.services(vipA, "mac") + s.services(vipB, "mac")
	groups := func(pa, pb int) string {
		return fmt.Sprintf("    groups:\n      - {name: a, vips: [%s], priority: %d}\n      - {name: b, vips: [%s], priority: %d}\n", vipA, pa, vipB, pb)
	}
	cfg1 := svc + dispHA(s, 2, 3, 100, groups(200, 100))
	cfg2 := svc + dispHA(s, 3, 2, 100, groups(100, 200))
	d1 := s.dispatch("d1", cfg1)
	s.dispatch("d2", cfg2)
	split := func() bool {
		return s.hasAddr("d1", vipA) && !s.hasAddr("d1", vipB) && s.hasAddr("d2", vipB) && !s.hasAddr("d2", vipA)
	}
	eventually.True(t, 5*time.Second, split, "d1 holds A, d2 holds B")
	dispCheckAll(t, s, vipA, 30)
	dispCheckAll(t, s, vipB, 30)

	d1.stop(syscall.SIGTERM)
	eventually.True(t, 2*time.Second, func() bool { return s.hasAddr("d2", vipA) && s.hasAddr("d2", vipB) }, "d2 holds both")
	if s.hasAddr("d1", vipA) {
		t.Fatal("stopped d1 kept VIP A")
	}
	dispCheckAll(t, s, vipA, 30)
	dispCheckAll(t, s, vipB, 30)

	s.dispatch("d1", cfg1)
	eventually.True(t, 5*time.Second, split, "A back on d1, B stays on d2")
	dispCheckAll(t, s, vipA, 30)
	dispCheckAll(t, s, vipB, 30)
}

// TestDispatcherCollocatedBackup: the backup dispatcher runs on server s1.
// As backup it is a plain server; once it takes over it forwards the
// other servers' share and answers its own share locally.
func TestDispatcherCollocatedBackup(t *testing.T) {
	s := newDSite(t)
	s.host("d1", 2)
	svc := "  interface: eth0\n  services:\n" + s.services(s.vip, "mac")
	d1 := s.dispatch("d1", svc+dispHA(s, 2, 11, 200, ""))
	eventually.True(t, 5*time.Second, func() bool { return s.hasAddr("d1", s.vip) }, "d1 holds the VIP")
	backup := s.dispatch("s1", svc+dispHA(s, 11, 2, 100, ""))
	eventually.True(t, 5*time.Second, func() bool { return strings.Contains(backup.out.String(), "ha: backup") }, "s1 is backup")
	dispCheckAll(t, s, s.vip, 45)

	d1.stop(syscall.SIGTERM)
	eventually.True(t, 2*time.Second, func() bool { return s.hasAddr("s1", s.vip) }, "s1 holds the VIP")
	dispCheckAll(t, s, s.vip, 45)
	eventually.True(t, 3*time.Second, func() bool { return dispForwarded(backup.out.String(), s.vip) > 0 }, "s1 dispForwarded")
}

// TestDispatcherServerCheckFails: when a server's check fails, new flows
// stop going to it and streams to the other servers go on untouched.
func TestDispatcherServerCheckFails(t *testing.T) {
	s := newDSite(t)
	s.host("d1", 2)
	d := s.dispatch("d1", "  interface: eth0\n  services:\n"+s.services(s.vip, "mac", true))
	eventually.True(t, 5*time.Second, func() bool { return strings.Count(d.out.String(), "service forwarding") == 2 }, "forwarding")
	dispCheckAll(t, s, s.vip, 30)

	streams := make([]*nsProc, 8)
	for i := range streams {
		streams[i] = s.stream("client", s.vip+":9000", 3*time.Second)
	}
	for i, st := range streams {
		eventually.True(t, 5*time.Second, func() bool { return strings.Contains(st.out.String(), "server ") }, fmt.Sprintf("stream %d started", i))
	}
	if err := os.WriteFile(s.downs["s3"], nil, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 3*time.Second, func() bool {
		return strings.Contains(d.out.String(), "server="+s.addr(13)+" check=http up=false") &&
			strings.Count(d.out.String(), "serving=2") >= 2
	}, "s3 down in the dispatcher")
	by, errs := s.get("client", "http://"+s.vip+"/", 30)
	if len(errs) > 0 || by["s3"] > 0 || by["s1"] == 0 || by["s2"] == 0 {
		t.Fatalf("after s3 failed its check: requests by server %v, errors %v", by, errs)
	}
	others := 0
	for i, st := range streams {
		srv, ok, line := dispStreamResult(st.wait(t, 20*time.Second))
		t.Logf("stream %d: %s", i, line)
		if srv == "s3" {
			continue // its flows moved to another server: reset, expected
		}
		others++
		if !ok {
			t.Fatalf("stream %d to %s, a server still up, broke: %s", i, srv, line)
		}
	}
	if others == 0 {
		t.Fatal("no stream went to s1 or s2")
	}
}

// TestDispatcherReachTarget: a dispatcher that cannot reach its gateway
// (ARP) gives up its VIP to the backup, which still reaches its own
// (ICMP); once the gateway answers again the primary takes the VIP back.
func TestDispatcherReachTarget(t *testing.T) {
	s := newDSite(t)
	s.host("gw1", 1)
	s.host("gw2", 4)
	s.host("d1", 2)
	s.host("d2", 3)
	svc := "  interface: eth0\n  services:\n" + s.services(s.vip, "mac")
	reach := func(addr, typ string) string {
		return fmt.Sprintf("    reach:\n      - {address: %s, type: %s, interval: 100ms, timeout: 80ms, fall: 3}\n", addr, typ)
	}
	d1 := s.dispatch("d1", svc+dispHA(s, 2, 3, 200, reach(s.addr(1), "arp")))
	d2 := s.dispatch("d2", svc+dispHA(s, 3, 2, 100, reach(s.addr(4), "icmp")))
	eventually.True(t, 5*time.Second, func() bool { return s.hasAddr("d1", s.vip) }, "d1 holds the VIP")
	eventually.True(t, 5*time.Second, func() bool { return strings.Contains(d2.out.String(), "ha: backup") }, "d2 is backup")

	nsExec(t, "ip", "-n", s.hosts["gw1"], "link", "set", "eth0", "down")
	eventually.True(t, 3*time.Second, func() bool {
		return s.hasAddr("d2", s.vip) && !s.hasAddr("d1", s.vip)
	}, "d2 takes the VIP from d1, cut off from its gateway")
	if !strings.Contains(d1.out.String(), "reach targets unreachable") {
		t.Fatal("d1 did not say why it gave up its VIP")
	}
	dispCheckAll(t, s, s.vip, 30)

	nsExec(t, "ip", "-n", s.hosts["gw1"], "link", "set", "eth0", "up")
	eventually.True(t, 5*time.Second, func() bool { return s.hasAddr("d1", s.vip) && !s.hasAddr("d2", s.vip) }, "d1 takes the VIP back")
	dispCheckAll(t, s, s.vip, 30)
}

// TestDispatcherBPFFSPersistence starts `tern dispatch` both ways of
// entering a namespace. Under nsenter --net the process keeps the host's
// mounts: its pins are in the host's bpffs and the program outlives it.
// Under ip netns exec it gets a private /sys, and the bpffs it would
// mount there vanishes at exit: it refuses to start, and with --ephemeral
// starts, says the program will not outlive it, and indeed takes the
// program with it at exit.
func TestDispatcherBPFFSPersistence(t *testing.T) {
	s := newDSite(t)
	s.host("d1", 2)
	sec := fmt.Sprintf("  interface: eth0\n  services:\n%s", s.services(s.vip, "mac"))
	cfg := s.writeConfig("d1", sec)
	args := []string{"dispatch", "--config", cfg, "--instance", "d1", "--bpffs", s.bpffs, "--stats-interval", "0"}

	// ip netns exec, without --ephemeral: refused, nothing attached.
	out := s.start("d1", false, args...).wait(t, 20*time.Second)
	if !strings.Contains(out, "bpffs is private") || !strings.Contains(out, "nsenter --net") {
		t.Fatalf("under ip netns exec: want a refusal naming the private bpffs and nsenter; got:\n%s", out)
	}
	if id := s.xdpProg("d1"); id != 0 {
		t.Fatalf("program %d attached by a refused dispatcher", id)
	}

	// ip netns exec --ephemeral: runs, warns, detaches at exit.
	p := s.start("d1", false, append(args, "--ephemeral")...)
	eventually.True(t, 20*time.Second, func() bool {
		return strings.Contains(p.out.String(), "datapath attached")
	}, "ephemeral dispatcher attached")
	if !strings.Contains(p.out.String(), "private bpffs (--ephemeral)") {
		t.Fatalf("no warning that the pins do not persist:\n%s", p.out.String())
	}
	if s.xdpProg("d1") == 0 {
		t.Fatal("ephemeral dispatcher: no program on eth0")
	}
	p.stop(syscall.SIGTERM)
	eventually.True(t, 5*time.Second, func() bool { return s.xdpProg("d1") == 0 }, "program gone with the ephemeral dispatcher")

	// nsenter --net: the host's bpffs; the program stays after SIGTERM.
	p = s.dispatch("d1", sec)
	eventually.True(t, 20*time.Second, func() bool {
		return strings.Contains(p.out.String(), "datapath attached")
	}, "dispatcher attached")
	if strings.Contains(p.out.String(), "private bpffs") {
		t.Fatalf("under nsenter --net: warned of a private bpffs:\n%s", p.out.String())
	}
	prog := s.xdpProg("d1")
	p.stop(syscall.SIGTERM)
	if id := s.xdpProg("d1"); id == 0 || id != prog {
		t.Fatalf("after SIGTERM under nsenter: program %d, want %d still attached (pinned)", id, prog)
	}
	// Remove it: start with --detach and stop.
	d := s.start("d1", true, append(args, "--detach")...)
	eventually.True(t, 20*time.Second, func() bool {
		return strings.Contains(d.out.String(), "datapath attached")
	}, "dispatcher attached")
	d.stop(syscall.SIGTERM)
}

// TestDispatcherIPv6: an IPv6 VIP through the XDP dispatcher in mac
// mode: the dispatcher holds the VIP (no DAD wait) and answers the
// client's neighbour solicitation, the servers hold it on lo (IPv6 never
// answers a solicitation for an address of another interface, so no
// arp_ignore is needed) and are checked over IPv6 from the dispatcher's
// own address (not the VIP, which longest match would pick) and stay up
// throughout; every server gets requests, and the replies bypass the
// dispatcher.
func TestDispatcherIPv6(t *testing.T) {
	tp := newDTopo(t)
	p6 := func(n int) string { return fmt.Sprintf("fd00:%s::%d", strings.ReplaceAll(tp.prefix[3:], ".", ":"), n) }
	vip := p6(200)
	add6 := func(role string, n int) {
		nsExec(t, "ip", "-n", tp.hosts[role], "addr", "add", p6(n)+"/64", "dev", "eth0", "nodad")
	}
	tp.host("client", 100)
	add6("client", 100)
	tp.host("d1", 2)
	add6("d1", 2)
	var servers strings.Builder
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("s%d", i)
		tp.server(name, 10+i)
		add6(name, 10+i)
		nsExec(t, "ip", "-n", tp.hosts[name], "addr", "add", vip+"/128", "dev", "lo")
		fmt.Fprintf(&servers, "        - {address: %q, mac: %q}\n", p6(10+i), tp.mac(name))
	}
	d := tp.dispatch("d1", fmt.Sprintf("  interface: eth0\n  services:\n    - vip: %q\n      port: 80\n      check: http\n      servers:\n%s", vip, servers.String()))
	eventually.True(t, 10*time.Second, func() bool {
		return strings.Contains(d.out.String(), "service forwarding") && strings.Count(d.out.String(), "check=http up=true") == 3
	}, "dispatcher forwarding with every server up")
	eventually.True(t, 5*time.Second, func() bool { return tp.hasAddr("d1", vip) }, "d1 holds the VIP")
	for role, ns := range tp.hosts {
		if out := nsExec(t, "ip", "-n", ns, "-6", "addr", "show", "tentative"); out != "" {
			t.Fatalf("%s has tentative IPv6 addresses (it sends no neighbour solicitation from them):\n%s", role, out)
		}
	}
	rx0, _ := tp.ifaceBytes("d1")
	crx0, _ := tp.ifaceBytes("client")
	const n = 60
	by, errs := tp.get("client", "http://["+vip+"]/", n)
	if len(errs) > 0 {
		t.Fatalf("%d of %d requests failed: %v", len(errs), n, errs[0])
	}
	for _, srv := range []string{"s1", "s2", "s3"} {
		if by[srv] == 0 {
			t.Fatalf("server %s got none of %d requests: %v", srv, n, by)
		}
	}
	rx1, _ := tp.ifaceBytes("d1")
	crx1, _ := tp.ifaceBytes("client")
	got := crx1 - crx0
	t.Logf("requests by server %v; client received %d bytes, dispatcher %d", by, got, rx1-rx0)
	if got < n*20000 {
		t.Fatalf("client received only %d bytes", got)
	}
	if rx1-rx0 > got/10 {
		t.Fatalf("dispatcher received %d bytes of the client's %d: replies do not bypass it", rx1-rx0, got)
	}
	eventually.True(t, 3*time.Second, func() bool { return dispForwarded(d.out.String(), vip) >= n*4 }, "counters logged")
	// The dispatcher's own checks kept every server up: they leave from
	// its address, not from the VIP (which the servers hold themselves).
	out := d.out.String()
	if strings.Contains(out, "up=false") {
		t.Fatalf("the dispatcher marked a server down while every server served:\n%s", out)
	}
	lines := dispLoadLine.FindAllString(out, -1)
	if len(lines) == 0 {
		t.Fatalf("no load line:\n%s", out)
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "servers=3 serving=3") {
		t.Fatalf("last load line %q: want servers=3 serving=3", last)
	}
}

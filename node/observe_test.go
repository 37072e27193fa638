package node

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/internal/testnet"
	"github.com/ternlb/tern/probes"
)

// Only a flip of a member's probe verdict is an event: a verdict that
// changed only its load or error text, or that a new configuration's
// prober reported again, is none; a member's first verdict is none.
func TestProbeLogFlipsOnly(t *testing.T) {
	k := probes.Key{Pool: "web", Member: "192.0.2.1"}
	v := func(up bool, load float64) probes.Verdict {
		return probes.Verdict{Key: k, Probed: true, ProbeUp: up, Load: load, HasLoad: true}
	}
	l := newProbeLog()
	steps := []struct {
		name  string
		in    []probes.Verdict
		flips int
	}{
		{"first verdict", []probes.Verdict{v(true, 1)}, 0},
		{"load changes", []probes.Verdict{v(true, 2)}, 0},
		{"load changes again", []probes.Verdict{v(true, 3)}, 0},
		{"not probed", []probes.Verdict{{Key: k}}, 0},
		{"goes down", []probes.Verdict{v(false, 3)}, 1},
		{"a new prober reports it again", []probes.Verdict{v(false, 3)}, 0},
		{"comes up", []probes.Verdict{v(true, 0)}, 1},
	}
	for _, s := range steps {
		if got := l.flips(s.in); len(got) != s.flips {
			t.Errorf("%s: %d events, want %d", s.name, len(got), s.flips)
		}
	}
	l.keep(func(probes.Key) bool { return false })
	if got := l.flips([]probes.Verdict{v(false, 0)}); len(got) != 0 {
		t.Errorf("a member configured again after it was removed: %d events, want none (a first verdict)", len(got))
	}
}

// The history is bounded, steps its points and pads a new member's series.
func TestStatsHistory(t *testing.T) {
	h := newStatsHistory()
	h.members = 2
	t0 := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	for i := range qpsKept + 20 {
		for s := range 10 { // a sample a second, 100 queries a second
			h.sampleQPS(t0.Add(time.Duration(i*10+s)*time.Second), uint64((i*10+s)*100))
		}
	}
	st := h.snapshot()
	if len(st.QPS) != qpsKept {
		t.Fatalf("%d qps points, want %d", len(st.QPS), qpsKept)
	}
	for i, q := range st.QPS {
		if q != 100 {
			t.Fatalf("qps point %d = %g, want 100", i, q)
		}
	}
	a, b, c := probes.Key{Pool: "p", Member: "a"}, probes.Key{Pool: "p", Member: "b"}, probes.Key{Pool: "p", Member: "c"}
	now := t0
	probe := func(k probes.Key, rtt time.Duration) probes.Verdict {
		return probes.Verdict{Key: k, Probed: true, RTT: rtt, Checked: now.Add(-time.Second)}
	}
	h.sampleLatency(now, []probes.Verdict{probe(a, 5*time.Millisecond), {Key: b}})
	now = now.Add(time.Minute)
	if !h.latencyDue(now) || h.latencyDue(now.Add(-time.Second)) {
		t.Fatal("latency step due at the wrong time")
	}
	h.sampleLatency(now, []probes.Verdict{{Key: a, Probed: true, Checked: now.Add(-2 * time.Minute)}, probe(b, 7*time.Millisecond), probe(c, time.Millisecond)})
	st = h.snapshot()
	if len(st.Latency) != 2 {
		t.Fatalf("%d latency series, want 2 (the bound)", len(st.Latency))
	}
	if got := fmt.Sprint(st.Latency[0].Millis, st.Latency[1].Millis); got != "[5 -1] [-1 7]" {
		t.Errorf("latency series %s, want [5 -1] [-1 7]", got)
	}
}

// scrape returns a node's /metrics text.
func scrape(t *testing.T, n *Node) string {
	t.Helper()
	resp, err := http.Get("http://" + n.APIAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// joinNode runs node name joining a's cluster (its own pools are the
// cluster's until the first version arrives).
func joinNode(t *testing.T, a *Node, name string) *Node {
	t.Helper()
	return runNodeWith(t, fmt.Sprintf(`node:
  name: %s
  dns: ["127.0.0.1:0"]
  api: "127.0.0.1:%d"
  raft: "127.0.0.1:%d"
  data: data
  join: [%q]
pools:
  web:
    members: [{address: 127.0.0.1}]
zones:
  - file: z.zone
`, name, freePort(t), freePort(t), a.APIAddr().String()), Options{})
}

// allShow reports whether every node's /metrics holds every line of want
// and none holds absent ("": no such line).
func allShow(t *testing.T, nodes []*Node, want []string, absent string) bool {
	t.Helper()
	for _, n := range nodes {
		m := scrape(t, n)
		for _, w := range want {
			if !strings.Contains(m, w) {
				return false
			}
		}
		if absent != "" && strings.Contains(m, absent) {
			return false
		}
	}
	return true
}

// In a three-node cluster every node's /metrics shows each member's agreed
// state, what each node said, the replicated admin states in
// tern_probe_members (drain, forced_down), and the build and runtime.
func TestClusterMemberMetrics(t *testing.T) {
	a := clusterNode(t, 0)
	b, c := joinNode(t, a, "b"), joinNode(t, a, "c")
	nodes := []*Node{a, b, c}
	eventually.True(t, 30*time.Second, func() bool {
		return allShow(t, nodes, []string{
			`tern_member_up{member="127.0.0.1",pool="web"} 1`,
			`tern_member_up{member="127.0.0.2",pool="web"} 0`,
			`tern_member_vantage_up{member="127.0.0.1",node="b",pool="web"} 1`,
			`tern_member_vantage_up{member="127.0.0.2",node="c",pool="web"} 0`,
			`tern_member_vantage_up{member="127.0.0.1",node="a",pool="web"} 1`,
		}, "")
	}, "three nodes agree: 127.0.0.1 up, 127.0.0.2 down, with three vantage verdicts each")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Set through a follower's API: forwarded, replicated.
	for _, ch := range [][2]string{{"127.0.0.1", "drain"}, {"127.0.0.2", "down"}} {
		if err := (apiPools{b}).SetAdmin(ctx, "web", ch[0], ch[1]); err != nil {
			t.Fatal(err)
		}
	}
	eventually.True(t, 10*time.Second, func() bool {
		return allShow(t, nodes, []string{
			`tern_probe_members{pool="web",state="drain"} 1`,
			`tern_probe_members{pool="web",state="forced_down"} 1`,
			`tern_member_admin{admin="drain",member="127.0.0.1",pool="web"} 1`,
			`tern_member_serving{member="127.0.0.1",pool="web"} 0`,
			`tern_member_up{member="127.0.0.1",pool="web"} 1`,
		}, `tern_probe_members{pool="web",state="up"}`)
	}, "every node counts the drained and the forced-down member")
	// /v1/pools carries what the status page shows; a Raft member whose
	// API does not answer is unreachable.
	ps, err := (apiPools{a}).Pools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	web := member(ps, "web", "127.0.0.1")
	var wp api.Pool
	for _, p := range ps {
		if p.Name == "web" {
			wp = p
		}
	}
	if wp.Policy != "roundrobin" || wp.Check != "h" || wp.CheckType != "tcp" || web.Weight != 1 || web.Priority != 1 {
		t.Errorf("pool web: %+v, member %+v", wp, web)
	}
	if lc := web.LastCheck; lc == nil || !lc.OK || lc.RTTMilli <= 0 {
		t.Errorf("web/127.0.0.1 last check %+v, want a passing probe with its time", lc)
	}
	if err := a.store.Join(ctx, "gone", fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))); err != nil {
		t.Fatal(err)
	}
	ms, err := (apiCluster{a}).Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range ms {
		if cm.Reachable != (cm.ID != "gone") || (cm.ID == "gone") != (cm.Unreachable != "") {
			t.Errorf("cluster member %+v: only gone is unreachable", cm)
		}
	}
	m := scrape(t, c)
	for _, want := range []string{"go_goroutines ", "process_resident_memory_bytes ", `tern_build_info{goversion="go`, "tern_config_last_reload_success 1", "tern_config_last_reload_success_timestamp_seconds "} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Bounded: one tern_member_up per configured member, whatever was asked.
	if n := strings.Count(m, "\ntern_member_up{"); n != 3 {
		t.Errorf("%d tern_member_up series, want 3 (web's two, lb's one)", n)
	}
}

// A rejected reload sets tern_config_last_reload_success to 0 and keeps
// the last success's time; the next good one sets it back to 1.
func TestReloadMetrics(t *testing.T) {
	n, _ := startNode(t, twoMembers(fmt.Sprintf("{type: tcp, port: %d, interval: 300ms, timeout: 200ms}", freePort(t))), testZone)
	ok := func() float64 {
		mfs, err := n.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "tern_config_last_reload_success" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no tern_config_last_reload_success")
		return 0
	}
	if ok() != 1 {
		t.Fatal("a node that started is not at 1")
	}
	n.ReloadFailed(fmt.Errorf("tern.yaml:3: bad"))
	if ok() != 0 {
		t.Fatal("a rejected reload left it at 1")
	}
	n.setConfigErr("")
	if ok() != 1 {
		t.Fatal("a good reload left it at 0")
	}
}

// Applying a configuration again (three reloads, each a new prober whose
// first round reports every member) adds no event: nothing changed state.
func TestReloadAddsNoEvents(t *testing.T) {
	port := freePort(t)
	testnet.Listen(t, fmt.Sprintf("127.0.0.1:%d", port), nil)
	yaml := twoMembers(fmt.Sprintf("{type: tcp, port: %d, interval: 100ms, timeout: 80ms, fall: 1, rise: 1}", port))
	n, addr := startNode(t, yaml, testZone)
	eventually.True(t, 5*time.Second, func() bool {
		got := answers(t, addr, "www.example.test.")
		return len(got) == 1 && got[0] == "127.0.0.1"
	}, "127.0.0.2 out of the answers")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte(yaml), 0o644)
	os.WriteFile(filepath.Join(dir, "z.zone"), []byte(testZone), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "tern.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := n.Events(context.Background(), time.Time{})
	for range 3 {
		if err := n.Reload(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		n.mu.Lock()
		g := n.gen
		n.mu.Unlock()
		if err := g.prober.FirstRound(context.Background(), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // three more probe rounds
	after, _ := n.Events(context.Background(), time.Time{})
	if len(after) != len(before) {
		t.Errorf("reloads added events: %+v", after[len(before):])
	}
}

// A member whose reported load changes at every probe is no state change:
// no event (it used to log a down→up event at each new load).
func TestLoadChangesAddNoEvents(t *testing.T) {
	var calls atomic.Int64
	agent := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"load": %d, "capacity": 100}`, calls.Add(1))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go agent.Serve(ln)
	t.Cleanup(func() { agent.Close() })
	n, _ := startNode(t, fmt.Sprintf(`node:
  name: t1
  dns: ["127.0.0.1:0"]
checks:
  agent: {type: load, interval: 100ms, timeout: 80ms, load_smoothing: 1}
pools:
  web:
    policy: load
    check: agent
    members: [{address: 192.0.2.1, probe: %q}]
zones:
  - file: z.zone
`, ln.Addr().String()), testZone)
	start := calls.Load()
	eventually.True(t, 10*time.Second, func() bool { return calls.Load() >= start+5 }, "five more load reports")
	if evs, _ := n.Events(context.Background(), time.Time{}); len(evs) != 0 {
		t.Errorf("load changes made events: %+v", evs)
	}
}

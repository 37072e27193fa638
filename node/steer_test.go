package node

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/internal/testnet"
)

// delayed is a loopback HTTP backend that answers after a delay that can
// be changed while it runs.
type delayed struct {
	addr  string
	delay atomic.Int64 // nanoseconds
}

func startDelayed(t *testing.T, d time.Duration) *delayed {
	t.Helper()
	b := &delayed{}
	b.delay.Store(int64(d))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Duration(b.delay.Load()))
		fmt.Fprintln(w, "ok")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return b
}

// loadAgent is a loopback load-check agent reporting a settable load.
func loadAgent(t *testing.T, load float64) (string, *atomic.Int64) {
	t.Helper()
	var l atomic.Int64
	l.Store(int64(load))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"load": %d}`, l.Load())
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), &l
}

// first returns the first A address answered to a query from ECS subnet
// sub (nil: no ECS option).
func firstAnswer(t *testing.T, addr, name string, sub *netip.Prefix) string {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	if sub != nil {
		m.SetEdns0(1232, false)
		a := sub.Addr().As4()
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: uint8(sub.Bits()), Address: a[:]})
	}
	r, err := dns.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

// TestLatencyEndToEnd: real loopback HTTP backends that delay their
// answers by different amounts. The fast ones are chosen, the two within
// the tolerance band share by weight, and a fast one that becomes slow
// loses its share within a bounded time.
func TestLatencyEndToEnd(t *testing.T) {
	a := startDelayed(t, 0)
	b := startDelayed(t, 5*time.Millisecond)
	c := startDelayed(t, 120*time.Millisecond)
	yaml := fmt.Sprintf(`node:
  name: t1
  dns: ["127.0.0.1:0"]
checks:
  h: {type: http, port: 80, path: /, interval: 400ms, timeout: 350ms, fall: 1, rise: 1, rtt_half_life: 200ms, rtt_hysteresis: 0.05}
pools:
  web:
    policy: latency
    check: h
    answers: 1
    tolerance: 30ms
    members:
      - {address: 192.0.2.1, probe: %q, weight: 1}
      - {address: 192.0.2.2, probe: %q, weight: 3}
      - {address: 192.0.2.3, probe: %q, weight: 4}
zones:
  - file: z.zone
`, a.addr, b.addr, c.addr)
	n, dnsAddr := startNode(t, yaml, testZone)
	share := func(n int) map[string]float64 {
		cnt := map[string]float64{}
		for range n {
			cnt[firstAnswer(t, dnsAddr, "www.example.test.", nil)]++
		}
		for k := range cnt {
			cnt[k] /= float64(n)
		}
		return cnt
	}
	// Wait for the RTTs to be measured and the slow one left out.
	eventually.True(t, 15*time.Second, func() bool {
		s := share(50)
		return s["192.0.2.3"] == 0 && s["192.0.2.1"] > 0 && s["192.0.2.2"] > 0
	}, "the slow member out of answers")
	s := share(2000)
	if s["192.0.2.3"] != 0 {
		t.Errorf("the 120ms member got %.3f of the answers", s["192.0.2.3"])
	}
	if math.Abs(s["192.0.2.2"]-0.75) > 0.05 {
		t.Errorf("within tolerance, weight 3 of 4 got %.3f (%v)", s["192.0.2.2"], s)
	}
	// tern explain (the live node's /v1/explain) shows the RTTs the
	// latency stage used, as measured.
	ex, err := n.Explain(context.Background(), "www.example.test", "198.51.100.1")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`RTTs from node t1, the answering node's own [^:]*: 192\.0\.2\.1=([0-9.]+)ms 192\.0\.2\.2=([0-9.]+)ms 192\.0\.2\.3=([0-9.]+)ms`).FindStringSubmatch(ex.Text)
	if m == nil {
		t.Fatalf("explain lacks the latency stage's RTTs:\n%s", ex.Text)
	}
	if slow, _ := strconv.ParseFloat(m[3], 64); slow < 120 {
		t.Errorf("explain: 192.0.2.3 (delays 120ms) at %sms", m[3])
	}
	if fast, _ := strconv.ParseFloat(m[2], 64); fast >= 60 {
		t.Errorf("explain: 192.0.2.2 (delays 5ms) at %sms", m[2])
	}
	// 192.0.2.2 turns slow: it should lose its share within a few
	// half-lives of the smoothing.
	b.delay.Store(int64(250 * time.Millisecond))
	took := eventually.True(t, 10*time.Second, func() bool {
		s := share(50)
		return s["192.0.2.2"] == 0 && s["192.0.2.1"] == 1
	}, "the member that became slow out of answers")
	t.Logf("a member that went from 5ms to 250ms lost its share in %v", took)
}

// TestSpillEndToEnd: three sites of capacity 100 report load through
// load checks on loopback; the first, at 150 with spill_at 0.9, sheds 40%
// of its clients (by subnet) to the other two in proportion to their free
// capacity (70 and 40); an operator's site shed then raises its share
// moved, and 0 puts it back.
func TestSpillEndToEnd(t *testing.T) {
	a1, _ := loadAgent(t, 150)
	a2, _ := loadAgent(t, 20)
	a3, _ := loadAgent(t, 50)
	yaml := fmt.Sprintf(`node:
  name: t1
  dns: ["127.0.0.1:0"]
sites:
  s1: {location: [51.5, -0.1], capacity: 100}
  s2: {location: [50.1, 8.7], capacity: 100}
  s3: {location: [48.9, 2.4], capacity: 100}
geo:
  maps:
    m: {"0.0.0.0/0": [s1, s2, s3]}
checks:
  l: {type: load, interval: 200ms, timeout: 150ms, load_smoothing: 1}
pools:
  web:
    policy: geo
    map: m
    check: l
    answers: 1
    spill_at: 0.9
    members:
      - {address: 192.0.2.1, site: s1, probe: %q}
      - {address: 192.0.2.2, site: s2, probe: %q}
      - {address: 192.0.2.3, site: s3, probe: %q}
zones:
  - file: z.zone
`, a1, a2, a3)
	n, dnsAddr := startNode(t, yaml, testZone)
	share := func(n int) map[string]float64 {
		cnt := map[string]float64{}
		for k := range n {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(k >> 8), byte(k), 0}), 24)
			got := firstAnswer(t, dnsAddr, "www.example.test.", &p)
			if again := firstAnswer(t, dnsAddr, "www.example.test.", &p); again != got {
				t.Fatalf("subnet %v: %s then %s", p, got, again)
			}
			cnt[got]++
		}
		for k := range cnt {
			cnt[k] /= float64(n)
		}
		return cnt
	}
	check := func(what string, want map[string]float64) {
		t.Helper()
		var s map[string]float64
		eventually.True(t, 10*time.Second, func() bool {
			s = share(1500)
			for m, w := range want {
				if math.Abs(s[m]-w) > 0.04 {
					return false
				}
			}
			return true
		}, what)
		t.Logf("%s: %v", what, s)
	}
	check("s1 at 150 of 100 sheds 40% over s2 and s3 by free capacity 70:40",
		map[string]float64{"192.0.2.1": 0.6, "192.0.2.2": 0.4 * 70 / 110, "192.0.2.3": 0.4 * 40 / 110})
	// /v1/pools (the status page's source) says the same: each member's
	// site capacity, the site's load and the share it spills.
	checkCapacity := func(admin string) {
		t.Helper()
		ps, err := (apiPools{n}).Pools(context.Background())
		if err != nil || len(ps) != 1 || ps[0].SpillAt != 0.9 {
			t.Fatalf("pools %+v, %v", ps, err)
		}
		want := map[string][3]float64{"192.0.2.1": {150, 0.4}, "192.0.2.2": {20, 0}, "192.0.2.3": {50, 0}}
		for _, m := range ps[0].Members {
			w := want[m.Address]
			if m.Capacity != 100 || m.CapacityOf != "site" || m.CapacityLoad != w[0] || math.Abs(m.Spill-w[1]) > 1e-9 {
				t.Errorf("%s: capacity %g of %s, load %g, spill %g; want 100 of site, %g, %g", m.Address, m.Capacity, m.CapacityOf, m.CapacityLoad, m.Spill, w[0], w[1])
			}
			if m.Address == "192.0.2.1" && m.Admin != admin {
				t.Errorf("%s: admin %q, want %q", m.Address, m.Admin, admin)
			}
		}
	}
	checkCapacity("auto")
	// tern explain shows the loads the spill stage read and why a client
	// stays or moves.
	ex, err := n.Explain(context.Background(), "www.example.test", "10.0.0.0/24")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ex.Text, "192.0.2.1: site s1 load 150 over 90 (0.9 of capacity 100): 40.0% of its clients move") {
		t.Errorf("explain lacks the spill stage's loads:\n%s", ex.Text)
	}
	for k := 0; ; k++ {
		if k == 256 {
			t.Fatal("explain: no subnet of 256 moved off s1, which sheds 40%")
		}
		ex, err := n.Explain(context.Background(), "www.example.test", fmt.Sprintf("10.0.%d.0/24", k))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(ex.Text, "answer: 192.0.2.1\n") {
			continue
		}
		for _, w := range []string{"40.0% of its clients move; the whole first tier sheds this client: moved to the tier of 192.0.2.", "(picked by free capacity: ", "dropped 192.0.2.1: not in the first tier"} {
			if !strings.Contains(ex.Text, w) {
				t.Errorf("explain of a moved client lacks %q:\n%s", w, ex.Text)
			}
		}
		break
	}
	if _, err := (apiPools{n}).ShedSite(context.Background(), "s1", 70); err != nil {
		t.Fatal(err)
	}
	checkCapacity("shed:70")
	check("tern site shed s1 70", map[string]float64{"192.0.2.1": 0.3, "192.0.2.2": 0.7 * 70 / 110, "192.0.2.3": 0.7 * 40 / 110})
	if _, err := (apiPools{n}).ShedSite(context.Background(), "s1", 0); err != nil {
		t.Fatal(err)
	}
	check("site shed back to 0", map[string]float64{"192.0.2.1": 0.6})
}

// TestClusterShedReplicated: in a (one-node) cluster, tern site shed and
// tern member shed go through Raft: the FSM holds shed:N for each member
// of the site, and the snapshot served sheds that share.
func TestClusterShedReplicated(t *testing.T) {
	port := freePort(t)
	testnet.Listen(t, fmt.Sprintf("127.0.0.1:%d", port), nil)
	yaml := fmt.Sprintf(`node:
  name: a
  dns: ["127.0.0.1:0"]
  raft: "127.0.0.1:%d"
  data: data
  bootstrap: true
sites:
  s1: {location: [51.5, -0.1]}
  s2: {location: [50.1, 8.7]}
checks:
  h: {type: tcp, port: %d, interval: 200ms, timeout: 150ms, fall: 1, rise: 1}
pools:
  web:
    check: h
    members: [{address: 127.0.0.1, site: s1}, {address: 127.0.0.2, site: s1}, {address: 127.0.0.3, site: s2}]
  other:
    check: h
    members: [{address: 127.0.0.4, site: s1}]
zones:
  - file: z.zone
`, freePort(t), port)
	n := runNodeWith(t, yaml, Options{})
	eventually.True(t, 15*time.Second, func() bool { return n.store.IsLeader() }, "a leader")
	ctx := context.Background()
	got, err := (apiPools{n}).ShedSite(ctx, "s1", 40)
	if err != nil || got != 3 {
		t.Fatalf("ShedSite: %d members, %v; want 3", got, err)
	}
	if err := (apiPools{n}).SetAdmin(ctx, "web", "127.0.0.3", "shed:10"); err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]string{
		{"web", "127.0.0.1"}: "shed:40", {"web", "127.0.0.2"}: "shed:40",
		{"other", "127.0.0.4"}: "shed:40", {"web", "127.0.0.3"}: "shed:10",
	}
	st := n.store.State()
	for k, w := range want {
		if a := st.Admin(k[0], k[1]); string(a) != w {
			t.Errorf("%s/%s: replicated admin %q, want %q", k[0], k[1], a, w)
		}
	}
	snap := n.served.Load()
	for _, p := range snap.Pools.All() {
		for i, m := range p.Members {
			w := 0.4
			if m.Site == "s2" {
				w = 0.1
			}
			if s := p.Status(i).Shed; s != w {
				t.Errorf("%s/%s: served shed %v, want %v", p.Name, m.Name(), s, w)
			}
		}
	}
	if _, err := (apiPools{n}).ShedSite(ctx, "nowhere", 40); err == nil {
		t.Error("a site with no members shed without an error")
	}
}

// capacities: a site's capacity counts before its member's own, against
// the summed load of the site's members up; a member's own against its
// load; the share past spill_at spills; no capacity, no figures.
func TestCapacities(t *testing.T) {
	sites := map[string]config.Site{"s1": {Capacity: 100}, "s2": {}}
	cp := config.Pool{SpillAt: 0.8, Members: []config.Member{
		{Address: "192.0.2.1", Site: "s1", Capacity: 10},
		{Address: "192.0.2.2", Site: "s1"},
		{Address: "192.0.2.3", Site: "s1"},
		{Address: "192.0.2.4", Site: "s2", Capacity: 50},
		{Address: "192.0.2.5", Site: "s2", Capacity: 50},
		{Address: "192.0.2.6", Site: "s2"},
	}}
	ap := api.Pool{Members: []api.PoolMember{
		{Address: "192.0.2.1", Site: "s1", Up: true, Load: 70},
		{Address: "192.0.2.2", Site: "s1", Up: true, Load: 50},
		{Address: "192.0.2.3", Site: "s1", Load: 500}, // down or drained: not the site's load
		{Address: "192.0.2.4", Site: "s2", Up: true, Load: 80},
		{Address: "192.0.2.5", Site: "s2", Up: true, Load: 30},
		{Address: "192.0.2.6", Site: "s2", Up: true, Load: 90},
	}}
	capacities(&ap, cp, sites)
	for i, tc := range []struct {
		name            string
		capacity        float64
		of              string
		load, wantSpill float64
	}{
		{"site capacity before the member's", 100, "site", 120, 1 - 80.0/120},
		{"site member without its own", 100, "site", 120, 1 - 80.0/120},
		{"site member down", 100, "site", 120, 1 - 80.0/120},
		{"member over spill_at", 50, "member", 80, 0.5},
		{"member below spill_at", 50, "member", 30, 0},
		{"no capacity", 0, "", 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := ap.Members[i]
			if m.Capacity != tc.capacity || m.CapacityOf != tc.of || m.CapacityLoad != tc.load || math.Abs(m.Spill-tc.wantSpill) > 1e-9 {
				t.Errorf("%s: capacity %g of %q, load %g, spill %g; want %g of %q, %g, %g", m.Address, m.Capacity, m.CapacityOf, m.CapacityLoad, m.Spill, tc.capacity, tc.of, tc.load, tc.wantSpill)
			}
		})
	}
	if ap.SpillAt != 0.8 {
		t.Errorf("spill_at %g", ap.SpillAt)
	}
	none := api.Pool{Members: []api.PoolMember{{Address: "192.0.2.6", Site: "s2", Up: true, Load: 90}}}
	capacities(&none, config.Pool{SpillAt: 0.9, Members: cp.Members[5:]}, sites)
	if none.SpillAt != 0 {
		t.Errorf("a pool without capacities says spill_at %g", none.SpillAt)
	}
}

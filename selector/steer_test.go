package selector

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"

	"github.com/ternlb/tern/config"
	"testing"
)

// Three vantage nodes: n1 (the answering node) in London, n2 in
// Washington, n3 in Tokyo.
const steerNodes = `nodes:
  n1: {site: eu-west}
  n2: {site: us-east}
  n3: {location: [35.68, 139.75]}
checks:
  tcp: {type: tcp, port: 80}
geo:
`

// withRTT returns p with every member up and the given RTTs (ms) by node;
// a missing member or node is unmeasured.
func withRTT(p *Pool, rtt map[string]map[string]float64) *Pool {
	st := make([]Status, len(p.Members))
	for i, m := range p.Members {
		st[i] = Status{Up: true}
		for node, ms := range rtt[m.Name()] {
			st[i].RTT = append(st[i].RTT, RTT{Node: node, Seconds: ms / 1000})
		}
	}
	return p.WithStatus(st)
}

func TestLatency(t *testing.T) {
	const pool = `  p:
    policy: latency
    check: tcp
    answers: 3
    %s
    members:
      - {address: 192.0.2.1}
      - {address: 192.0.2.2}
      - {address: 192.0.2.3}
      - {address: 192.0.2.4}
`
	rtts := map[string]map[string]float64{
		"192.0.2.1": {"n1": 10, "n2": 80, "n3": 200},
		"192.0.2.2": {"n1": 12, "n2": 70, "n3": 150},
		"192.0.2.3": {"n1": 90, "n2": 5, "n3": 160},
		"192.0.2.4": {"n1": 100, "n2": 95}, // n3 has not measured it: n1's 100
	}
	tests := []struct {
		name, opts, client string
		want               []string // as sets when sorted is true
		sorted             bool
		scope              int
	}{
		{"London client: n1's RTTs, 1 and 2 within 5ms", "", "81.2.69.0/24", []string{"192.0.2.1", "192.0.2.2"}, true, 16},
		{"Seattle client: n2 nearest, 3 alone", "", "216.160.83.0/24", []string{"192.0.2.3"}, false, 16},
		{"Tokyo client: n3, 4 falls back to n1's 100ms", "", "2001:218::/48", []string{"192.0.2.4"}, false, 32},
		{"tolerance 1ms: only 1", "tolerance: 1ms", "81.2.69.0/24", []string{"192.0.2.1"}, false, 16},
		{"fill next_tier: fastest band, then in RTT order", "fill: next_tier", "81.2.69.0/24", []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}, true, 16},
		{"tolerance 80ms: 5, 70 and 80 within", "tolerance: 80ms", "216.160.83.0/24", []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}, true, 16},
		{"unknown client: the answering node's own", "", "198.51.100.0/24", []string{"192.0.2.1", "192.0.2.2"}, true, 16},
		{"max_rtt 155ms drops 1 and 3 even with fill", "{max_rtt: 155ms, fill: next_tier}", "2001:218::/48", []string{"192.0.2.4", "192.0.2.2"}, false, 32},
		{"max_rtt 1ms: every member slower, none dropped", "max_rtt: 1ms", "81.2.69.0/24", []string{"192.0.2.1", "192.0.2.2"}, true, 16},
	}
	s := NewScratch(8)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			if len(opts) > 0 && opts[0] == '{' { // several options on one line
				opts = ""
				for _, kv := range splitFlow(tc.opts) {
					opts += kv + "\n    "
				}
			}
			pools, err := CompileLocated(configWith(t, fmt.Sprintf(pool, opts), steerNodes), testLocator)
			if err != nil {
				t.Fatal(err)
			}
			p := withRTT(pools[0], rtts)
			for range 20 {
				a := p.Select(client(tc.client), IPv4, s)
				got := names(a)
				if tc.sorted {
					slices.Sort(got)
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
				if a.Scope != tc.scope {
					t.Fatalf("scope %d, want %d", a.Scope, tc.scope)
				}
			}
		})
	}
}

func splitFlow(s string) []string {
	var out []string
	for _, kv := range slices.Collect(func(yield func(string) bool) {
		cur := ""
		for _, r := range s[1 : len(s)-1] {
			if r == ',' {
				if !yield(cur) {
					return
				}
				cur = ""
				continue
			}
			cur += string(r)
		}
		yield(cur)
	}) {
		for len(kv) > 0 && kv[0] == ' ' {
			kv = kv[1:]
		}
		out = append(out, kv)
	}
	return out
}

// TestLatencyToleranceSharesByWeight: members within the tolerance band
// share the answers by weight.
func TestLatencyToleranceSharesByWeight(t *testing.T) {
	pools, err := Compile(configWith(t, `  p:
    policy: latency
    check: tcp
    answers: 1
    tolerance: 10ms
    members:
      - {address: 192.0.2.1, weight: 3}
      - {address: 192.0.2.2, weight: 1}
      - {address: 192.0.2.3, weight: 4}
`, "checks:\n  tcp: {type: tcp, port: 80}\ngeo:\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := withRTT(pools[0], map[string]map[string]float64{
		"192.0.2.1": {"n1": 20}, "192.0.2.2": {"n1": 25}, "192.0.2.3": {"n1": 40},
	})
	s := NewScratch(4)
	s.Seed(1)
	cnt := map[string]int{}
	const n = 40000
	for range n {
		cnt[names(p.Select(client("198.51.100.1"), IPv4, s))[0]]++
	}
	if cnt["192.0.2.3"] != 0 {
		t.Errorf("the slow member got %d answers", cnt["192.0.2.3"])
	}
	if share := float64(cnt["192.0.2.1"]) / n; math.Abs(share-0.75) > 0.02 {
		t.Errorf("weight 3 of 4 got %.3f of the answers", share)
	}
}

// TestSpillStatistical: a site over capacity sheds its excess share of
// clients, chosen by subnet hash: over many subnets the moved share is
// within 2 points of the configured one, the moved clients spread over
// the next sites by free capacity, and a subnet always gets one answer.
func TestSpillStatistical(t *testing.T) {
	c := configWith(t, `  web:
    chain: [healthy, geo, spill, roundrobin, first]
    map: m
    spill_at: 0.8
    members:
      - {address: 192.0.2.1, site: eu-west}
      - {address: 192.0.2.2, site: us-east}
      - {address: 192.0.2.3, site: ap-east}
`, "geo:\n  maps:\n    m: {default: [eu-west, us-east, ap-east]}\n")
	c.Sites["eu-west"] = withCap(c.Sites["eu-west"], 100)
	c.Sites["us-east"] = withCap(c.Sites["us-east"], 100)
	c.Sites["ap-east"] = withCap(c.Sites["ap-east"], 100)
	pools, err := Compile(c)
	if err != nil {
		t.Fatal(err)
	}
	// eu-west at load 100 of 80 allowed: 20% of its clients move; us-east
	// has 60 free, ap-east 20: 3 to 1.
	p := pools[0].WithStatus([]Status{{Up: true, Load: 100}, {Up: true, Load: 20}, {Up: true, Load: 60}})
	for _, tc := range []struct {
		name string
		p    *Pool
		want map[string]float64
	}{
		{"capacity", p, map[string]float64{"192.0.2.1": 0.8, "192.0.2.2": 0.15, "192.0.2.3": 0.05}},
		{"operator shed 30%", pools[0].WithStatus([]Status{{Up: true, Shed: 0.3}, {Up: true}, {Up: true}}), map[string]float64{"192.0.2.1": 0.7, "192.0.2.2": 0.15, "192.0.2.3": 0.15}},
		{"below spill_at: nothing moves", pools[0].WithStatus([]Status{{Up: true, Load: 79}, {Up: true}, {Up: true}}), map[string]float64{"192.0.2.1": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewScratch(4)
			cnt := map[string]int{}
			const n = 20000
			for k := range n {
				cl := &Client{Addr: netip.AddrFrom4([4]byte{byte(k >> 16), byte(k >> 8), byte(k), 0}), SourcePrefix: 24}
				a := tc.p.Select(cl, IPv4, s)
				got := names(a)
				if len(got) != 1 {
					t.Fatalf("%v: %v", cl.Addr, got)
				}
				if again := names(tc.p.Select(cl, IPv4, s)); !slices.Equal(again, got) {
					t.Fatalf("%v: %v then %v", cl.Addr, got, again)
				}
				if tc.p.spill.any && a.Scope != 24 {
					t.Fatalf("scope %d, want the sticky prefix 24", a.Scope)
				}
				cnt[got[0]]++
			}
			for m, want := range tc.want {
				if share := float64(cnt[m]) / n; math.Abs(share-want) > 0.02 {
					t.Errorf("%s: share %.3f, want %.3f ± 0.02 (%v)", m, share, want, cnt)
				}
			}
		})
	}
}

// TestSpillSmooth: the moved share follows the load continuously.
func TestSpillSmooth(t *testing.T) {
	c := configWith(t, `  web:
    policy: geo
    map: m
    members:
      - {address: 192.0.2.1, site: eu-west}
      - {address: 192.0.2.2, site: us-east}
`, "geo:\n  maps:\n    m: {default: [eu-west, us-east]}\n")
	c.Sites["eu-west"] = withCap(c.Sites["eu-west"], 100)
	pools, err := Compile(c)
	if err != nil {
		t.Fatal(err)
	}
	prev := 0.0
	for load := 85.0; load <= 200; load += 5 {
		p := pools[0].WithStatus([]Status{{Up: true, Load: load}, {Up: true}})
		s := NewScratch(2)
		moved := 0
		const n = 5000
		for k := range n {
			cl := &Client{Addr: netip.AddrFrom4([4]byte{10, byte(k >> 8), byte(k), 0}), SourcePrefix: 24}
			if names(p.Select(cl, IPv4, s))[0] == "192.0.2.2" {
				moved++
			}
		}
		share := float64(moved) / n
		if want := max(0, 1-90/load); math.Abs(share-want) > 0.03 || share < prev-0.03 {
			t.Errorf("load %v: moved %.3f, want %.3f (previous %.3f)", load, share, want, prev)
		}
		prev = share
	}
}

func TestSteerAllocs(t *testing.T) {
	pools, err := CompileLocated(configWith(t, `  p:
    chain: [healthy, geo, latency, spill, weighted, first]
    check: tcp
    answers: 2
    members:
      - {address: 192.0.2.1, site: eu-west}
      - {address: 192.0.2.2, site: us-east}
      - {address: 192.0.2.3, site: ap-east}
      - {address: 192.0.2.4, site: eu-west}
`, steerNodes), testLocator)
	if err != nil {
		t.Fatal(err)
	}
	p := pools[0].WithStatus([]Status{
		{Up: true, Shed: 0.5, RTT: []RTT{{"n1", 0.01}, {"n2", 0.02}}},
		{Up: true, RTT: []RTT{{"n1", 0.05}}},
		{Up: true, RTT: []RTT{{"n3", 0.01}}},
		{Up: true, Shed: 0.5, RTT: []RTT{{"n1", 0.012}}},
	})
	s := NewScratch(4)
	for _, addr := range []string{"81.2.69.0/24", "216.160.83.0/24", "198.51.100.0/24"} {
		c := client(addr)
		if n := testing.AllocsPerRun(200, func() { p.Select(c, IPv4, s) }); n != 0 {
			t.Errorf("%s: %v allocations per decision, want 0", addr, n)
		}
	}
}

func withCap(s config.Site, c float64) config.Site { s.Capacity = c; return s }

// TestExplainSteer: explain shows the RTTs the latency stage read and
// from which node, the loads and shares the spill stage read, and why
// each member was kept, moved or dropped.
func TestExplainSteer(t *testing.T) {
	c := configWith(t, `  p:
    chain: [healthy, geo, latency, spill, weighted, first]
    map: m
    check: tcp
    answers: 2
    max_rtt: 100ms
    members:
      - {address: 192.0.2.1, site: eu-west}
      - {address: 192.0.2.2, site: eu-west}
      - {address: 192.0.2.3, site: us-east}
      - {address: 192.0.2.4, site: ap-east}
`, steerNodes+"  maps:\n    m: {default: [eu-west, us-east, ap-east]}\n")
	c.Sites["eu-west"] = withCap(c.Sites["eu-west"], 100)
	c.Sites["us-east"] = withCap(c.Sites["us-east"], 100)
	pools, err := CompileLocated(c, testLocator)
	if err != nil {
		t.Fatal(err)
	}
	// eu-west at 180 of 90 allowed sheds half its clients (192.0.2.2 still
	// counts toward the site's load: it serves, only slowly for this client).
	p := pools[0].WithStatus([]Status{
		{Up: true, Load: 90, RTT: []RTT{{"n1", 0.010}}},
		{Up: true, Load: 90, RTT: []RTT{{"n1", 0.150}}},
		{Up: true, Load: 10, RTT: []RTT{{"n1", 0.080}, {"n2", 0.004}}},
		{Up: true, RTT: []RTT{{"n1", 0.200}}},
	})
	// Find one London subnet that moves and one that stays.
	var moved, stayed string
	s := NewScratch(4)
	for k := 0; k < 256 && (moved == "" || stayed == ""); k++ {
		cl := client(fmt.Sprintf("81.2.%d.0/24", k))
		switch names(p.Select(cl, IPv4, s))[0] {
		case "192.0.2.3":
			moved = cl.Addr.String()
		case "192.0.2.1":
			stayed = cl.Addr.String()
		}
	}
	if moved == "" || stayed == "" {
		t.Fatalf("no subnet moved (%q) or stayed (%q)", moved, stayed)
	}
	for _, tc := range []struct {
		client string
		want   []string
	}{
		{stayed + "/24", []string{
			"RTTs from node n1, the node nearest the client; tolerance 5ms, max_rtt 100ms: 192.0.2.1=10.0ms 192.0.2.2=150.0ms",
			"dropped 192.0.2.2: RTT 150.0ms above max_rtt 100ms",
			"192.0.2.1: site eu-west load 180 over 90 (0.9 of capacity 100): 50.0% of its clients move",
			"answer: 192.0.2.1\n",
		}},
		{moved + "/24", []string{
			"the whole first tier sheds this client: moved to the tier of 192.0.2.3 (picked by free capacity: 192.0.2.3=80",
			"dropped 192.0.2.1: not in the first tier",
			"answer: 192.0.2.3\n",
		}},
	} {
		cl := client(tc.client)
		var b strings.Builder
		if err := WriteExplain(&b, p, *cl, IPv4, 30); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: explain lacks %q:\n%s", tc.client, w, b.String())
			}
		}
	}
}

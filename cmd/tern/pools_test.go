package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ternlb/tern/api"
)

// tern pool show has RTT and ANSWERS columns: the median of the vantage
// nodes' fresh smoothed RTTs (else this node's last good probe), each
// vantage node's own RTT on its row, and the answers this node gave.
func TestPoolShowColumns(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	pool := api.Pool{Name: "web", Members: []api.PoolMember{
		{Address: "192.0.2.10", Up: true, Admin: "auto", Answers: 42,
			Verdicts: []api.Verdict{{Node: "n1", Up: true, At: at, Prober: true}, {Node: "n2", Up: true, At: at, Prober: true}, {Node: "n3", Up: true, At: at, Prober: true}},
			RTTs:     []api.RTTReport{{Node: "n1", Seconds: 0.010, At: at}, {Node: "n2", Seconds: 0.020, At: at}, {Node: "n3", Seconds: 0.5, At: at, Stale: true}}},
		{Address: "192.0.2.11", Up: true, Admin: "auto", LastCheck: &api.CheckResult{At: at, OK: true, RTTMilli: 0.85}},
		{Address: "192.0.2.12", Admin: "down", Why: "forced down"},
	}}
	addr := startAPI(t, &fakeAPI{pools: []api.Pool{pool}})
	out, stderr, code := runTern("pool", "show", "web", "--api", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "MEMBER STATE ADMIN LOAD RTT ANSWERS WHY" {
		t.Fatalf("header %q", lines[0])
	}
	want := map[string]string{
		"192.0.2.10": "192.0.2.10 up auto - 15ms 42 -",
		"from n1":    "from n1 up 10ms prober, at 2026-12-02T10:00:00Z",
		"from n3":    "from n3 up 500ms (stale) prober, at 2026-12-02T10:00:00Z",
		"192.0.2.11": "192.0.2.11 up auto - 850µs 0 -",
		"192.0.2.12": "192.0.2.12 down down - - 0 forced down",
	}
	for _, l := range lines[1:] {
		f := strings.Join(strings.Fields(l), " ")
		for k, w := range want {
			if strings.HasPrefix(f, k+" ") {
				if f != w {
					t.Errorf("row %q, want %q", f, w)
				}
				delete(want, k)
			}
		}
	}
	for k := range want {
		t.Errorf("no row for %s in\n%s", k, out)
	}

	js, _, _ := runTern("pool", "show", "web", "--api", addr, "-o", "json")
	var got api.Pool
	if err := json.Unmarshal([]byte(js), &got); err != nil || got.Members[0].Answers != 42 || len(got.Members[0].RTTs) != 3 {
		t.Errorf("-o json: %v %s", err, js)
	}
}

// tern status shows each pool's members up and the median RTT of its
// members up (with the slowest when there are several), and -o json
// carries every member's RTT beside the node's status fields.
func TestStatusPools(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	pools := []api.Pool{
		{Name: "web", Members: []api.PoolMember{
			{Address: "192.0.2.10", Up: true, RTTs: []api.RTTReport{{Node: "n1", Seconds: 0.010, At: at}, {Node: "n2", Seconds: 0.030, At: at}}},
			{Address: "192.0.2.11", Up: true, RTTs: []api.RTTReport{{Node: "n1", Seconds: 0.040, At: at}, {Node: "n2", Seconds: 0.9, At: at, Stale: true}}},
			{Address: "192.0.2.12", Up: true, LastCheck: &api.CheckResult{At: at, OK: true, RTTMilli: 5}},
			{Address: "192.0.2.13", RTTs: []api.RTTReport{{Node: "n1", Seconds: 2, At: at}}},
		}},
		{Name: "mail", Members: []api.PoolMember{{Address: "203.0.113.5", Up: true}, {Address: "203.0.113.6"}}},
		{Name: "one", Members: []api.PoolMember{{Address: "198.51.100.1", Up: true, RTTs: []api.RTTReport{{Node: "n1", Seconds: 0.0123, At: at}}}}},
	}
	addr := startAPI(t, &fakeAPI{inQuorum: true, pools: pools})
	out, stderr, code := runTern("status", "--api", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rows := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == "pool" {
			rows[f[1]] = strings.Join(f[2:], " ")
		}
	}
	for pool, want := range map[string]string{
		// 20ms (median of n1 and n2), 40ms (n2's stale one left out), 5ms
		// (the last check here); the down member's 2s counts in no median.
		"web":  "3 of 4 up, RTT median 20ms, slowest 192.0.2.11 40ms",
		"mail": "1 of 2 up, no RTT measured",
		"one":  "1 of 1 up, RTT median 12.3ms",
	} {
		if rows[pool] != want {
			t.Errorf("pool %s row %q, want %q\n%s", pool, rows[pool], want, out)
		}
	}

	js, _, _ := runTern("status", "--api", addr, "-o", "json")
	var got statusView
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatalf("%v\n%s", err, js)
	}
	if got.Node != "n1" || !got.InQuorum || len(got.Pools) != 3 {
		t.Fatalf("-o json: %+v", got)
	}
	web := got.Pools[0]
	var rtts []float64
	for _, m := range web.Members {
		rtts = append(rtts, m.RTTSeconds)
	}
	if web.Name != "web" || web.MembersUp != 3 || web.MembersTotal != 4 || web.RTTMedian != 0.020 || !slices.Equal(rtts, []float64{0.020, 0.040, 0.005, 2}) {
		t.Errorf("-o json web: %+v", web)
	}
	if !strings.Contains(js, `"rtt_seconds": 0.04`) || !strings.Contains(js, `"in_quorum": true`) {
		t.Errorf("-o json field names:\n%s", js)
	}
}

package main

import (
	"encoding/json"
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

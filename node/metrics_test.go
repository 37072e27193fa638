package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/internal/eventually"
)

// TestMetricsEventsStats scrapes a running single-node cluster's /metrics
// and checks the families an operator's dashboards use, then the status
// page's /v1/stats and /v1/events.
func TestMetricsEventsStats(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`node:
  name: m1
  dns: ["127.0.0.1:0"]
  api: "127.0.0.1:0"
  raft: "127.0.0.1:0"
  data: %q
  bootstrap: true
checks:
  h: {type: http, port: %d, interval: 200ms, timeout: 100ms, fall: 1, rise: 1}
pools:
  web:
    check: h
    members: [{address: 127.0.0.1}, {address: 127.0.0.2}]
zones:
  - file: z.zone
`, filepath.Join(dir, "data"), port)
	b1 := &backend{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	b2 := &backend{addr: fmt.Sprintf("127.0.0.2:%d", port)}
	b1.start(t)
	b2.start(t)
	defer b1.stop()
	n := runNode(t, dir, yaml, testZone)
	<-n.Serving()
	addr := n.DNSAddrs()[0].String()
	for range 20 {
		answers(t, addr, "www.example.test.")
		answers(t, addr, "nope.example.test.")
	}
	b2.stop() // a state change for the events
	eventually.True(t, 5*time.Second, func() bool {
		got := answers(t, addr, "www.example.test.")
		return len(got) == 1 && got[0] == "127.0.0.1"
	}, "127.0.0.2 leaves the answers")

	base := "http://" + n.APIAddr().String()
	eventually.True(t, 5*time.Second, func() bool {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), `tern_member_rtt_seconds{member="127.0.0.1",node="m1",pool="web"}`)
	}, "the replicated RTT in /metrics")
	get := func(path string) string {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	var metrics string
	eventually.True(t, 10*time.Second, func() bool {
		metrics = get("/metrics")
		return strings.Contains(metrics, `tern_raft_state{state="Leader"} 1`)
	}, "the raft metrics to show a leader")
	for _, name := range []string{
		`tern_dns_queries_total{qtype="A",rcode="NOERROR",zone="example.test."}`,
		`tern_dns_queries_total{qtype="A",rcode="NXDOMAIN",zone="example.test."}`,
		`tern_dns_pool_answers_total{member="127.0.0.1",pool="web"}`,
		`tern_dns_response_seconds_bucket`,
		`tern_probe_duration_seconds_bucket`,
		`tern_probe_results_total`,
		`tern_probe_transitions_total`,

		`tern_raft_term`,
		`tern_raft_commit_index`,
		`tern_raft_applied_index`,
		`tern_raft_in_quorum 1`,
	} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	var st api.QueryStats
	eventually.True(t, 5*time.Second, func() bool {
		json.Unmarshal([]byte(get("/v1/stats")), &st)
		return st.Total >= 40
	}, "stats to count the queries")
	if st.Rcodes["NXDOMAIN"] < 20 || st.Rcodes["NOERROR"] < 20 {
		t.Errorf("stats by rcode: %v", st.Rcodes)
	}
	var evs []api.Event
	eventually.True(t, 5*time.Second, func() bool {
		json.Unmarshal([]byte(get("/v1/events")), &evs)
		for _, e := range evs {
			if e.Member == "127.0.0.2" && e.Node == "" && e.From == "up" && e.To == "down" {
				return true
			}
		}
		return false
	}, "the down event")
	// The status page's per-member figures: answers served, as counted
	// for tern_dns_pool_answers_total.
	var pools []api.Pool
	json.Unmarshal([]byte(get("/v1/pools")), &pools)
	if m := member(pools, "web", "127.0.0.1"); m.Answers < 20 || m.LastCheck == nil {
		t.Errorf("web/127.0.0.1 on /v1/pools: %+v, want >= 20 answers served and its last check", m)
	}
	if !strings.Contains(get("/"), "<html") {
		t.Error("the status page is not served on /")
	}

	// In a cluster the SOA serial is the one the FSM derived for the
	// version: the file's (1) for the first version of a zone.
	eventually.True(t, 10*time.Second, func() bool {
		st, _ := n.Status(t.Context())
		return st.ConfigVersion == 1
	}, "version 1 to be served")
	cv, _ := n.store.State().Config()
	m := new(dns.Msg)
	m.SetQuestion("example.test.", dns.TypeSOA)
	r, err := dns.Exchange(m, addr)
	if err != nil || len(r.Answer) != 1 {
		t.Fatalf("SOA: %v %v", r, err)
	}
	if got := r.Answer[0].(*dns.SOA).Serial; got != 1 || cv.Zones["example.test."].Served != got {
		t.Errorf("SOA serial %d, want 1, the replicated version's %+v", got, cv.Zones)
	}
}

// TestPoolsShowRTT: /v1/pools carries each member's smoothed RTT by node.
func TestPoolsShowRTT(t *testing.T) {
	port := freePort(t)
	dir := t.TempDir()
	yaml := fmt.Sprintf(`node: {name: s1, dns: ["127.0.0.1:0"], api: "127.0.0.1:0"}
checks:
  h: {type: http, port: %d, interval: 100ms, timeout: 90ms, fall: 1, rise: 1}
pools:
  web:
    check: h
    members: [{address: 127.0.0.1}]
zones:
  - file: z.zone
`, port)
	b := &backend{addr: fmt.Sprintf("127.0.0.1:%d", port)}
	b.start(t)
	defer b.stop()
	n := runNode(t, dir, yaml, testZone)
	<-n.Serving()
	eventually.True(t, 5*time.Second, func() bool {
		resp, err := http.Get("http://" + n.APIAddr().String() + "/v1/pools")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var pools []api.Pool
		if json.NewDecoder(resp.Body).Decode(&pools) != nil || len(pools) != 1 || len(pools[0].Members) != 1 {
			return false
		}
		r := pools[0].Members[0].RTTs
		return len(r) == 1 && r[0].Node == "s1" && r[0].Seconds > 0 && r[0].Seconds < 0.09
	}, "the member's RTT in /v1/pools")
}

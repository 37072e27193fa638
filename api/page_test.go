package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// pageNode is a fake node behind the status page: a three-node cluster
// seen from follower n1, pools with members in every state, a few state
// changes and query counters.
type pageNode struct {
	standalone bool // no Raft: Status says no Raft state
	pools      []Pool
	events     []Event
	stats      QueryStats
	since      []time.Time // the since argument of each Events call
}

func (p *pageNode) Status(context.Context) (Status, error) {
	if p.standalone {
		return Status{Node: "solo", InQuorum: true, Serving: true, MembersUp: 4, MembersTotal: 6}, nil
	}
	return Status{Node: "n1", RaftState: "Follower", Term: 7, Leader: "n2", InQuorum: true,
		ConfigVersion: 4, Serving: true, MembersUp: 4, MembersTotal: 6,
		Warnings: []string{"exec checks are not allowed on this node (node.allow_exec_checks): 1 members not probed here (pools mail)"}}, nil
}
func (p *pageNode) Ready(context.Context) error { return nil }
func (p *pageNode) Members(context.Context) ([]ClusterMember, error) {
	return []ClusterMember{
		{ID: "n1", RaftAddr: "10.0.0.1:7000", APIAddr: "10.0.0.1:8053", Voter: true, Reachable: true},
		{ID: "n2", RaftAddr: "10.0.0.2:7000", APIAddr: "10.0.0.2:8053", Voter: true, Leader: true, Reachable: true},
		{ID: "n3", RaftAddr: "10.0.0.3:7000", APIAddr: "10.0.0.3:8053", Voter: true, Unreachable: "no answer within 1s"},
	}, nil
}
func (p *pageNode) Join(context.Context, JoinRequest) error { return errors.New("not in this test") }
func (p *pageNode) Remove(context.Context, string) error    { return errors.New("not in this test") }
func (p *pageNode) Pools(context.Context) ([]Pool, error)   { return p.pools, nil }
func (p *pageNode) SetAdmin(context.Context, string, string, string) error {
	return errors.New("not in this test")
}
func (p *pageNode) Events(_ context.Context, since time.Time) ([]Event, error) {
	p.since = append(p.since, since)
	var out []Event
	for _, e := range p.events {
		if !e.At.Before(since) {
			out = append(out, e)
		}
	}
	return out, nil
}
func (p *pageNode) Stats(context.Context) (QueryStats, error) { return p.stats, nil }

func newPageNode(now time.Time) *pageNode {
	v := func(node string, up bool, age time.Duration, stale bool) Verdict {
		return Verdict{Node: node, Up: up, At: now.Add(-age), Stale: stale}
	}
	return &pageNode{
		pools: []Pool{
			{Name: "web", Policy: "weighted", Check: "h", CheckType: "http", Members: []PoolMember{
				{Address: "192.0.2.10", Up: true, Admin: "auto", Why: "up by agreement of 3 probers", Load: 0.25,
					Site: "fra", Weight: 3, Priority: 1, Answers: 9876,
					LastCheck: &CheckResult{At: now.Add(-time.Second), OK: true, RTTMilli: 1.5},
					Verdicts:  []Verdict{v("n1", true, time.Second, false), v("n2", true, 2*time.Second, false), v("n3", true, time.Second, false)}},
				{Address: "192.0.2.11", Up: false, Admin: "auto", Why: "down by agreement of 3 probers",
					Verdicts: []Verdict{v("n1", false, time.Second, false), v("n2", false, time.Second, false), v("n3", true, time.Second, false)}},
				{Address: "192.0.2.12", Up: false, Admin: "drain", Why: "drained by an operator",
					Verdicts: []Verdict{v("n1", true, time.Second, false), v("n2", true, time.Second, false)}},
			}},
			{Name: "api", Members: []PoolMember{
				{Address: "2001:db8::1", Up: true, Admin: "up", Forced: true, Why: "forced up by an operator",
					Verdicts: []Verdict{v("n1", false, time.Second, false), v("n2", false, time.Hour, true)}},
				{Address: "198.51.100.7", Up: false, Admin: "auto", Why: "down by agreement of 2 probers",
					Verdicts: []Verdict{v("n1", false, time.Second, false), v("n3", true, time.Hour, true)}},
			}},
			{Name: "mail", Members: []PoolMember{
				{Address: "203.0.113.5", Up: true, Admin: "auto", Why: "not probed: up (no check, or initial state)"},
			}},
			// Shedding: an operator's shed on a member of a site over its
			// capacity (site lon, 120 of 100 past spill_at 0.9), the site's
			// other member, and a member under its own capacity.
			{Name: "steer", Policy: "geo > spill", SpillAt: 0.9, Members: []PoolMember{
				{Address: "192.0.2.20", Up: true, Admin: "shed:30", Site: "lon", Load: 70, Capacity: 100, CapacityOf: "site", CapacityLoad: 120, Spill: 0.25,
					Why: "up (no check); 30% of its clients shed by an operator"},
				{Address: "192.0.2.21", Up: true, Admin: "auto", Site: "lon", Load: 50, Capacity: 100, CapacityOf: "site", CapacityLoad: 120, Spill: 0.25},
				{Address: "192.0.2.22", Up: true, Admin: "auto", Site: "par", Load: 20, Capacity: 50, CapacityOf: "member", CapacityLoad: 20},
			}},
		},
		events: []Event{
			{At: now.Add(-90 * time.Second), Pool: "api", Member: "2001:db8::1", Node: "n1", From: "up", To: "down", Why: "connect: connection refused"},
			{At: now.Add(-30 * time.Second), Pool: "web", Member: "192.0.2.11", From: "up", To: "down", Why: "down by agreement of 3 probers"},
		},
		stats: QueryStats{Total: 123456, Rate: 42.5, WindowSeconds: 10,
			Rcodes: map[string]uint64{"NOERROR": 120000, "NXDOMAIN": 3000, "REFUSED": 456},
			History: &StatsHistory{QPSStep: 10, QPSEnd: now, QPS: []float64{10, 20, 40, 42.5, 30},
				LatencyStep: 60, LatencyEnd: now, Latency: []MemberLatency{{Pool: "web", Member: "192.0.2.10", Millis: []float64{1, -1, 2, 1.5}}}}},
	}
}

func httpGet(t *testing.T, url, token string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// The page and its assets are public (they carry no data) even when reads
// need the token; the data endpoints are not.
func TestPageServesAssets(t *testing.T) {
	f := newPageNode(time.Now())
	s := serve(t, Options{Token: "s3cret", ReadToken: true, Status: f, Pools: f, Events: f, Stats: f})
	base := "http://" + s.Addr().String()
	tests := []struct {
		path, token string
		code        int
		ctype, body string
	}{
		{"/", "", 200, "text/html", `<script src="/static/status.js"`},
		{"/static/status.js", "", 200, "javascript", "/v1/pools"},
		{"/static/status.css", "", 200, "text/css", "--up: #1a7f37"},
		{"/static/", "", 404, "", ""},
		{"/static/nothing.js", "", 404, "", ""},
		{"/v1/events", "", 401, "application/json", "bearer token"},
		{"/v1/stats", "", 401, "application/json", "bearer token"},
		{"/v1/stats", "s3cret", 200, "application/json", `"rate": 42.5`},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.token, func(t *testing.T) {
			resp, body := httpGet(t, base+tc.path, tc.token)
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.code, body)
			}
			if !strings.Contains(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(body, tc.body) {
				t.Fatalf("Content-Type %q, body %.200q: want %q containing %q", resp.Header.Get("Content-Type"), body, tc.ctype, tc.body)
			}
			if tc.code == 200 && !strings.HasPrefix(tc.path, "/v1/") {
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
					t.Errorf("Content-Security-Policy %q", csp)
				}
			}
		})
	}

	// Options.Page replaces the built-in page; its assets stay served.
	s2 := serve(t, Options{Page: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "custom page") })})
	if _, body := httpGet(t, "http://"+s2.Addr().String()+"/", ""); body != "custom page" {
		t.Errorf("with Options.Page: / = %q", body)
	}
}

func TestPageEventsAndStatsEndpoints(t *testing.T) {
	now := time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
	f := newPageNode(now)
	for i := range 1005 { // more than one answer holds: the newest are kept
		f.events = append(f.events, Event{At: now.Add(time.Duration(i) * time.Millisecond), Pool: "bulk", Member: fmt.Sprint(i), From: "up", To: "down"})
	}
	s := serve(t, Options{Events: f, Stats: f})
	c := NewClient(s.Addr().String(), "", nil)
	ctx := context.Background()

	all, err := c.Events(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != maxEvents || all[len(all)-1].Member != "1004" || all[0].Member != "5" {
		t.Fatalf("all events: %d, first %q last %q; want the newest %d, 5..1004", len(all), all[0].Member, all[len(all)-1].Member, maxEvents)
	}
	since := now.Add(1000 * time.Millisecond)
	got, err := c.Events(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || !f.since[len(f.since)-1].Equal(since) {
		t.Fatalf("since %v: %d events, backend asked for %v", since, len(got), f.since[len(f.since)-1])
	}
	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != 123456 || st.Rate != 42.5 || st.WindowSeconds != 10 || st.Rcodes["NXDOMAIN"] != 3000 {
		t.Fatalf("stats round trip: %+v", st)
	}

	bare := NewClient(serve(t, Options{}).Addr().String(), "", nil)
	tests := []struct {
		name string
		call func() error
		code int
		msg  string
	}{
		{"bad since", func() error {
			resp, body := httpGet(t, "http://"+s.Addr().String()+"/v1/events?since=yesterday", "")
			return &Error{Status: resp.StatusCode, Message: body}
		}, 400, "RFC 3339"},
		{"no events backend", func() error { _, err := bare.Events(ctx, time.Time{}); return err }, 501, "not available"},
		{"no stats backend", func() error { _, err := bare.Stats(ctx); return err }, 501, "not available"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var apiErr *Error
			if err := tc.call(); !errors.As(err, &apiErr) || apiErr.Status != tc.code || !strings.Contains(apiErr.Message, tc.msg) {
				t.Fatalf("got %v, want HTTP %d with %q", err, tc.code, tc.msg)
			}
		})
	}
}

func TestPageEventLog(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
	ev := func(i int) Event { return Event{At: t0.Add(time.Duration(i) * time.Second), Member: fmt.Sprint(i)} }
	members := func(es []Event) string {
		var s []string
		for _, e := range es {
			s = append(s, e.Member)
		}
		return strings.Join(s, ",")
	}
	tests := []struct {
		name  string
		size  int
		added int
		since time.Time
		want  string
	}{
		{"empty", 3, 0, time.Time{}, ""},
		{"not full", 3, 2, time.Time{}, "0,1"},
		{"exactly full", 3, 3, time.Time{}, "0,1,2"},
		{"wrapped keeps the newest in order", 3, 7, time.Time{}, "4,5,6"},
		{"since is inclusive", 3, 7, t0.Add(5 * time.Second), "5,6"},
		{"since after all", 3, 7, t0.Add(time.Hour), ""},
		{"size below one keeps one", 0, 4, time.Time{}, "3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewEventLog(tc.size)
			for i := range tc.added {
				l.Add(ev(i))
			}
			got, err := l.Events(context.Background(), tc.since)
			if err != nil || members(got) != tc.want {
				t.Fatalf("Events = %q, %v; want %q", members(got), err, tc.want)
			}
		})
	}
}

func TestPageRateMeter(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type sample struct {
		at    float64
		total uint64
	}
	tests := []struct {
		name     string
		samples  []sample
		rate     float64
		overSecs float64
	}{
		{"no samples", nil, 0, 0},
		{"one sample", []sample{{0, 100}}, 0, 0},
		{"partial window", []sample{{0, 100}, {2, 300}}, 100, 2},
		// 10/s for 20 s, then 50/s for the last 10 s: the window sees only the latter.
		{"sliding window", func() []sample {
			var s []sample
			total := uint64(0)
			for i := 0; i <= 30; i++ {
				s = append(s, sample{float64(i), total})
				if i < 20 {
					total += 10
				} else {
					total += 50
				}
			}
			return s
		}(), 50, 10},
		// Samples 4 s apart: the window's start falls between two of them.
		{"interpolated start", []sample{{0, 0}, {4, 400}, {8, 800}, {12, 1200}}, 100, 10},
		{"counter reset starts afresh", []sample{{0, 5000}, {1, 6000}, {2, 10}, {3, 30}}, 20, 1},
		{"out of order ignored", []sample{{0, 0}, {5, 500}, {3, 9999}, {10, 1000}}, 100, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewRateMeter(10 * time.Second)
			for _, s := range tc.samples {
				m.Sample(at(s.at), s.total)
			}
			rate, over := m.Rate()
			if diff := rate - tc.rate; diff > 1e-9 || diff < -1e-9 || over.Seconds() != tc.overSecs {
				t.Fatalf("Rate = %v over %v, want %v over %vs", rate, over, tc.rate, tc.overSecs)
			}
			if len(m.samples) > 12 {
				t.Errorf("%d samples kept for a 10 s window sampled each second", len(m.samples))
			}
		})
	}
}

// Every endpoint the page's script reads answers it with either read
// setting: open reads without a token; private reads 401 (the page then
// shows its token form) without it, and 200 with it as a bearer token,
// the way the script sends what it keeps in sessionStorage.
func TestPageEndpointsFollowReadSetting(t *testing.T) {
	js, err := staticFiles.ReadFile("static/status.js")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, m := range regexp.MustCompile(`'(/v1/[a-z/]+)'`).FindAllStringSubmatch(string(js), -1) {
		paths = append(paths, m[1])
	}
	if len(paths) < 5 {
		t.Fatalf("found %v in status.js; the test's pattern no longer matches how the page names its endpoints", paths)
	}
	if !strings.Contains(string(js), "'Bearer ' + t") || !strings.Contains(string(js), "sessionStorage.setItem(TOKEN_KEY") {
		t.Fatal("status.js no longer sends the kept token as a bearer token")
	}
	f := newPageNode(time.Now())
	for _, private := range []bool{false, true} {
		t.Run(fmt.Sprintf("api_read_token %v", private), func(t *testing.T) {
			s := serve(t, Options{Token: "s3cret", ReadToken: private, Status: f, Cluster: f, Pools: f, Events: f, Stats: f})
			base := "http://" + s.Addr().String()
			for _, p := range paths {
				want := 200
				if private {
					want = 401
				}
				if resp, body := httpGet(t, base+p, ""); resp.StatusCode != want || want == 401 && !strings.Contains(body, `"error"`) {
					t.Errorf("GET %s without the token: %d %s, want %d", p, resp.StatusCode, body, want)
				}
				if resp, body := httpGet(t, base+p, "s3cret"); resp.StatusCode != 200 {
					t.Errorf("GET %s with the token: %d %s", p, resp.StatusCode, body)
				}
			}
		})
	}
}

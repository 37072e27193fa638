package dnsserver

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/internal/eventually"
)

// queryLines are the "query" records among JSON log lines.
func queryLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if m["msg"] == "query" {
			recs = append(recs, m)
		}
	}
	return recs
}

// TestQueryLog: with node.query_log's sample at 1 every query answered is
// one line naming client, name, type, rcode and answers; Reconfigure
// turns it off and on without a restart.
func TestQueryLog(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	s, addr := startServer(t, testSnapshot(t), Options{Logger: log, QueryLogSample: 1})

	exchange(t, "udp", addr, newQuery("static.example.test.", dns.TypeA))
	exchange(t, "tcp", addr, newQuery("nothere.example.test.", dns.TypeAAAA))
	var recs []map[string]any
	eventually.True(t, 10*time.Second, func() bool { recs = queryLines(t, buf.String()); return len(recs) >= 2 }, "two query lines")
	for i, want := range []map[string]any{
		{"client": "127.0.0.1", "proto": "udp", "qname": "static.example.test.", "qtype": "A", "qclass": "IN", "rcode": "NOERROR", "answers": 1.0, "tc": false},
		{"client": "127.0.0.1", "proto": "tcp", "qname": "nothere.example.test.", "qtype": "AAAA", "rcode": "NXDOMAIN", "answers": 0.0},
	} {
		for k, v := range want {
			if recs[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v (%v)", i, k, recs[i][k], v, recs[i])
			}
		}
		// The handler's time (JSON: nanoseconds), measured: more than
		// nothing, less than the test's own timeout.
		if d, ok := recs[i]["duration"].(float64); !ok || d <= 0 || d >= float64(10*time.Second) {
			t.Errorf("line %d: duration %v, want the handler's time (%v)", i, recs[i]["duration"], recs[i])
		}
		// When the query came, on the wall clock.
		if at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(recs[i]["at"])); err != nil || time.Since(at) < 0 || time.Since(at) > time.Minute {
			t.Errorf("line %d: at %v (%v), want a moment ago", i, recs[i]["at"], err)
		}
	}

	// Off: a query answered after Reconfigure queues nothing. The entry
	// would be queued before the answer is sent, so the queue (and the
	// counters) show it at once.
	if err := s.Reconfigure(Options{}); err != nil {
		t.Fatal(err)
	}
	before := len(queryLines(t, buf.String()))
	exchange(t, "udp", addr, newQuery("static.example.test.", dns.TypeA))
	if err := s.Reconfigure(Options{QueryLogSample: 1}); err != nil {
		t.Fatal(err)
	}
	exchange(t, "udp", addr, newQuery("www.example.test.", dns.TypeA))
	eventually.True(t, 10*time.Second, func() bool { return len(queryLines(t, buf.String())) > before }, "the line after turning it on")
	recs = queryLines(t, buf.String())
	if got := recs[len(recs)-1]["qname"]; len(recs) != before+1 || got != "www.example.test." {
		t.Errorf("after off and on: %d new lines, last %v; want 1, www.example.test.", len(recs)-before, got)
	}

	if err := s.Reconfigure(Options{QueryLogSample: 1.5}); err == nil {
		t.Error("sample 1.5 accepted")
	}
}

// TestQueryLogSampling: a sample of 0.25 logs about a quarter of the
// queries, each worker drawing on its own; 0 logs none.
func TestQueryLogSampling(t *testing.T) {
	snap := testSnapshot(t)
	msg := packMsg(t, newQuery("static.example.test.", dns.TypeA))
	src := netip.MustParseAddr("192.0.2.99")
	const n = 8000
	for _, tc := range []struct {
		sample   float64
		min, max int
	}{
		{0, 0, 0},
		{0.25, n/4 - 300, n/4 + 300}, // about 7 standard deviations
		{1, n, n},
	} {
		ch := make(chan queryEntry, n)
		w := newWorker(1232, slog.New(slog.NewTextHandler(io.Discard, nil)))
		w.qlogCh, w.qlog = ch, newQueryLog(tc.sample)
		cur := &served{snap: snap}
		for range n {
			if w.handle(cur, msg, src, false) == nil {
				t.Fatal("no response")
			}
		}
		if got := len(ch); got < tc.min || got > tc.max {
			t.Errorf("sample %g: %d of %d queries logged, want %d to %d", tc.sample, got, n, tc.min, tc.max)
		}
	}
}

// TestQueryLogNoAllocs: the query log costs the query path no allocation,
// off or on (the entry is copied by value into the queue); a full queue
// drops the entry and counts it.
func TestQueryLogNoAllocs(t *testing.T) {
	if raceOn {
		t.Skip("the race detector allocates")
	}
	snap := testSnapshot(t)
	src := netip.MustParseAddr("192.0.2.99")
	for _, name := range []string{"static.example.test.", "www.example.test.", "nothere.example.test."} {
		msg := packMsg(t, newQuery(name, dns.TypeA))
		for _, sample := range []float64{0, 0.5, 1} {
			w := newWorker(1232, slog.New(slog.NewTextHandler(io.Discard, nil)))
			w.stats = newStats()
			w.qlogCh, w.qlog = make(chan queryEntry, 1000), newQueryLog(sample)
			cur := &served{snap: snap}
			w.handle(cur, msg, src, false)
			if n := testing.AllocsPerRun(100, func() { w.handle(cur, msg, src, false) }); n != 0 {
				t.Errorf("%s, sample %g: %v allocations per query", name, sample, n)
			}
		}
	}

	w := newWorker(1232, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.stats = newStats()
	w.qlogCh, w.qlog = make(chan queryEntry, 1), newQueryLog(1)
	msg := packMsg(t, newQuery("static.example.test.", dns.TypeA))
	for range 3 {
		w.handle(&served{snap: snap}, msg, src, false)
	}
	if d := w.stats.queryLogDropped.Load(); d != 2 {
		t.Errorf("a queue of 1, 3 queries: %d dropped, want 2", d)
	}
}

// TestQueryLogECS: a query with an EDNS Client Subnet logs the subnet
// and the scope its answer echoed; one without (or with a malformed one,
// answered FORMERR) logs neither.
func TestQueryLogECS(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	_, addr := startServer(t, testSnapshot(t), Options{Logger: log, QueryLogSample: 1})
	for i, tc := range []struct {
		name  string
		qname string
		opt   dns.EDNS0 // nil: no ECS
		ecs   string    // "": no ecs key
		scope float64
	}{
		{"pool answer, IPv4", "sticky.example.test.", ecsOption(1, 24, "198.51.100.0"), "198.51.100.0/24", 24},
		{"pool answer, scope below the source", "sticky.example.test.", ecsOption(1, 25, "203.0.113.128"), "203.0.113.128/25", 24},
		{"pool answer, IPv6", "sticky.example.test.", ecsOption(2, 64, "2001:db8:1234:5600::"), "2001:db8:1234:5600::/64", 56},
		{"source prefix 0", "sticky.example.test.", ecsOption(1, 0, "0.0.0.0"), "0.0.0.0/0", 0},
		{"static answer: scope 0", "static.example.test.", ecsOption(1, 24, "198.51.100.0"), "198.51.100.0/24", 0},
		{"no ECS", "sticky.example.test.", nil, "", 0},
		{"malformed ECS", "sticky.example.test.", &dns.EDNS0_LOCAL{Code: dns.EDNS0SUBNET, Data: []byte{0, 1, 24, 24, 198, 51, 100}}, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := withEDNS(newQuery(tc.qname, dns.TypeA), 1232)
			if tc.opt != nil {
				m = withEDNS(newQuery(tc.qname, dns.TypeA), 1232, tc.opt)
			}
			r := exchange(t, "udp", addr, m)
			var recs []map[string]any
			eventually.True(t, 10*time.Second, func() bool { recs = queryLines(t, buf.String()); return len(recs) > i }, "the query's line")
			rec := recs[i]
			if tc.ecs == "" {
				if _, ok := rec["ecs"]; ok {
					t.Errorf("ecs logged for a query without a valid one: %v", rec)
				}
				if _, ok := rec["scope"]; ok {
					t.Errorf("scope logged for a query without a valid ECS: %v", rec)
				}
				return
			}
			if rec["ecs"] != tc.ecs || rec["scope"] != tc.scope {
				t.Errorf("ecs %v scope %v, want %s scope %v (%v)", rec["ecs"], rec["scope"], tc.ecs, tc.scope, rec)
			}
			if e := subnetOf(r); e == nil || float64(e.SourceScope) != tc.scope {
				t.Errorf("the answer's ECS %v, want scope %v as logged", e, tc.scope)
			}
		})
	}
}

package dnsserver

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestCollectors registers the server's collectors in a fresh registry,
// sends queries and a transfer, and reads the counters back.
func TestCollectors(t *testing.T) {
	// Every query timed, so the histogram counts all eight (the server
	// is stopped, by startServer's cleanup, before this one runs).
	every := timeEvery
	timeEvery = 1
	t.Cleanup(func() { timeEvery = every })
	s, addr := startServer(t, testSnapshot(t), xfrOptions())
	reg := prometheus.NewRegistry()
	for _, c := range s.Collectors() {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		exchange(t, "udp", addr, newQuery("www.example.test.", dns.TypeA))
	}
	exchange(t, "udp", addr, newQuery("nothere.example.test.", dns.TypeA))
	exchange(t, "tcp", addr, newQuery("static.example.test.", dns.TypeTXT))
	exchange(t, "udp", addr, newQuery("static.example.test.", 65000)) // an unlisted type
	exchange(t, "udp", addr, newQuery("example.org.", dns.TypeA))
	if _, err := transfer(t, addr, "example.test.", dns.TypeAXFR, 0, "xfr.", testSecret); err != nil {
		t.Fatal(err)
	}
	// The server counts a transfer after its last message is written, so
	// the client can have it all before the count.
	for deadline := time.Now().Add(5 * time.Second); s.stats.transfers[xfrOK].Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	value := func(name string, labels map[string]string) float64 {
		mf := byName[name]
		if mf == nil {
			t.Fatalf("no metric %s", name)
		}
		var sum float64
	next:
		for _, m := range mf.Metric {
			for _, lp := range m.Label {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
		return sum
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"tern_dns_queries_total", map[string]string{"zone": "example.test.", "qtype": "A", "rcode": "NOERROR"}, 3},
		{"tern_dns_queries_total", map[string]string{"zone": "example.test.", "qtype": "A", "rcode": "NXDOMAIN"}, 1},
		{"tern_dns_queries_total", map[string]string{"zone": "example.test.", "qtype": "TXT", "rcode": "NOERROR"}, 1},
		{"tern_dns_queries_total", map[string]string{"zone": "example.test.", "qtype": "other"}, 1},
		{"tern_dns_queries_total", map[string]string{"zone": "none", "qtype": "A", "rcode": "REFUSED"}, 1},
		{"tern_dns_queries_total", map[string]string{"qtype": "AXFR"}, 1},
		{"tern_dns_pool_answers_total", map[string]string{"pool": "web"}, 9}, // 3 IPv4 members × 3 answers
		{"tern_dns_pool_answers_total", map[string]string{"pool": "web", "member": "192.0.2.1"}, 3},
		{"tern_dns_response_seconds", nil, 8},
		{"tern_dns_transfers_total", map[string]string{"result": "ok"}, 1},
		{"tern_dns_rrl_responses_total", nil, 0},
		{"tern_dns_notifies_total", nil, 0},
		{"tern_dns_zone_serial", map[string]string{"zone": "example.test."}, 2026112201},
	} {
		if got := value(tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	// QueryCounts (the status page's figure) agrees with the exported counter.
	total, byRcode := s.QueryCounts()
	if want := value("tern_dns_queries_total", nil); float64(total) != want || total != 8 {
		t.Errorf("QueryCounts total %d, tern_dns_queries_total %v, want 8 both", total, want)
	}
	if byRcode["NOERROR"] != 6 || byRcode["NXDOMAIN"] != 1 || byRcode["REFUSED"] != 1 {
		t.Errorf("QueryCounts by rcode %v, want NOERROR 6, NXDOMAIN 1, REFUSED 1", byRcode)
	}
}

// TestResponseTimeSampled: the histogram times a worker's first query
// and then one in timeEvery, a query the query log takes always; every
// query is counted by zone, type and rcode whether timed or not, also
// when the served state changes between queries (the worker's cached
// counters follow it).
func TestResponseTimeSampled(t *testing.T) {
	snap := testSnapshot(t)
	msg := packMsg(t, newQuery("www.example.test.", dns.TypeA))
	w := newWorker(1232, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.stats = newStats()
	cur := &served{snap: snap}
	w.stats.index(snap, cur)
	src := netip.MustParseAddr("192.0.2.99")
	timed := func() uint64 {
		var n uint64
		for i := range w.stats.buckets {
			n += w.stats.buckets[i].Load()
		}
		return n
	}
	for range 40 {
		if w.handle(cur, msg, src, false) == nil {
			t.Fatal("no response")
		}
	}
	if got, want := timed(), uint64(1+(40-1)/timeEvery); got != want {
		t.Errorf("%d queries timed of 40, want %d (one in %d)", got, want, timeEvery)
	}
	if w.stats.sumNs.Load() == 0 {
		t.Error("timed queries took no time")
	}
	// A new served state: the same zone's counters, reached through it.
	next := &served{snap: snap}
	w.stats.index(snap, next)
	for range 10 {
		w.handle(next, msg, src, false)
	}
	// Every query the query log samples is timed as well.
	w.qlogCh, w.qlog = make(chan queryEntry, 100), newQueryLog(1)
	before := timed()
	for range 10 {
		w.handle(next, msg, src, false)
	}
	if got := timed() - before; got != 10 {
		t.Errorf("%d of 10 logged queries timed, want 10", got)
	}
	zc := w.stats.zones["example.test."]
	if got := zc.n[dns.RcodeSuccess][typeIndex(dns.TypeA)].Load(); got != 60 {
		t.Errorf("example.test. counted %d NOERROR A queries, want 60: every query, timed or not", got)
	}
	// And the pool's answers, through the cached counters too.
	var answers uint64
	for _, c := range w.stats.members {
		answers += c.Load()
	}
	if answers != 3*60 { // three members in each answer (TestCollectors)
		t.Errorf("pool answers counted %d, want 180: three members in each of 60 answers", answers)
	}
}

// TestHostMemberCounted: an answer that is a CNAME to a pool's host-name
// member counts that member in tern_dns_pool_answers_total, as an
// address answer counts its members.
func TestHostMemberCounted(t *testing.T) {
	snap := testSnapshot(t)
	w := newWorker(1232, slog.New(slog.NewTextHandler(io.Discard, nil)))
	w.stats = newStats()
	cur := &served{snap: snap}
	w.stats.index(snap, cur)
	msg := packMsg(t, newQuery("hosts.example.test.", dns.TypeA))
	for range 3 {
		if w.handle(cur, msg, netip.MustParseAddr("192.0.2.99"), false) == nil {
			t.Fatal("no response")
		}
	}
	var n uint64
	for k, c := range w.stats.members {
		if k[0] == "hosts" {
			n += c.Load()
		}
	}
	if n != 3 {
		t.Errorf("pool hosts: %d answers counted for 3 CNAME answers to its members, want 3", n)
	}
}

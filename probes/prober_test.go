package probes

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ternlb/tern/internal/eventually"
)

// members writes n members 192.0.2.x/198.51.100.x (never probed: each
// has a probe: target) probed at probe.
func members(n int, probe string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "      - {address: 10.%d.%d.%d, probe: %q}\n", i>>16&255, i>>8&255, i&255, probe)
	}
	return b.String()
}

func TestJitterSpread(t *testing.T) {
	const n, buckets = 1000, 10
	c := testConfig(t, "  c: {type: tcp, port: 80, interval: 1s}\n", "  p:\n    check: c\n    members:\n"+members(n, "127.0.0.1"))
	p, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := New(c, Options{})
	var count [buckets]int
	for i, tg := range p.probed {
		if tg.offset < 0 || tg.offset >= time.Second {
			t.Fatalf("%v: offset %v outside the interval", tg.key, tg.offset)
		}
		if tg.offset != q.probed[i].offset {
			t.Fatalf("%v: offset %v, then %v: not deterministic", tg.key, tg.offset, q.probed[i].offset)
		}
		count[tg.offset*buckets/time.Second]++
	}
	// A uniform spread puts 100 in each tenth; 70..130 is over 3 sigma.
	for i, k := range count {
		if k < 70 || k > 130 {
			t.Errorf("tenth %d of the interval has %d of %d members: %v", i, k, n, count)
		}
	}
	if jitter(Key{"p", "a"}, "c1", time.Second) == jitter(Key{"p", "a"}, "c2", time.Second) &&
		jitter(Key{"p", "b"}, "c1", time.Second) == jitter(Key{"p", "b"}, "c2", time.Second) {
		t.Error("offset ignores the check")
	}
}

// TestScheduleFollowsOffsets runs the scheduler and checks that after the
// first round every member is probed at its own offset of each interval.
func TestScheduleFollowsOffsets(t *testing.T) {
	const n = 50
	iv := 100 * time.Millisecond
	addr := tcpServer(t)
	c := testConfig(t, "  c: {type: tcp, port: 1, interval: 100ms, timeout: 50ms}\n", "  p:\n    check: c\n    members:\n"+members(n, addr))
	p, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	dues := map[*target][]time.Time{}
	var lateness []time.Duration
	p.onStart = func(tg *target, due, start time.Time) {
		mu.Lock()
		defer mu.Unlock()
		dues[tg] = append(dues[tg], due)
		lateness = append(lateness, start.Sub(due))
	}
	start(t, p)
	eventually.True(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, tg := range p.probed {
			if len(dues[tg]) < 3 {
				return false
			}
		}
		return true
	}, "three probes of every member")
	mu.Lock()
	defer mu.Unlock()
	first := dues[p.probed[0]][0]
	for _, tg := range p.probed {
		d := dues[tg]
		if !d[0].Equal(first) {
			t.Errorf("%v: first probe due %v, others %v: the first round is one round", tg.key, d[0], first)
		}
		// Every later probe is due at the member's offset of an interval;
		// a slot is skipped (never doubled) when a loaded machine has the
		// previous probe still running.
		want := tg.offset
		if want < iv/2 {
			want += iv
		}
		for k := 1; k < len(d); k++ {
			since := d[k].Sub(d[0]) - want
			if since < 0 || since%iv != 0 || !d[k].After(d[k-1]) {
				t.Errorf("%v: probe %d due %v after the first, want offset %v + a whole number of intervals", tg.key, k, d[k].Sub(d[0]), tg.offset)
			}
		}
	}
	slices.Sort(lateness)
	// Lateness is measured for real in TestScale; here it is only shown.
	t.Logf("lateness of %d probes: p50 %v max %v", len(lateness), lateness[len(lateness)/2], lateness[len(lateness)-1])
}

func TestFirstRound(t *testing.T) {
	live, dead := tcpServer(t), closedPort(t)
	c := testConfig(t, "  c: {type: tcp, port: 1, interval: 5s, timeout: 1s, rise: 3, fall: 3}\n",
		"  warm:\n    check: c\n    initial: down\n    members: [{address: 192.0.2.1, probe: \""+live+"\"}]\n"+
			"  cold:\n    check: c\n    members: [{address: 192.0.2.2, probe: \""+dead+"\"}]\n"+
			"  nocheck:\n    initial: up\n    members: [{address: 192.0.2.3}]\n")
	rec := &recorder{}
	p, err := New(c, Options{Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	type want struct{ up, probed bool }
	check := func(when string, w map[string]want) {
		t.Helper()
		for pool, w := range w {
			vs, err := p.Pool(pool)
			if err != nil {
				t.Fatal(err)
			}
			if v := vs[0]; v.Up != w.up || v.Probed != w.probed {
				t.Errorf("%s: pool %s: up %v probed %v, want up %v probed %v", when, pool, v.Up, v.Probed, w.up, w.probed)
			}
		}
	}
	// Before the first round a pool answers its initial state.
	check("before", map[string]want{"warm": {false, false}, "cold": {true, false}, "nocheck": {true, false}})
	start(t, p)
	if err := p.FirstRound(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// One result decides, whatever rise and fall say.
	check("after", map[string]want{"warm": {true, true}, "cold": {false, true}, "nocheck": {true, false}})
	rec.waitFor(t, Key{"cold", "192.0.2.2"}, time.Second, "observer hears of cold", func(v Verdict) bool { return !v.Up })
	rec.waitFor(t, Key{"warm", "192.0.2.1"}, time.Second, "observer hears of warm", func(v Verdict) bool { return v.Up })
}

// TestFirstRoundBounded: a member whose first probe hangs does not hold
// the node back beyond the wait, and keeps its initial state.
func TestFirstRoundBounded(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	addr := srv.Listener.Addr().String()
	c := testConfig(t, "  c: {type: http, interval: 10s, timeout: 5s}\n",
		"  up:\n    check: c\n    members: [{address: 192.0.2.1, probe: \""+addr+"\"}]\n"+
			"  down:\n    check: c\n    initial: down\n    members: [{address: 192.0.2.2, probe: \""+addr+"\"}]\n")
	p, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start(t, p)
	begin := time.Now()
	err = p.FirstRound(context.Background(), 100*time.Millisecond)
	if !errors.Is(err, ErrFirstRound) || !strings.Contains(err.Error(), "2 of 2 members") {
		t.Fatalf("FirstRound error %v, want ErrFirstRound for 2 of 2", err)
	}
	if took := time.Since(begin); took > time.Second {
		t.Errorf("FirstRound took %v with a 100ms wait", took)
	}
	for _, v := range p.Verdicts() {
		if v.Probed || v.Up != (v.Key.Pool == "up") {
			t.Errorf("%v: %+v, want its pool's initial state", v.Key, v)
		}
	}
}

func TestSetAdmin(t *testing.T) {
	addr := tcpServer(t)
	c := testConfig(t, "  c: {type: tcp, port: 1, interval: 50ms, timeout: 40ms}\n",
		"  p:\n    check: c\n    members:\n      - {address: \"::1\", probe: \""+addr+"\"}\n      - {address: www.example.test, probe: \""+addr+"\", admin: drain}\n")
	rec := &recorder{}
	p, err := New(c, Options{Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pool, addr string
		a          Admin
		want       error
	}{
		{"nope", "::1", AdminDown, ErrUnknownPool},
		{"p", "::2", AdminDown, ErrUnknownMember},
		{"p", "::1", Admin(9), ErrAdmin},
	} {
		err := p.SetAdmin(tc.pool, tc.addr, tc.a)
		if !errors.Is(err, tc.want) || tc.want == ErrUnknownMember && !strings.Contains(err.Error(), `pool "p" member "::2"`) {
			t.Errorf("SetAdmin(%q, %q, %v) = %v, want %v", tc.pool, tc.addr, tc.a, err, tc.want)
		}
	}
	start(t, p)
	if err := p.FirstRound(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	v6 := Key{"p", "::1"}
	rec.waitFor(t, v6, time.Second, "probed up", func(v Verdict) bool { return v.Up && !v.Forced })
	// The configuration's admin: drain holds from the start.
	if v, _ := p.Verdict("p", "WWW.example.test."); !v.Drain || !v.Up || v.Admin != AdminDrain {
		t.Errorf("drained member: %+v", v)
	}
	// Any spelling of the address names the member.
	if err := p.SetAdmin("p", "0:0::1", AdminDown); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, v6, time.Second, "forced down", func(v Verdict) bool { return !v.Up && v.Forced && v.ProbeUp && v.Admin == AdminDown })
	if err := p.SetAdmin("p", "::1", AdminAuto); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, v6, time.Second, "back to auto", func(v Verdict) bool { return v.Up && !v.Forced })
}

// TestBackendKilled kills a real HTTP backend and measures how long its
// verdict takes to go down, then brings it back.
func TestBackendKilled(t *testing.T) {
	const interval, timeout, fall, rise = 100 * time.Millisecond, 90 * time.Millisecond, 2, 2
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	var served atomic.Int64
	serve := func(l net.Listener) *httptest.Server {
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served.Add(1)
			fmt.Fprint(w, "ok")
		}))
		s.Listener.Close()
		s.Listener = l
		s.Start()
		return s
	}
	srv := serve(l)
	c := testConfig(t, fmt.Sprintf("  c: {type: http, interval: %v, timeout: %v, rise: %d, fall: %d, expect_body: ok}\n", interval, timeout, rise, fall),
		"  web:\n    check: c\n    members: [{address: 192.0.2.80, probe: \""+addr+"\"}]\n")
	rec := &recorder{}
	p, err := New(c, Options{Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	start(t, p)
	key := Key{"web", "192.0.2.80"}
	if err := p.FirstRound(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, key, 5*time.Second, "up at start", func(v Verdict) bool { return v.Up })

	killed := time.Now()
	srv.Close()
	// Worst case: the kill lands just after a probe, then fall failures
	// one interval apart, the last one taking up to its timeout (refused
	// on loopback is immediate; the slack is for a loaded machine).
	// The slack is for a loaded machine; the probe count below is exact.
	const slack = 400 * time.Millisecond
	bound := fall*interval + timeout + slack
	down := rec.waitFor(t, key, 5*time.Second, "down after kill", func(v Verdict) bool { return !v.Up })
	t.Logf("down %v after the kill (interval %v, fall %d)", down.Sub(killed), interval, fall)
	if d := down.Sub(killed); d > bound {
		t.Errorf("down %v after the kill, want within %v", d, bound)
	}

	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	served.Store(0)
	srv = serve(l)
	t.Cleanup(srv.Close)
	upAt := rec.waitFor(t, key, 5*time.Second, "up after restart", func(v Verdict) bool { return v.Up })
	t.Logf("up %v after the restart (rise %d)", upAt.Sub(back), rise)
	// rise good answers make it up: a probe more may have started since.
	if n := served.Load(); n < rise || n > rise+1 {
		t.Errorf("up after %d good answers, want %d", n, rise)
	}
	if d := upAt.Sub(back); d > rise*interval+timeout+slack {
		t.Errorf("up %v after the restart, want within %v", d, rise*interval+timeout+slack)
	}
}

// TestFlappingBackend: a backend alternating good and bad answers, faster
// than rise and fall, never changes the verdict. (Rise and fall are 4 so
// that a timeout on a loaded machine does not make a run of failures.)
func TestFlappingBackend(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 0 {
			http.Error(w, "flap", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	c := testConfig(t, "  c: {type: http, interval: 100ms, timeout: 90ms, rise: 4, fall: 4}\n",
		"  p:\n    check: c\n    members: [{address: 192.0.2.1, probe: \""+srv.Listener.Addr().String()+"\"}]\n")
	rec := &recorder{}
	p, err := New(c, Options{Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	start(t, p)
	eventually.True(t, 10*time.Second, func() bool { return n.Load() >= 4 }, "4 probes")
	early, _ := p.Verdict("p", "192.0.2.1")
	eventually.True(t, 10*time.Second, func() bool { return n.Load() >= 16 }, "16 probes")
	v, _ := p.Verdict("p", "192.0.2.1")
	// The verdict did not change, but the table shows the latest result.
	if !v.Checked.After(early.Checked) {
		t.Errorf("latest result checked at %v, as after 4 probes", v.Checked)
	}
	if !v.Up || !v.Probed {
		t.Fatalf("verdict %+v after flapping, want up", v)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, v := range rec.seen {
		if !v.Up {
			t.Fatalf("observer saw %+v while the backend flapped", v)
		}
	}
}

// TestLoadThroughProber: reports reach the verdict smoothed, small moves
// are not passed on, large ones are.
func TestLoadThroughProber(t *testing.T) {
	var load atomic.Value
	load.Store("0.5")
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"load": %s, "capacity": 8}`, load.Load())
		served.Add(1)
	}))
	t.Cleanup(srv.Close)
	c := testConfig(t, "  c: {type: load, path: /load, interval: 50ms, timeout: 45ms, load_smoothing: 0.5, load_threshold: 0.1, rise: 1, fall: 100}\n",
		"  p:\n    check: c\n    members: [{address: 192.0.2.1, probe: \""+srv.Listener.Addr().String()+"\"}]\n")
	// fall 100 and rise 1: no up/down change (a timeout on a loaded
	// machine) is mistaken for a load change passed on.
	rec := &recorder{}
	p, err := New(c, Options{Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	start(t, p)
	key := Key{"p", "192.0.2.1"}
	rec.waitFor(t, key, 5*time.Second, "first report", func(v Verdict) bool { return v.HasLoad && v.Load == 0.5 && v.Capacity == 8 })
	rec.mu.Lock()
	before := len(rec.seen)
	rec.mu.Unlock()

	load.Store("0.55") // the EWMA converges to 0.55: never 0.1 from 0.5
	from := served.Load()
	eventually.True(t, 5*time.Second, func() bool { return served.Load() >= from+10 }, "10 more reports")
	if v, _ := p.Verdict("p", "192.0.2.1"); v.Load != 0.5 {
		t.Errorf("load %g after a small move, want 0.5 kept", v.Load)
	}
	rec.mu.Lock()
	if len(rec.seen) != before {
		t.Errorf("small load move passed on: %+v", rec.seen[before:])
	}
	rec.mu.Unlock()

	load.Store("0.9")
	rec.waitFor(t, key, 5*time.Second, "large move", func(v Verdict) bool { return v.Load > 0.6 && v.Load < 0.9 })
}

func TestRunTwice(t *testing.T) {
	c := testConfig(t, "  c: {type: tcp, port: 1}\n", "  p: {members: [{address: 192.0.2.1}]}\n")
	p, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Run(ctx); err == nil {
		t.Fatal("second Run succeeded")
	}
}

func TestMetrics(t *testing.T) {
	live, dead := tcpServer(t), closedPort(t)
	c := testConfig(t, "  c: {type: tcp, port: 1, interval: 5s, timeout: 1s}\n",
		"  p:\n    check: c\n    members: [{address: 192.0.2.1, probe: \""+live+"\"}, {address: 192.0.2.2, probe: \""+dead+"\"}]\n")
	p, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collectors()...)
	start(t, p)
	if err := p.FirstRound(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	got := gather(t, reg)
	for name, want := range map[string]float64{
		"tern_probe_results_total,result=up,type=tcp":    1,
		"tern_probe_results_total,result=error,type=tcp": 1,
		"tern_probe_transitions_total,pool=p,to=down":    1,
		"tern_probe_duration_seconds,check=c,type=tcp":   2,
		"tern_probe_lateness_seconds":                    2,
	} {
		if g := got[name]; math.Abs(g-want) > 0 {
			t.Errorf("%s = %g, want %g (all: %v)", name, g, want, got)
		}
	}
}

// gather scrapes reg into name,label=value,... -> value (a histogram's
// sample count).
func gather(t testing.TB, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += fmt.Sprintf(",%s=%s", l.GetName(), l.GetValue())
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				got[name] = float64(m.GetHistogram().GetSampleCount())
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	return got
}

func TestInherit(t *testing.T) {
	live, dead := tcpServer(t), closedPort(t)
	pools := "  p:\n    check: c\n    members:\n" +
		"      - {address: 192.0.2.1, probe: \"" + live + "\"}\n" +
		"      - {address: 192.0.2.2, probe: \"" + dead + "\"}\n" +
		"      - {address: 192.0.2.3, probe: \"" + live + "\"}\n"
	c1 := testConfig(t, "  c: {type: tcp, port: 1, interval: 10s, timeout: 1s}\n", pools)
	old, err := New(c1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- old.Run(ctx) }()
	if err := old.FirstRound(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := old.SetAdmin("p", "192.0.2.3", AdminDrain); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done

	// The reload moves member 3 to another port and adds member 4; the
	// check stays the same.
	c2 := testConfig(t, "  c: {type: tcp, port: 1, interval: 10s, timeout: 1s}\n",
		strings.Replace(pools, "      - {address: 192.0.2.3, probe: \""+live+"\"}\n",
			"      - {address: 192.0.2.3, probe: \""+dead+"\"}\n      - {address: 192.0.2.4, probe: \""+live+"\"}\n", 1))
	p, err := New(c2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.Inherit(old)
	want := map[string]struct{ up, probed, drain bool }{
		"192.0.2.1": {true, true, false},  // kept: probed up
		"192.0.2.2": {false, true, false}, // kept: probed down
		"192.0.2.3": {true, false, true},  // probed elsewhere now: initial again, drain kept
		"192.0.2.4": {true, false, false}, // new: initial
	}
	for _, v := range p.Verdicts() {
		w := want[v.Key.Member]
		if v.Up != w.up || v.Probed != w.probed || v.Drain != w.drain {
			t.Errorf("%s: %+v, want up %v probed %v drain %v", v.Key.Member, v, w.up, w.probed, w.drain)
		}
	}
	if p.unresolved != 2 {
		t.Errorf("%d members wait for a first result, want 2", p.unresolved)
	}
	if got := p.FirstRoundWait(); got != 2*time.Second {
		t.Errorf("FirstRoundWait %v, want the 1s timeout + 1s", got)
	}
}

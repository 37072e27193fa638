package node

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dnsserver"
	"github.com/ternlb/tern/health"
	"github.com/ternlb/tern/probes"
	"github.com/ternlb/tern/raftstore"
	"github.com/ternlb/tern/selector"
)

// scaleRig is a cluster node's health path without Raft or probes: its
// FSM is fed commands directly, and it follows them the way the watcher
// does (followStateLocked). Self is node a; b and c are the other
// registered nodes, so every member has three probers and two of them
// decide.
type scaleRig struct {
	n     *Node
	fsm   *raftstore.FSM
	pools int
	clock time.Time
	down  map[int]bool // pools whose first member b and c last said down
}

// newScaleRig builds pools pools of 10 members each (half of them
// falling back to the next one when all are down), checked by a TCP
// check that never runs.
func newScaleRig(tb testing.TB, pools int) *scaleRig {
	tb.Helper()
	var b strings.Builder
	b.WriteString("node:\n  name: a\n  dns: [\"127.0.0.1:0\"]\nchecks:\n  h: {type: tcp, port: 9, interval: 1h}\npools:\n")
	for p := range pools {
		fmt.Fprintf(&b, "  p%d:\n    check: h\n", p)
		if p%2 == 0 && p+1 < pools {
			fmt.Fprintf(&b, "    all_down: fallback:p%d\n", p+1)
		}
		b.WriteString("    members:\n")
		for m := range 10 {
			fmt.Fprintf(&b, "      - {address: 10.%d.%d.%d}\n", p/250, p%250, m+1)
		}
	}
	b.WriteString("zones:\n  - file: z.zone\n")
	dir := tb.TempDir()
	os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte(b.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "z.zone"), []byte(testZone[:strings.Index(testZone, "www")]+"www 5 IN POOL p0\n"), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "tern.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	snap, ps := compileWith(cfg, nil, nil)
	if len(ps) > 0 {
		tb.Fatal(ps)
	}
	pr, err := probes.New(cfg, probes.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	g := &generation{cfg: cfg, base: snap, prober: pr}
	fsm := applyAll(tb,
		raftstore.RegisterNode{ID: "a", Raft: "127.0.0.1:1"},
		raftstore.RegisterNode{ID: "b", Raft: "127.0.0.1:2"},
		raftstore.RegisterNode{ID: "c", Raft: "127.0.0.1:3"})
	rig := &scaleRig{fsm: fsm, pools: pools, clock: rt0, down: map[int]bool{}}
	h := newHealthView("a", true, time.Hour, func() (time.Time, bool) { return rig.clock, true })
	h.fsm = fsm
	st := fsm.State()
	h.src.st, h.since = st, st.Index()
	h.r.SetNodes(healthNodes(st))
	n := &Node{log: slog.New(slog.DiscardHandler), events: api.NewEventLog(eventsKept), hv: h, gen: g, toReport: map[health.Key]bool{}}
	if err := n.installHealthLocked(g); err != nil {
		tb.Fatal(err)
	}
	n.serveLocked()
	rig.n = n
	return rig
}

// flip has b and c report the first member of pool i down, or up again
// when they last said down, and the node follow: one served state change,
// from the FSM to the served snapshot.
func (r *scaleRig) flip(tb testing.TB, i int) {
	r.down[i] = !r.down[i]
	r.clock = r.clock.Add(time.Millisecond)
	r.report(tb, i, !r.down[i])
}

// report has b and c report the first member of pool i, at the clock,
// and the node follow.
func (r *scaleRig) report(tb testing.TB, i int, up bool) {
	member := fmt.Sprintf("10.%d.%d.1", i/250, i%250)
	for _, node := range []raftstore.NodeID{"b", "c"} {
		apply(tb, r.fsm, observation(node, health.KindHealth, fmt.Sprintf("p%d", i), member, health.HealthValue(up), r.clock))
	}
	r.n.mu.Lock()
	r.n.followStateLocked(r.fsm.State())
	r.n.mu.Unlock()
}

// A verdict change rebuilds the pool it touches and the pool that falls
// back to it, shares every other pool with the last snapshot, and the API
// says what the snapshot serves; a report that changes no served state
// rebuilds nothing.
func TestVerdictRebuildsItsPool(t *testing.T) {
	r := newScaleRig(t, 40)
	n := r.n
	index := func(name string) int {
		return poolIndex(n.gen.base.Pools, name)
	}
	for _, tc := range []struct {
		name    string
		pool    int
		up      bool
		rebuilt []string
	}{
		{"a pool another falls back to: both", 7, false, []string{"p6", "p7"}},
		{"a pool nothing falls back to: itself", 0, false, []string{"p0"}},
		{"back up", 7, true, []string{"p6", "p7"}},
		{"again up: nothing", 7, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := n.served.Load()
			rebuilds := n.hv.rebuilds
			r.clock = r.clock.Add(time.Second)
			r.report(t, tc.pool, tc.up)
			after := n.served.Load()
			var rebuilt []string
			for i := range before.Pools.Changed(after.Pools) {
				rebuilt = append(rebuilt, after.Pools.At(i).Name)
			}
			slices.Sort(rebuilt)
			if !slices.Equal(rebuilt, tc.rebuilt) {
				t.Fatalf("pools rebuilt %v, want %v", rebuilt, tc.rebuilt)
			}
			if want := rebuilds + min(len(tc.rebuilt), 1); n.hv.rebuilds != want {
				t.Fatalf("%d snapshots built, want %d", n.hv.rebuilds-rebuilds, want-rebuilds)
			}
			i := index(fmt.Sprintf("p%d", tc.pool))
			if got := after.Pools.At(i).Status(0).Up; got != tc.up {
				t.Fatalf("p%d's first member served up=%v, want %v", tc.pool, got, tc.up)
			}
			if tc.pool%2 == 1 && after.Pools.At(index(fmt.Sprintf("p%d", tc.pool-1))).FallbackPool() != after.Pools.At(i) {
				t.Fatal("the pool falling back to it points at an old copy")
			}
			n.mu.Lock()
			samePools(t, n.poolsLocked(), n.served.Load())
			n.mu.Unlock()
		})
	}
}

// The clock alone changes a state: the watcher sleeps until the Resolver's
// next deadline, and resolving then, with no new command, serves the
// change.
func TestClockAloneAgesOut(t *testing.T) {
	r := newScaleRig(t, 4)
	n := r.n
	n.mu.Lock()
	if _, ok := n.nextResolveLocked(); ok {
		t.Fatal("nothing observed, yet a deadline")
	}
	n.mu.Unlock()
	r.report(t, 1, false) // b and c at the clock: down by agreement, stale an hour later
	n.mu.Lock()
	defer n.mu.Unlock()
	d, ok := n.nextResolveLocked()
	if !ok || d != time.Hour+time.Nanosecond {
		t.Fatalf("next resolve in %v (%v), want just over the max age", d, ok)
	}
	i := poolIndex(n.gen.base.Pools, "p1")
	if n.served.Load().Pools.At(i).Status(0).Up {
		t.Fatal("not down by agreement")
	}
	rebuilds := n.hv.rebuilds
	r.clock = r.clock.Add(time.Hour)
	n.resolveLocked(nil)
	if n.hv.rebuilds != rebuilds {
		t.Fatal("rebuilt before the deadline")
	}
	r.clock = r.clock.Add(d - time.Hour)
	n.resolveLocked(nil)
	if !n.served.Load().Pools.At(i).Status(0).Up || n.hv.rebuilds != rebuilds+1 {
		t.Fatal("the verdicts aged out, but the member is still served down")
	}
	if _, ok := n.nextResolveLocked(); ok {
		t.Fatal("every observation is stale for good, yet a deadline")
	}
}

// poolIndex is the index of the pool named name in pools, -1 if none.
func poolIndex(pools selector.Table, name string) int {
	for i, p := range pools.All() {
		if p.Name == name {
			return i
		}
	}
	return -1
}

// samePools fails unless pools (what /v1/pools says) and snap (what DNS
// answers from) hold the same members in the same served states.
func samePools(t testing.TB, pools []api.Pool, snap *dnsserver.Snapshot) {
	t.Helper()
	if len(pools) != snap.Pools.Len() {
		t.Fatalf("/v1/pools has %d pools, the snapshot %d", len(pools), snap.Pools.Len())
	}
	for i, p := range pools {
		sp := snap.Pools.At(i)
		if p.Name != sp.Name || len(p.Members) != len(sp.Members) {
			t.Fatalf("pool %d: /v1/pools %s (%d members), snapshot %s (%d)", i, p.Name, len(p.Members), sp.Name, len(sp.Members))
		}
		for j, m := range p.Members {
			st := sp.Status(j)
			if m.Up != (st.Up && !st.Drain) || m.Load != st.Load {
				t.Fatalf("%s/%s: /v1/pools up=%v load=%v (%s), DNS serves %+v", p.Name, m.Address, m.Up, m.Load, m.Why, st)
			}
		}
	}
}

// The cost of one verdict change, from the FSM to the served snapshot,
// does not grow with the number of pools: it allocates as often and as
// many bytes at 2,000 pools as at 100 (copying a slice of the pools
// would add 16 KB at 2,000).
func TestVerdictCostIndependentOfPools(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 20,000 members")
	}
	allocs, bytes := map[int]float64{}, map[int]float64{}
	for _, pools := range []int{100, 2000} {
		r := newScaleRig(t, pools)
		i := 0
		change := func() {
			r.flip(t, 2*(i%(pools/2))+1)
			i++
		}
		allocs[pools] = testing.AllocsPerRun(200, change)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 200 {
			change()
		}
		runtime.ReadMemStats(&after)
		bytes[pools] = float64(after.TotalAlloc-before.TotalAlloc) / 200
	}
	t.Logf("per verdict change: allocations %v, bytes %v", allocs, bytes)
	if allocs[2000] > allocs[100]+2 {
		t.Fatalf("a verdict change allocates %v times at 2,000 pools, %v at 100: it grows with the pools", allocs[2000], allocs[100])
	}
	if bytes[2000] > bytes[100]+2048 {
		t.Fatalf("a verdict change allocates %.0f bytes at 2,000 pools, %.0f at 100: it grows with the pools", bytes[2000], bytes[100])
	}
}

// BenchmarkVerdictToSnapshot measures one verdict change, from the FSM
// applying the two probers' reports to the node serving the new snapshot
// (FSM apply with its JSON decoding, ChangedSince, Resolve, rebuilding
// the pool and relinking, the atomic store), at 100, 1,000 and 10,000
// pools of 10 members (10,000 only with TERN_BENCH_SCALE=1: building
// 100,000 members takes a while). The DNS variants add dnsserver's Store,
// which keeps its index across a health change and compares the pools.
func BenchmarkVerdictToSnapshot(b *testing.B) {
	sizes := []int{100, 1000}
	if os.Getenv("TERN_BENCH_SCALE") != "" {
		sizes = append(sizes, 10000)
	}
	for _, dns := range []bool{false, true} {
		for _, pools := range sizes {
			name := fmt.Sprintf("pools=%d", pools)
			if dns {
				name = "dns/" + name
			}
			b.Run(name, func(b *testing.B) {
				r := newScaleRig(b, pools)
				if dns {
					srv, err := dnsserver.New(dnsserver.Options{Addrs: []string{"127.0.0.1:0"}, UDPSockets: 1})
					if err != nil {
						b.Fatal(err)
					}
					r.n.dns = srv
					srv.Store(r.n.served.Load()) // the first Store indexes all
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					r.flip(b, 2*(i%(pools/2))+1)
				}
				b.StopTimer()
				if r.n.hv.rebuilds < b.N {
					b.Fatalf("%d verdict changes, %d snapshots built", b.N, r.n.hv.rebuilds)
				}
				if r.n.dns != nil && r.n.dns.Reindexed() != 0 {
					b.Fatalf("dnsserver indexed %d of %d snapshots afresh", r.n.dns.Reindexed(), b.N)
				}
			})
		}
	}
}

// A verdict change reaches DNS without dnsserver indexing the snapshot
// again, at 100 pools as at 10,000: the downed member leaves the answers,
// comes back, and the per-member answer counters count on across the
// changes.
func TestVerdictServedWithoutReindex(t *testing.T) {
	sizes := []int{100}
	if !testing.Short() {
		sizes = append(sizes, 10000)
	}
	for _, pools := range sizes {
		t.Run(fmt.Sprintf("pools=%d", pools), func(t *testing.T) {
			r := newScaleRig(t, pools)
			srv, err := dnsserver.New(dnsserver.Options{Addrs: []string{"127.0.0.1:0"}, UDPSockets: 1})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srv.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
			<-srv.Ready()
			r.n.mu.Lock()
			r.n.dns = srv
			srv.Store(r.n.served.Load())
			r.n.mu.Unlock()
			addr := srv.Addrs()[0].String()
			all := make([]string, 10)
			for m := range all {
				all[m] = fmt.Sprintf("10.0.0.%d", m+1)
			}
			slices.Sort(all)
			count := func(member string) uint64 { return srv.PoolAnswers()[[2]string{"p0", member}] }
			ask := func(want []string) {
				t.Helper()
				before := map[string]uint64{}
				for _, m := range all {
					before[m] = count(m)
				}
				if got := answers(t, addr, "www.example.test."); !slices.Equal(got, want) {
					t.Fatalf("www answers %v, want %v", got, want)
				}
				for _, m := range all {
					inc := uint64(0)
					if slices.Contains(want, m) {
						inc = 1
					}
					if got := count(m); got != before[m]+inc {
						t.Fatalf("p0/%s counted %d answers, want %d", m, got, before[m]+inc)
					}
				}
			}
			ask(all)
			ask(all)
			r.report(t, 0, false)
			ask(all[1:]) // 10.0.0.1 sorts first
			r.flip(t, pools-1)
			r.flip(t, 1)
			r.clock = r.clock.Add(time.Second)
			r.report(t, 0, true)
			ask(all)
			if n := srv.Reindexed(); n != 0 {
				t.Fatalf("%d verdict changes indexed every pool again", n)
			}
			if count(all[0]) != 3 || count(all[1]) != 4 {
				t.Fatalf("counters %d and %d, want 3 and 4: they restarted", count(all[0]), count(all[1]))
			}
		})
	}
}

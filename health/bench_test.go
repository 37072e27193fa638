package health

import (
	"fmt"
	"testing"
	"time"
)

const membersPerPool = 10

// world is a cluster of three nodes serving pools of ten members, each
// with three fresh verdicts saying up, resolved once.
func world(tb testing.TB, pools int) (*Resolver, *fakeSource) {
	tb.Helper()
	src := newSource()
	ms := make([]Member, 0, pools*membersPerPool)
	for p := range pools {
		for m := range membersPerPool {
			k := Key{fmt.Sprintf("pool-%d", p), fmt.Sprintf("10.%d.%d.%d", p/250, p%250, m)}
			ms = append(ms, Member{Key: k, CheckType: "http", InitialUp: true})
			src.own[k] = Own{Probed: true, Up: true, At: t0}
			for _, n := range three {
				src.set(k, hv(n, true, t0))
			}
		}
	}
	r := NewResolver(Options{Self: "n1", Cluster: true, MaxAge: maxAge})
	if err := r.SetMembers(ms); err != nil {
		tb.Fatal(err)
	}
	r.SetNodes(three)
	r.Resolve(src, nil, t0)
	return r, src
}

// flip has n2 and n3 change their verdict on k: its served state changes.
func flip(src *fakeSource, k Key, up bool) {
	src.set(k, hv("n2", up, t0))
	src.set(k, hv("n3", up, t0))
}

// Re-resolving after one member's verdicts changed reads that member
// alone and allocates the same at 100 pools as at 10,000.
func TestResolveCostIndependentOfPools(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100,000 members")
	}
	allocs := map[int]float64{}
	for _, pools := range []int{100, 10000} {
		r, src := world(t, pools)
		k := Key{"pool-42", "10.0.42.7"}
		clock := t0.Add(time.Second)
		src.reads = 0
		flip(src, k, false)
		ch := r.Resolve(src, []Key{k}, clock)
		if src.reads != 1 || len(ch.Served) != 1 || len(ch.Pools) != 1 || ch.Pools[0] != "pool-42" {
			t.Fatalf("%d pools: read %d members, changes %+v; want the one member and its pool", pools, src.reads, ch)
		}
		up := true
		allocs[pools] = testing.AllocsPerRun(200, func() {
			flip(src, k, up)
			up = !up
			if ch := r.Resolve(src, []Key{k}, clock); len(ch.Served) != 1 {
				t.Fatalf("a flip changed %d members", len(ch.Served))
			}
		})
	}
	if allocs[100] != allocs[10000] {
		t.Fatalf("allocations per re-resolve: %v at 100 pools, %v at 10,000", allocs[100], allocs[10000])
	}
	t.Logf("allocations per re-resolve of one member: %v", allocs[100])
}

// BenchmarkResolveOne: one member's verdicts change (its served state
// flips) and it is re-resolved, at 100, 1,000 and 10,000 pools of ten
// members. ns/op and allocs/op should not grow with the pools.
func BenchmarkResolveOne(b *testing.B) {
	for _, pools := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("pools=%d", pools), func(b *testing.B) {
			r, src := world(b, pools)
			keys := []Key{{"pool-42", "10.0.42.7"}}
			clock := t0.Add(time.Second)
			up := false
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				flip(src, keys[0], up)
				up = !up
				r.Resolve(src, keys, clock)
			}
		})
	}
}

// BenchmarkResolveAll is what resolving every member costs (the first
// resolve, a node list change), for comparison.
func BenchmarkResolveAll(b *testing.B) {
	for _, pools := range []int{100, 1000} {
		b.Run(fmt.Sprintf("pools=%d", pools), func(b *testing.B) {
			r, src := world(b, pools)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r.TouchAll()
				r.Resolve(src, nil, t0)
			}
		})
	}
}

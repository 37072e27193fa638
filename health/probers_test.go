package health

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)

func nodeList(n int) []NodeID {
	out := make([]NodeID, n)
	for i := range out {
		out[i] = NodeID(fmt.Sprintf("node-%d", i+1))
	}
	return out
}

// The assignments raftstore.Probers gave before the rule moved here
// (computed from it); TestProbersMatchRaftstore checks many more.
func TestProbersPinned(t *testing.T) {
	seven := []NodeID{"n1", "n2", "n3", "n4", "n5", "n6", "n7"}
	for _, tc := range []struct {
		key   Key
		nodes []NodeID
		k     int
		want  []NodeID
	}{
		{Key{"web", "10.0.0.1"}, seven, 0, []NodeID{"n4", "n3", "n2"}},
		{Key{"web", "10.0.0.2"}, seven, 0, []NodeID{"n7", "n3", "n1"}},
		{Key{"api", "2001:db8::1"}, seven, 0, []NodeID{"n3", "n4", "n6"}},
		{Key{"lb", "192.0.2.1"}, seven, 0, []NodeID{"n3", "n1", "n2"}},
		{Key{"x", "x"}, seven, 0, []NodeID{"n7", "n4", "n1"}},
		{Key{"web", "10.0.0.1"}, seven[:6], 2, []NodeID{"n4", "n3"}},
	} {
		t.Run(fmt.Sprintf("%v of %d k=%d", tc.key, len(tc.nodes), tc.k), func(t *testing.T) {
			if got := Probers(tc.key, tc.nodes, tc.k); !slices.Equal(got, tc.want) {
				t.Fatalf("Probers = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestProbers(t *testing.T) {
	key := Key{"web", "10.0.0.1"}
	tests := []struct {
		nodes, k, want int
	}{
		{1, 0, 1}, {3, 0, 3}, {5, 0, 5}, {6, 0, 3}, {20, 0, 3},
		{7, 2, 2}, {3, 5, 3}, {0, 0, 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d nodes k=%d", tc.nodes, tc.k), func(t *testing.T) {
			ns := nodeList(tc.nodes)
			got := Probers(key, ns, tc.k)
			if len(got) != tc.want {
				t.Fatalf("got %v, want %d probers", got, tc.want)
			}
			// The input order does not matter, duplicates count once.
			rev := slices.Clone(ns)
			slices.Reverse(rev)
			rev = append(rev, ns...)
			if again := Probers(key, rev, tc.k); !slices.Equal(again, got) {
				t.Fatalf("order-dependent: %v vs %v", got, again)
			}
			for _, p := range got {
				if !Assigned(p, key, ns, tc.k) {
					t.Fatalf("%s is a prober but not Assigned", p)
				}
			}
		})
	}
}

func TestProbersSpreadAndStability(t *testing.T) {
	const members = 2000
	seven, eight := nodeList(7), nodeList(8)
	load := map[NodeID]int{}
	moved := 0
	for i := range members {
		key := Key{"web", fmt.Sprintf("10.1.%d.%d", i/250, i%250)}
		a, b := Probers(key, seven, 0), Probers(key, eight, 0)
		for _, p := range a {
			load[p]++
		}
		// Adding node-8 replaces at most one prober, and only by node-8.
		gone := 0
		for _, p := range a {
			if !slices.Contains(b, p) {
				gone++
			}
		}
		if gone > 1 || (gone == 1 && !slices.Contains(b, "node-8")) {
			t.Fatalf("member %v: %v -> %v", key, a, b)
		}
		moved += gone
	}
	for n, c := range load {
		if c < members*3/7*8/10 || c > members*3/7*12/10 {
			t.Errorf("%s probes %d of %d members, want about %d", n, c, members, members*3/7)
		}
	}
	if moved < members*3/8*8/10 || moved > members*3/8*12/10 {
		t.Errorf("adding a node moved %d probers, want about %d", moved, members*3/8)
	}
}

func TestFresh(t *testing.T) {
	for _, tc := range []struct {
		name   string
		at     time.Time
		maxAge time.Duration
		want   bool
	}{
		{"now", t0, maxAge, true},
		{"exactly max age old", t0.Add(-maxAge), maxAge, true},
		{"just older", t0.Add(-maxAge - time.Nanosecond), maxAge, false},
		{"exactly max age ahead", t0.Add(maxAge), maxAge, true},
		{"further ahead", t0.Add(maxAge + time.Nanosecond), maxAge, false},
		{"no max age: never stale", t0.Add(-1000 * time.Hour), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Fresh(tc.at, t0, tc.maxAge); got != tc.want {
				t.Fatalf("Fresh = %v, want %v", got, tc.want)
			}
		})
	}
}

// obs is a test shorthand for an observation.
func obs(node NodeID, kind Kind, value float64, at time.Time) Observation {
	return Observation{Node: node, Kind: kind, Value: value, At: at}
}

func hv(node NodeID, up bool, at time.Time) Observation {
	return obs(node, KindHealth, HealthValue(up), at)
}

// Ported from raftstore's TestMemberUp, whose rules Agree takes over.
func TestAgree(t *testing.T) {
	tests := []struct {
		name      string
		probers   []NodeID
		verdicts  []Observation
		q         int // 0: majority
		up, known bool
	}{
		{"single node up", []NodeID{"n1"}, []Observation{hv("n1", true, fresh)}, 0, true, true},
		{"single node down", []NodeID{"n1"}, []Observation{hv("n1", false, fresh)}, 0, false, true},
		{"single node stale", []NodeID{"n1"}, []Observation{hv("n1", false, stale)}, 0, false, false},
		{"no verdict yet", three, nil, 0, false, false},
		{"no probers", nil, []Observation{hv("n1", true, fresh)}, 0, false, false},
		{"three agree up", three, []Observation{hv("n1", true, fresh), hv("n2", true, fresh), hv("n3", true, fresh)}, 0, true, true},
		{"one of three sees down", three, []Observation{hv("n1", true, fresh), hv("n2", false, fresh), hv("n3", true, fresh)}, 0, true, true},
		{"two of three see down", three, []Observation{hv("n1", false, fresh), hv("n2", false, fresh), hv("n3", true, fresh)}, 0, false, true},
		{"all three see down", three, []Observation{hv("n1", false, fresh), hv("n2", false, fresh), hv("n3", false, fresh)}, 0, false, true},
		{"stale downs ignored", three, []Observation{hv("n1", false, stale), hv("n2", false, stale), hv("n3", true, fresh)}, 0, false, false},
		{"two fresh ups outvote a stale down", three, []Observation{hv("n1", true, fresh), hv("n2", true, fresh), hv("n3", false, stale)}, 0, true, true},
		{"a stale up does not make a majority", three, []Observation{hv("n1", true, fresh), hv("n2", true, stale), hv("n3", false, fresh)}, 0, false, false},
		{"a verdict from the far future is ignored", three, []Observation{hv("n1", false, now.Add(time.Hour)), hv("n2", false, fresh), hv("n3", true, fresh)}, 0, false, false},
		{"a little clock skew is fine", three, []Observation{hv("n1", false, now.Add(2*time.Second)), hv("n2", false, fresh)}, 0, false, true},
		{"exactly maxAge old is fresh", []NodeID{"n1"}, []Observation{hv("n1", true, now.Add(-maxAge))}, 0, true, true},
		{"non-probers are ignored", three, []Observation{hv("n1", true, fresh), hv("n4", false, fresh), hv("n5", false, fresh)}, 0, false, false},
		{"duplicate probers count once", []NodeID{"n1", "n1", "n1"}, []Observation{hv("n1", true, fresh)}, 0, true, true},
		{"a node's latest verdict counts", []NodeID{"n1"}, []Observation{hv("n1", true, fresh), hv("n1", false, stale)}, 0, true, true},
		{"load observations are not verdicts", []NodeID{"n1"}, []Observation{obs("n1", KindLoad, 1, fresh)}, 0, false, false},
		{"four split two-two", []NodeID{"n1", "n2", "n3", "n4"}, []Observation{hv("n1", true, fresh), hv("n2", true, fresh), hv("n3", false, fresh), hv("n4", false, fresh)}, 0, false, false},
		{"quorum 1 of 3: any up wins", three, []Observation{hv("n1", false, fresh), hv("n2", false, fresh), hv("n3", true, fresh)}, 1, true, true},
		{"quorum 3 of 3: one down blocks up", three, []Observation{hv("n1", true, fresh), hv("n2", true, fresh), hv("n3", false, fresh)}, 3, false, false},
		{"quorum above probers is clamped", []NodeID{"n1"}, []Observation{hv("n1", true, fresh)}, 5, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up, known := Agree(tc.verdicts, tc.probers, tc.q, now, maxAge)
			if up != tc.up || known != tc.known {
				t.Errorf("got up=%v known=%v, want up=%v known=%v", up, known, tc.up, tc.known)
			}
		})
	}
	if up, known := Agree([]Observation{hv("n1", true, t0)}, []NodeID{"n1"}, 0, t0.Add(1000*time.Hour), 0); !up || !known {
		t.Fatal("maxAge 0 aged a verdict out")
	}
}

// Ported from node's TestServedLoad, whose rules Median takes over.
func TestMedian(t *testing.T) {
	probers := []NodeID{"a", "b", "c"}
	ld := func(node NodeID, v float64, at time.Time) Observation { return obs(node, KindLoad, v, at) }
	for _, tc := range []struct {
		name  string
		loads []Observation
		want  float64
		ok    bool
	}{
		{"median of three, an outlier ignored", []Observation{ld("a", 10, t0), ld("b", 12, t0), ld("c", 90, t0)}, 12, true},
		{"odd, unsorted", []Observation{ld("c", 5, t0), ld("a", 90, t0), ld("b", 7, t0)}, 7, true},
		{"a stale report left out, two averaged", []Observation{ld("a", 10, t0), ld("b", 12, t0), ld("c", 90, t0.Add(-time.Minute))}, 11, true},
		{"a non-prober's report ignored", []Observation{ld("a", 10, t0), ld("z", 1000, t0)}, 10, true},
		{"a health observation is not a load", []Observation{ld("a", 10, t0), hv("b", true, t0)}, 10, true},
		{"none fresh: none", []Observation{ld("a", 10, t0.Add(-time.Minute))}, 0, false},
		{"none at all", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Median(tc.loads, probers, t0.Add(time.Second), maxAge)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("Median = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestProbersMatchRaftstore pins every assignment of 300 members over 1
// to 12 nodes to the digest of what raftstore.Probers computed before the
// prober choice moved here (commit b55e1e0): every node must keep
// computing the same probers, or a rolling upgrade would split the
// probers of a member between two rules.
func TestProbersMatchRaftstore(t *testing.T) {
	const want = "9e16281720412aefe885f7650f637b339df7da87ae6b2cb2641a49b15348572b"
	h := sha256.New()
	for _, n := range []int{1, 2, 3, 5, 6, 7, 12} {
		var nodes []NodeID
		for i := range n {
			nodes = append(nodes, NodeID(fmt.Sprintf("tern-%d.example", i)))
		}
		for i := range 300 {
			pool, member := fmt.Sprintf("pool-%d", i%7), fmt.Sprintf("10.%d.%d.1", i/250, i%250)
			if i%50 == 0 {
				member = "2001:db8::" + fmt.Sprint(i)
			}
			for _, k := range []int{0, 2} {
				fmt.Fprintln(h, n, pool, member, k, Probers(Key{Pool: pool, Member: member}, nodes, k))
			}
		}
	}
	if got := fmt.Sprintf("%x", h.Sum(nil)); got != want {
		t.Fatalf("assignments digest %s, raftstore's was %s", got, want)
	}
}

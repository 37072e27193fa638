package raftstore

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestMemberUp(t *testing.T) {
	const maxAge = 30 * time.Second
	now := t0.Add(time.Hour)
	fresh, stale := now.Add(-5*time.Second), now.Add(-time.Minute)
	type v struct {
		node NodeID
		up   bool
		at   time.Time
	}
	three := []NodeID{"n1", "n2", "n3"}
	tests := []struct {
		name      string
		probers   []NodeID
		verdicts  []v
		q         int // 0: MemberUp's majority
		up, known bool
	}{
		{"single node up", []NodeID{"n1"}, []v{{"n1", true, fresh}}, 0, true, true},
		{"single node down", []NodeID{"n1"}, []v{{"n1", false, fresh}}, 0, false, true},
		{"single node stale", []NodeID{"n1"}, []v{{"n1", false, stale}}, 0, false, false},
		{"no verdict yet", three, nil, 0, false, false},
		{"no probers", nil, []v{{"n1", true, fresh}}, 0, false, false},
		{"three agree up", three, []v{{"n1", true, fresh}, {"n2", true, fresh}, {"n3", true, fresh}}, 0, true, true},
		// The scenario: one node cut off from a backend sees it down.
		{"one of three sees down", three, []v{{"n1", true, fresh}, {"n2", false, fresh}, {"n3", true, fresh}}, 0, true, true},
		{"two of three see down", three, []v{{"n1", false, fresh}, {"n2", false, fresh}, {"n3", true, fresh}}, 0, false, true},
		{"all three see down", three, []v{{"n1", false, fresh}, {"n2", false, fresh}, {"n3", false, fresh}}, 0, false, true},
		// Stale verdicts do not count, either way.
		{"stale downs ignored", three, []v{{"n1", false, stale}, {"n2", false, stale}, {"n3", true, fresh}, {"n1", false, stale}}, 0, false, false},
		{"two fresh ups outvote a stale down", three, []v{{"n1", true, fresh}, {"n2", true, fresh}, {"n3", false, stale}}, 0, true, true},
		{"a stale up does not make a majority", three, []v{{"n1", true, fresh}, {"n2", true, stale}, {"n3", false, fresh}}, 0, false, false},
		{"a verdict from the far future is ignored", three, []v{{"n1", false, now.Add(time.Hour)}, {"n2", false, fresh}, {"n3", true, fresh}}, 0, false, false},
		{"a little clock skew is fine", three, []v{{"n1", false, now.Add(2 * time.Second)}, {"n2", false, fresh}}, 0, false, true},
		{"exactly maxAge old is fresh", []NodeID{"n1"}, []v{{"n1", true, now.Add(-maxAge)}}, 0, true, true},
		{"non-probers are ignored", []NodeID{"n1", "n2", "n3"}, []v{{"n1", true, fresh}, {"n4", false, fresh}, {"n5", false, fresh}}, 0, false, false},
		{"duplicate probers count once", []NodeID{"n1", "n1", "n1"}, []v{{"n1", true, fresh}}, 0, true, true},
		{"four split two-two", []NodeID{"n1", "n2", "n3", "n4"}, []v{{"n1", true, fresh}, {"n2", true, fresh}, {"n3", false, fresh}, {"n4", false, fresh}}, 0, false, false},
		{"quorum 1 of 3: any up wins", three, []v{{"n1", false, fresh}, {"n2", false, fresh}, {"n3", true, fresh}}, 1, true, true},
		{"quorum 3 of 3: one down blocks up", three, []v{{"n1", true, fresh}, {"n2", true, fresh}, {"n3", false, fresh}}, 3, false, false},
		{"quorum above probers is clamped", []NodeID{"n1"}, []v{{"n1", true, fresh}}, 5, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFSM()
			for i, x := range tc.verdicts {
				h := HealthDown
				if x.up {
					h = HealthUp
				}
				applyLog(f, uint64(i+1), enc(t, Verdicts{Node: x.node, Verdicts: []VerdictReport{{"web", "10.0.0.1", h, x.at}}}))
			}
			var up, known bool
			if tc.q == 0 {
				up, known = MemberUp(f.State(), "web", "10.0.0.1", tc.probers, now, maxAge)
			} else {
				up, known = MemberUpQuorum(f.State(), "web", "10.0.0.1", tc.probers, tc.q, now, maxAge)
			}
			if up != tc.up || known != tc.known {
				t.Errorf("got up=%v known=%v, want up=%v known=%v", up, known, tc.up, tc.known)
			}
			// Another member's verdicts are not this one's.
			if up, known := MemberUp(f.State(), "web", "10.0.0.2", tc.probers, now, maxAge); up || known {
				t.Error("verdicts leaked to another member")
			}
		})
	}
}

func TestMemberUpNoExpiry(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, 1, Verdicts{Node: "n1", Verdicts: []VerdictReport{{"web", "a", HealthUp, t0}}})
	if up, known := MemberUp(f.State(), "web", "a", []NodeID{"n1"}, t0.Add(1000*time.Hour), 0); !up || !known {
		t.Fatal("maxAge 0 aged a verdict out")
	}
}

func nodeList(n int) []NodeID {
	out := make([]NodeID, n)
	for i := range out {
		out[i] = NodeID(fmt.Sprintf("node-%d", i+1))
	}
	return out
}

func TestProbers(t *testing.T) {
	key := MemberKey{"web", "10.0.0.1"}
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
		key := MemberKey{"web", fmt.Sprintf("10.1.%d.%d", i/250, i%250)}
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
	// Each node probes about 3/7 of the members; node-8 takes about 3/8.
	for n, c := range load {
		if c < members*3/7*8/10 || c > members*3/7*12/10 {
			t.Errorf("%s probes %d of %d members, want about %d", n, c, members, members*3/7)
		}
	}
	if moved < members*3/8*8/10 || moved > members*3/8*12/10 {
		t.Errorf("adding a node moved %d probers, want about %d", moved, members*3/8)
	}
}

package selector

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func TestFamilyAndHealthy(t *testing.T) {
	p := compileOne(t, `    members:
      - {address: 192.0.2.1}
      - {address: 192.0.2.2, admin: drain}
      - {address: 192.0.2.3, admin: down}
      - {address: "2001:db8::1"}
      - {address: "::ffff:192.0.2.4"}
`, nil)
	tests := []struct {
		name string
		fam  Family
		down []string
		want []string
	}{
		{"A keeps up v4 members, not drained or admin down", IPv4, nil, []string{"192.0.2.1", "192.0.2.4"}},
		{"AAAA keeps v6 members", IPv6, nil, []string{"2001:db8::1"}},
		{"probe down is dropped", IPv4, []string{"192.0.2.1"}, []string{"192.0.2.4"}},
	}
	s := NewScratch(4)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := p
			if tc.down != nil {
				st := make([]Status, len(p.Members))
				for i := range st {
					st[i] = p.Status(i)
					if slices.Contains(tc.down, p.Members[i].Name()) {
						st[i].Up = false
					}
				}
				q = p.WithStatus(st)
			}
			a := q.Select(client("198.51.100.1"), tc.fam, s)
			got := names(a)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if a.Scope != 0 {
				t.Errorf("scope %d, want 0: no stage looked at the client", a.Scope)
			}
		})
	}
}

func TestFamilyWithoutMembersIsEmptyNotAllDown(t *testing.T) {
	p := compileOne(t, "    all_down: all\n"+members(3, nil), nil)
	a := p.Select(client("192.0.2.1"), IPv6, NewScratch(3))
	if len(a.Members) != 0 || a.AllDown {
		t.Fatalf("AAAA on a v4-only pool = %v (all down %v), want empty", names(a), a.AllDown)
	}
}

func TestRoundRobinRotates(t *testing.T) {
	p := compileOne(t, "    policy: roundrobin\n"+members(4, nil), nil)
	s := NewScratch(4)
	first := map[string]int{}
	var prev string
	for i := range 400 {
		a := p.Select(client("192.0.2.1"), IPv4, s)
		if len(a.Members) != 4 {
			t.Fatalf("answer has %d members, want all 4", len(a.Members))
		}
		n := names(a)
		if i > 0 && n[0] == prev {
			t.Fatalf("selection %d repeats first member %s", i, prev)
		}
		prev = n[0]
		first[n[0]]++
	}
	for m, n := range first {
		if n != 100 {
			t.Errorf("%s first %d times of 400, want 100", m, n)
		}
	}
}

func TestRoundRobinConcurrentCopiesShareCounter(t *testing.T) {
	p := compileOne(t, "    policy: roundrobin\n    answers: 1\n"+members(3, nil), nil)
	q := withDown(p) // a WithStatus copy keeps rotating where p left off
	done := make(chan map[string]int)
	for _, pool := range []*Pool{p, q} {
		go func() {
			s := NewScratch(3)
			m := map[string]int{}
			for range 300 {
				m[names(pool.Select(client("192.0.2.1"), IPv4, s))[0]]++
			}
			done <- m
		}()
	}
	total := map[string]int{}
	for range 2 {
		for k, v := range <-done {
			total[k] += v
		}
	}
	for k, v := range total {
		if v != 200 {
			t.Errorf("%s first %d of 600 times, want 200 (one shared counter)", k, v)
		}
	}
}

func TestWeightedShare(t *testing.T) {
	weights := []int{1, 2, 3, 4, 10}
	p := compileOne(t, "    policy: weighted\n    answers: 2\n"+members(len(weights), func(i int) string {
		return fmt.Sprintf(", weight: %d", weights[i])
	}), nil)
	s := NewScratch(8)
	s.Seed(1)
	const n = 100_000
	first := make([]int, len(weights))
	for range n {
		a := p.Select(client("192.0.2.1"), IPv4, s)
		if len(a.Members) != 2 || a.Members[0] == a.Members[1] {
			t.Fatalf("answer %v: want 2 distinct members", a.Members)
		}
		first[a.Members[0]]++
	}
	total := 0
	for _, w := range weights {
		total += w
	}
	for i, w := range weights {
		want := float64(w) / float64(total)
		got := float64(first[i]) / n
		if math.Abs(got-want) > 0.02 {
			t.Errorf("member %d (weight %d) first %.4f of the time, want %.4f ± 0.02", i, w, got, want)
		}
	}
}

func TestWeightedSecondPlaceWithoutReplacement(t *testing.T) {
	// With weights 8 and 1 and 1, the heavy member is second whenever it
	// is not first: P(second = heavy) = 2 * (1/10 * 8/9) = 0.178.
	p := compileOne(t, "    policy: weighted\n"+members(3, func(i int) string {
		return fmt.Sprintf(", weight: %d", []int{8, 1, 1}[i])
	}), nil)
	s := NewScratch(3)
	s.Seed(7)
	const n = 100_000
	second := 0
	for range n {
		a := p.Select(client("192.0.2.1"), IPv4, s)
		if len(a.Members) != 3 {
			t.Fatalf("answer %v: want all 3 members", a.Members)
		}
		if a.Members[1] == 0 {
			second++
		}
	}
	if got := float64(second) / n; math.Abs(got-0.178) > 0.01 {
		t.Errorf("heavy member second %.4f of the time, want 0.178", got)
	}
}

func TestFirstN(t *testing.T) {
	for _, tc := range []struct {
		answers, members, want int
	}{{0, 5, 5}, {1, 5, 1}, {3, 5, 3}, {8, 5, 5}} {
		t.Run(fmt.Sprintf("answers %d of %d", tc.answers, tc.members), func(t *testing.T) {
			p := compileOne(t, fmt.Sprintf("    answers: %d\n", tc.answers)+members(tc.members, nil), nil)
			if got := len(p.Select(client("192.0.2.1"), IPv4, NewScratch(1)).Members); got != tc.want {
				t.Errorf("got %d members, want %d", got, tc.want)
			}
		})
	}
}

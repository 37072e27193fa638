package selector

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"
)

func TestPriority(t *testing.T) {
	const pool = `    policy: failover
    min_healthy: %s
    members:
      - {address: 192.0.2.1, priority: 1}
      - {address: 192.0.2.2, priority: 1}
      - {address: 192.0.2.3, priority: 1}
      - {address: 192.0.2.11, priority: 2}
      - {address: 192.0.2.12, priority: 2}
      - {address: 192.0.2.21, priority: 3}
`
	tests := []struct {
		name, min string
		down      []string
		want      []string
	}{
		{"all up: first group", "1", nil, []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}},
		{"one left in group 1 is enough for 1", "1", []string{"192.0.2.1", "192.0.2.2"}, []string{"192.0.2.3"}},
		{"group 1 empty: group 2", "1", []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}, []string{"192.0.2.11", "192.0.2.12"}},
		{"count 2: group 1 with one up fails over", "2", []string{"192.0.2.1", "192.0.2.2"}, []string{"192.0.2.11", "192.0.2.12"}},
		{"count 2: group 2 with one up goes on to group 3 (its whole group)", "2", []string{"192.0.2.1", "192.0.2.2", "192.0.2.11"}, []string{"192.0.2.21"}},
		{"percentage 60%: 2 of 3 is enough", "60%", []string{"192.0.2.1"}, []string{"192.0.2.2", "192.0.2.3"}},
		{"percentage 100%: 2 of 3 is not", "100%", []string{"192.0.2.1"}, []string{"192.0.2.11", "192.0.2.12"}},
		{"none has enough: first group with any up", "100%", []string{"192.0.2.1", "192.0.2.11", "192.0.2.21"}, []string{"192.0.2.2", "192.0.2.3"}},
	}
	s := NewScratch(8)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := withDown(compileOne(t, fmt.Sprintf(pool, tc.min), nil), tc.down...)
			got := names(p.Select(client("198.51.100.1"), IPv4, s))
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestPriorityFill: with fewer members up in the chosen group than
// answers, a failover pool answers from that group alone unless it says
// fill: next_tier, which fills from the next groups in priority order.
func TestPriorityFill(t *testing.T) {
	const pool = `    policy: failover
    answers: 3
    %s
    members:
      - {address: 192.0.2.1, priority: 1}
      - {address: 192.0.2.2, priority: 1}
      - {address: 192.0.2.11, priority: 2}
      - {address: 192.0.2.21, priority: 3}
      - {address: 192.0.2.22, priority: 3}
`
	tests := []struct {
		name, fill string
		down       []string
		want       []string
	}{
		{"default: the first group alone", "", nil, []string{"192.0.2.1", "192.0.2.2"}},
		{"first_tier: the first group alone", "fill: first_tier", nil, []string{"192.0.2.1", "192.0.2.2"}},
		{"next_tier: group 2 fills", "fill: next_tier", nil, []string{"192.0.2.1", "192.0.2.2", "192.0.2.11"}},
		{"next_tier: group 1 down, groups 2 and 3", "fill: next_tier", []string{"192.0.2.1", "192.0.2.2"}, []string{"192.0.2.11", "192.0.2.21", "192.0.2.22"}},
		{"next_tier: one of group 1, then 2, then 3", "fill: next_tier", []string{"192.0.2.1", "192.0.2.22"}, []string{"192.0.2.2", "192.0.2.11", "192.0.2.21"}},
		{"default: group 1 down, group 2 alone", "", []string{"192.0.2.1", "192.0.2.2"}, []string{"192.0.2.11"}},
	}
	s := NewScratch(8)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := withDown(compileOne(t, fmt.Sprintf(pool, tc.fill), nil), tc.down...)
			for range 20 {
				got := names(p.Select(client("198.51.100.1"), IPv4, s))
				// groups come in priority order; round robin rotates within one
				if len(got) != len(tc.want) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
				g := slices.Clone(got)
				w := slices.Clone(tc.want)
				slices.Sort(g)
				slices.Sort(w)
				if !slices.Equal(g, w) {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestAllDown(t *testing.T) {
	c := configWith(t, `  main:
    all_down: all
    members: [{address: 192.0.2.1}, {address: 192.0.2.2}, {address: "2001:db8::1"}]
  spare:
    all_down: none
    members: [{address: 198.51.100.1}]
`, "")
	for _, tc := range []struct {
		mode      string
		sparesUp  bool
		wantPool  string
		want      []string
		wantEmpty bool
	}{
		{"all", true, "main", []string{"192.0.2.1", "192.0.2.2"}, false},
		{"none", true, "main", nil, true},
		{"fallback:spare", true, "spare", []string{"198.51.100.1"}, false},
		{"fallback:spare", false, "spare", nil, true}, // the fallback's own all_down: none
	} {
		t.Run(fmt.Sprintf("%s spare up %v", tc.mode, tc.sparesUp), func(t *testing.T) {
			cc := *c
			cc.Pools = maps.Clone(c.Pools)
			mp := cc.Pools["main"]
			mp.AllDown = tc.mode
			cc.Pools["main"] = mp
			pools, err := Compile(&cc)
			if err != nil {
				t.Fatal(err)
			}
			main := withDown(pools[0], "192.0.2.1", "192.0.2.2")
			spare := pools[1]
			if !tc.sparesUp {
				spare = withDown(spare, "198.51.100.1")
			}
			linked, err := Link([]*Pool{main, spare})
			if err != nil {
				t.Fatal(err)
			}
			a := linked[0].Select(client("203.0.113.1"), IPv4, NewScratch(4))
			if !a.AllDown {
				t.Error("AllDown not set")
			}
			if a.Pool.Name != tc.wantPool {
				t.Errorf("answered by pool %s, want %s", a.Pool.Name, tc.wantPool)
			}
			got := names(a)
			slices.Sort(got)
			if tc.wantEmpty != (len(got) == 0) || !tc.wantEmpty && !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			// AAAA: the v6 member is up, so all_down does not apply.
			if a := linked[0].Select(client("203.0.113.1"), IPv6, NewScratch(4)); a.AllDown || len(a.Members) != 1 {
				t.Errorf("AAAA with its member up: %v all down %v", names(a), a.AllDown)
			}
		})
	}
}

func TestLinkFollowsNewStatus(t *testing.T) {
	c := configWith(t, `  a:
    all_down: fallback:b
    members: [{address: 192.0.2.1}]
  b:
    all_down: none
    members: [{address: 192.0.2.2}]
`, "")
	pools, err := Compile(c)
	if err != nil {
		t.Fatal(err)
	}
	if pools[0].FallbackPool() != pools[1] {
		t.Fatal("Compile did not link a's fallback to b")
	}
	// b goes down in a new snapshot; a is unchanged but must see it.
	next, err := Link([]*Pool{withDown(pools[0], "192.0.2.1"), withDown(pools[1], "192.0.2.2")})
	if err != nil {
		t.Fatal(err)
	}
	if a := next[0].Select(client("203.0.113.1"), IPv4, NewScratch(2)); len(a.Members) != 0 || a.Pool != next[1] {
		t.Errorf("fallback answered %v from %p, want nothing from the new b %p", names(a), a.Pool, next[1])
	}
	if pools[0].FallbackPool() != pools[1] {
		t.Error("Link changed a pool it was given")
	}
	if _, err := Link(next[:1]); err == nil {
		t.Error("Link accepted a fallback naming a pool not in the set")
	}
}

// Relink repoints, after some pools were replaced, the pools whose
// fallback chain reaches them, and leaves every other pool as it was.
func TestRelink(t *testing.T) {
	c := configWith(t, `  a:
    all_down: fallback:b
    members: [{address: 192.0.2.1}]
  b:
    all_down: fallback:c
    members: [{address: 192.0.2.2}]
  c:
    members: [{address: 192.0.2.3}]
  d:
    all_down: fallback:e
    members: [{address: 192.0.2.4}]
  e:
    members: [{address: 192.0.2.5}]
`, "")
	base, err := Compile(c)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := NewFallbacks(NewTable(base))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		changed []string
		copied  []string // the pools Relink copied or repointed
	}{
		{"the end of a chain: every pool falling back to it", []string{"c"}, []string{"a", "b", "c"}},
		{"the middle of a chain", []string{"b"}, []string{"a", "b"}},
		{"a pool nothing falls back to", []string{"a"}, []string{"a"}},
		{"another chain", []string{"e"}, []string{"d", "e"}},
		{"two chains at once", []string{"a", "e"}, []string{"a", "d", "e"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serving, err := Link(base)
			if err != nil {
				t.Fatal(err)
			}
			edit := NewTable(serving).Edit()
			var idx []int
			for _, name := range tc.changed {
				i := slices.IndexFunc(base, func(p *Pool) bool { return p.Name == name })
				edit.Set(i, withDown(base[i], base[i].Members[0].Name()))
				idx = append(idx, i)
			}
			fb.Relink(edit, idx)
			next := tablePools(edit.Table())
			var copied []string
			for i, p := range next {
				if p != serving[i] {
					copied = append(copied, p.Name)
				}
				if f := p.FallbackPool(); f != nil && f != next[slices.IndexFunc(base, func(q *Pool) bool { return q.Name == p.Fallback })] {
					t.Errorf("pool %s falls back to an old copy of %s", p.Name, p.Fallback)
				}
			}
			if !slices.Equal(copied, tc.copied) {
				t.Fatalf("pools copied %v, want %v", copied, tc.copied)
			}
			for i, p := range serving {
				if f := p.FallbackPool(); f != nil && f != serving[slices.IndexFunc(base, func(q *Pool) bool { return q.Name == p.Fallback })] {
					t.Errorf("Relink changed the serving pool %s (index %d)", p.Name, i)
				}
			}
		})
	}
	if _, err := NewFallbacks(NewTable(base[:1])); !errors.Is(err, ErrUnknownFallback) {
		t.Fatalf("a fallback naming a pool not in the set: %v", err)
	}
}

func TestHostMembersAnswerOneCNAME(t *testing.T) {
	tests := []struct {
		name    string
		members string
		down    []string
		want    []string // A
		want6   []string // AAAA: the host is the only member of that family
	}{
		{"host first: one CNAME", "[{address: www.example.net, priority: 1}, {address: 192.0.2.1, priority: 2}]", nil, []string{"www.example.net."}, []string{"www.example.net."}},
		// AAAA: the host is down and alone in its family: all_down all.
		{"host down: the address", "[{address: www.example.net, priority: 1}, {address: 192.0.2.1, priority: 2}]", []string{"www.example.net."}, []string{"192.0.2.1"}, []string{"www.example.net."}},
		{"address first: hosts left out", "[{address: 192.0.2.1, priority: 1}, {address: other.example.net, priority: 1}, {address: 192.0.2.2, priority: 1}]", nil, []string{"192.0.2.1", "192.0.2.2"}, []string{"other.example.net."}},
		{"two hosts: one CNAME", "[{address: a.example.net}, {address: b.example.net.}]", nil, []string{"a.example.net."}, []string{"a.example.net."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := withDown(compileOne(t, "    chain: [healthy, priority, first]\n    members: "+tc.members+"\n", nil), tc.down...)
			for _, fam := range []Family{IPv4, IPv6} {
				a := p.Select(client("203.0.113.1"), fam, NewScratch(3))
				want := tc.want
				if fam == IPv6 {
					want = tc.want6
				}
				if got := names(a); !slices.Equal(got, want) {
					t.Errorf("%v: got %v, want %v", fam, got, want)
				}
				cname := ""
				if want[0][len(want[0])-1] == '.' {
					cname = want[0]
				}
				if a.CNAME() != cname {
					t.Errorf("%v: CNAME %q, want %q", fam, a.CNAME(), cname)
				}
			}
		})
	}
}

func TestLoadLeastRelativeFirst(t *testing.T) {
	p := compileOne(t, `    policy: load
    members:
      - {address: 192.0.2.1, capacity: 1}
      - {address: 192.0.2.2, capacity: 4}
      - {address: 192.0.2.3, capacity: 2}
`, nil)
	q := p.WithStatus([]Status{{Up: true, Load: 0.5}, {Up: true, Load: 1}, {Up: true, Load: 1.5}})
	// load/capacity: 0.5, 0.25, 0.75
	s := NewScratch(3)
	for range 5 {
		if got, want := names(q.Select(client("192.0.2.9"), IPv4, s)), []string{"192.0.2.2", "192.0.2.1", "192.0.2.3"}; !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	// Equal loads take turns rather than all landing on one member.
	eq := p.WithStatus([]Status{{Up: true}, {Up: true}, {Up: true}})
	first := map[string]int{}
	for range 30 {
		first[names(eq.Select(client("192.0.2.9"), IPv4, s))[0]]++
	}
	if len(first) != 3 || first["192.0.2.1"] != 10 {
		t.Errorf("equal loads: first places %v, want 10 each", first)
	}
}

func TestStickySameSubnetSameMember(t *testing.T) {
	p := compileOne(t, "    policy: sticky\n    answers: 1\n"+members(8, nil), nil)
	s := NewScratch(8)
	tests := []struct {
		a, b  string
		same  bool
		scope int
	}{
		{"198.51.100.1", "198.51.100.254", true, 24},
		{"198.51.100.0/24", "198.51.100.77", true, 24},
		{"2001:db8:1:ff00::1", "2001:db8:1:ff3f:ffff::1", true, 56},
		{"198.51.100.0/20", "198.51.111.0/20", true, 20}, // source /20 is all we know: scope 20
	}
	for _, tc := range tests {
		t.Run(tc.a+" "+tc.b, func(t *testing.T) {
			a := p.Select(client(tc.a), IPv4, s)
			m, scope := a.Members[0], a.Scope
			b := p.Select(client(tc.b), IPv4, s)
			if (m == b.Members[0]) != tc.same {
				t.Errorf("members %d and %d, want same %v", m, b.Members[0], tc.same)
			}
			if scope != tc.scope {
				t.Errorf("scope %d, want %d", scope, tc.scope)
			}
		})
	}
	// Different subnets spread over the members.
	seen := map[int]int{}
	for i := range 800 {
		seen[p.Select(client(fmt.Sprintf("10.%d.%d.1", i/256, i%256)), IPv4, s).Members[0]]++
	}
	for m := range 8 {
		if seen[m] < 50 || seen[m] > 150 {
			t.Errorf("member %d got %d of 800 subnets, want about 100", m, seen[m])
		}
	}
}

func TestStickyOnlyTheDownMembersClientsMove(t *testing.T) {
	p := compileOne(t, "    policy: sticky\n    answers: 1\n"+members(6, nil), nil)
	s := NewScratch(6)
	before := map[string]int{}
	for i := range 3000 {
		c := fmt.Sprintf("100.%d.%d.9", i/250, i%250)
		before[c] = p.Select(client(c), IPv4, s).Members[0]
	}
	down := withDown(p, "10.0.0.3") // member 2
	moved := 0
	for c, m := range before {
		got := down.Select(client(c), IPv4, s).Members[0]
		switch {
		case m == 2 && got == 2:
			t.Fatalf("%s still answered by the down member", c)
		case m == 2:
			moved++
		case got != m:
			t.Fatalf("%s moved from member %d to %d though %d is up", c, m, got, m)
		}
	}
	if moved < 300 {
		t.Errorf("only %d clients were on the down member", moved)
	}
	// Back up: everyone returns to where they were.
	for c, m := range before {
		if got := p.Select(client(c), IPv4, s).Members[0]; got != m {
			t.Fatalf("%s answered by %d after recovery, want %d", c, got, m)
		}
	}
}

func TestStickyKeyIgnoresMemberOrder(t *testing.T) {
	a := compileOne(t, "    policy: sticky\n    answers: 1\n    members: [{address: 192.0.2.1}, {address: 192.0.2.2}, {address: 192.0.2.3}]\n", nil)
	b := compileOne(t, "    policy: sticky\n    answers: 1\n    members: [{address: 192.0.2.3}, {address: 192.0.2.1}, {address: 192.0.2.2}]\n", nil)
	s := NewScratch(3)
	for i := range 200 {
		c := client(fmt.Sprintf("203.0.%d.1", i))
		if x, y := names(a.Select(c, IPv4, s))[0], names(b.Select(c, IPv4, s))[0]; x != y {
			t.Fatalf("client %v: %s with one member order, %s with another", c.Addr, x, y)
		}
	}
}

func TestScopeCappedAtSource(t *testing.T) {
	p := compileOne(t, "    policy: sticky\n    sticky_prefix: {ipv4: 24, ipv6: 48}\n"+members(3, nil), nil)
	for _, tc := range []struct {
		c     string
		scope int
	}{{"192.0.2.0/24", 24}, {"192.0.2.0/16", 16}, {"0.0.0.0/0", 0}, {"192.0.2.1", 24}, {"2001:db8::/64", 48}, {"2001:db8::/32", 32}} {
		if got := p.Select(client(tc.c), IPv4, NewScratch(3)).Scope; got != tc.scope {
			t.Errorf("client %s: scope %d, want %d", tc.c, got, tc.scope)
		}
	}
}

func TestZeroAllocations(t *testing.T) {
	loc := newFakeLocator(map[netip.Prefix]fakeLoc{netip.MustParsePrefix("81.2.0.0/16"): {"EU", "GB", 51.5, -0.1}})
	for _, preset := range []string{"roundrobin", "weighted", "geo", "failover", "load", "sticky"} {
		t.Run(preset, func(t *testing.T) {
			p := benchPool(t, preset, loc)
			s := NewScratch(len(p.Members))
			c := client("81.2.69.0/24")
			if n := testing.AllocsPerRun(200, func() { p.Select(c, IPv4, s) }); n != 0 {
				t.Errorf("%s: %v allocations per decision, want 0", preset, n)
			}
		})
	}
}

// TestAllDownAllKeepsDrainOut: all_down all answers as if every member were
// up, but a member an operator drained stays out, unless every member is
// drained (all never answers empty).
func TestAllDownAllKeepsDrainOut(t *testing.T) {
	p := compileOne(t, `    all_down: all
    members: [{address: 192.0.2.1}, {address: 192.0.2.2}, {address: 192.0.2.3}]
`, nil)
	status := func(drained ...string) *Pool {
		st := make([]Status, len(p.Members))
		for i, m := range p.Members {
			st[i].Drain = slices.Contains(drained, m.Name()) // and every member down
		}
		return p.WithStatus(st)
	}
	s := NewScratch(4)
	for _, tc := range []struct {
		name    string
		drained []string
		want    []string
	}{
		{"none drained: all answer", nil, []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}},
		{"one drained stays out", []string{"192.0.2.2"}, []string{"192.0.2.1", "192.0.2.3"}},
		{"all drained: all answer", []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}, []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := status(tc.drained...).Select(client("198.51.100.7"), IPv4, s)
			got := names(a)
			slices.Sort(got)
			if !a.AllDown || !slices.Equal(got, tc.want) {
				t.Errorf("got %v (all down %v), want %v", got, a.AllDown, tc.want)
			}
		})
	}
}

// TestScratchAcrossPools: one Scratch, as a DNS worker holds, decides for
// a small pool, a large one and the small one again, and each decision is
// the one a fresh Scratch with the same seed makes. A Scratch sized for
// the last pool only (Scratch.begin skips its size checks for the pool it
// was sized for) must still grow for a larger one: the sticky stage writes
// a key per member.
func TestScratchAcrossPools(t *testing.T) {
	small := compileOne(t, "    policy: sticky\n    answers: 1\n"+members(2, nil), nil)
	large := compileOne(t, "    policy: sticky\n    answers: 3\n"+members(200, nil), nil)
	shared := NewScratch(0)
	for i, p := range []*Pool{small, large, small, large, large} {
		c := client(fmt.Sprintf("198.51.100.%d", i))
		shared.Seed(uint64(i))
		fresh := NewScratch(0)
		fresh.Seed(uint64(i))
		got, want := names(p.Select(c, IPv4, shared)), names(p.Select(c, IPv4, fresh))
		if !slices.Equal(got, want) || len(got) == 0 {
			t.Errorf("decision %d (%d members): %v with the shared scratch, %v with a fresh one", i, len(p.Members), got, want)
		}
	}
}

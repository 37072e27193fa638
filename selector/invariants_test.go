package selector

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// chains are valid chains of every shape config accepts: healthy first,
// first last, each stage once, at most one ordering stage.
var chains = func() [][]string {
	var out [][]string
	for _, g := range [][]string{nil, {"geo"}} {
		for _, pr := range [][]string{nil, {"priority"}} {
			for _, o := range [][]string{nil, {"weighted"}, {"roundrobin"}, {"load"}, {"sticky"}} {
				for _, f := range [][]string{nil, {"first"}} {
					c := []string{"healthy"}
					c = append(c, g...)
					c = append(c, pr...)
					c = append(c, o...)
					c = append(c, f...)
					out = append(out, c)
					if len(g) > 0 && len(pr) > 0 { // priority before geo too
						c2 := append([]string{"healthy", "priority", "geo"}, o...)
						out = append(out, append(c2, f...))
					}
				}
			}
		}
	}
	return out
}()

// randomPool compiles a pool with a random chain and members.
func randomPool(t testing.TB, r *rand.Rand) *Pool {
	chain := chains[r.IntN(len(chains))]
	sites := []string{"eu-west", "us-east", "ap-east"}
	hasFirst := slices.Contains(chain, "first")
	var b strings.Builder
	fmt.Fprintf(&b, "    chain: [%s]\n", strings.Join(chain, ", "))
	if hasFirst {
		fmt.Fprintf(&b, "    answers: %d\n", r.IntN(4))
	}
	if slices.Contains(chain, "geo") && r.IntN(2) == 0 {
		b.WriteString("    map: regions\n")
	}
	if slices.Contains(chain, "priority") {
		fmt.Fprintf(&b, "    min_healthy: %s\n", []string{"1", "2", "50%", "100%"}[r.IntN(4)])
	}
	fmt.Fprintf(&b, "    all_down: %s\n", []string{"all", "none", "fallback:spare"}[r.IntN(3)])
	b.WriteString("    members:\n")
	n := 1 + r.IntN(12)
	for i := range n {
		addr := fmt.Sprintf("10.0.0.%d", i+1)
		switch r.IntN(6) {
		case 0:
			addr = fmt.Sprintf(`"2001:db8::%x"`, i+1)
		case 1:
			addr = fmt.Sprintf("h%d.example.net", i)
		}
		fmt.Fprintf(&b, "      - {address: %s, site: %s, weight: %d, priority: %d, capacity: %d}\n",
			addr, sites[r.IntN(3)], 1+r.IntN(5), 1+r.IntN(3), 1+r.IntN(3))
	}
	c := configWith(t, "  p:\n"+b.String()+"  spare:\n    all_down: none\n    members: [{address: 192.0.2.1}, {address: \"2001:db8:ffff::1\"}]\n", regions)
	pools, err := CompileLocated(c, testLocator)
	if err != nil {
		t.Fatal(err)
	}
	st := make([]Status, len(pools[0].Members))
	for i := range st {
		st[i] = Status{Up: r.IntN(3) != 0, Drain: r.IntN(8) == 0, Load: r.Float64()}
	}
	linked, err := Link([]*Pool{pools[0].WithStatus(st), pools[1]})
	if err != nil {
		t.Fatal(err)
	}
	return linked[0]
}

var invariantClients = []string{"81.2.69.142", "89.160.20.0/24", "216.160.83.56", "127.0.9.1", "198.51.100.0/24", "2001:218::/48", "2001:db8::1", "0.0.0.0/0", "10.0.0.0/8"}

// checkAnswer checks what every answer must satisfy, whatever the chain.
func checkAnswer(t *testing.T, p *Pool, c *Client, fam Family, a Answer) {
	t.Helper()
	if a.Pool == nil {
		t.Fatal("answer without a pool")
	}
	if a.Scope < 0 || a.Scope > c.SourcePrefix {
		t.Fatalf("scope %d outside 0..%d", a.Scope, c.SourcePrefix)
	}
	seen := map[int]bool{}
	for _, i := range a.Members {
		if i < 0 || i >= len(a.Pool.Members) || seen[i] {
			t.Fatalf("members %v: out of range or repeated", a.Members)
		}
		seen[i] = true
		if !a.Pool.inFamily(i, fam) {
			t.Fatalf("member %s is not of family %v", a.Pool.Members[i].Name(), fam)
		}
		if st := a.Pool.Status(i); !a.AllDown && (!st.Up || st.Drain) {
			t.Fatalf("member %s answered though down or drained, and not all down", a.Pool.Members[i].Name())
		}
	}
	if a.CNAME() == "" {
		for _, i := range a.Members {
			if a.Pool.Members[i].Host != "" {
				t.Fatalf("host %s mixed into an address answer", a.Pool.Members[i].Host)
			}
		}
	}
	if a.Pool == p && p.Answers > 0 && slices.Contains(p.Stages(), "first") && len(a.Members) > p.Answers {
		t.Fatalf("%d members, answers %d", len(a.Members), p.Answers)
	}
	up := 0
	for i := range p.Members {
		if p.inFamily(i, fam) && p.Status(i).Up && !p.Status(i).Drain {
			up++
		}
	}
	if up > 0 && (a.AllDown || len(a.Members) == 0) {
		t.Fatalf("%d members up, but answer %v all down %v", up, a.Members, a.AllDown)
	}
}

func TestChainInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	s := NewScratch(4)
	for n := range 300 {
		p := randomPool(t, r)
		for _, cs := range invariantClients {
			for _, fam := range []Family{IPv4, IPv6} {
				c := client(cs)
				a := p.Select(c, fam, s)
				checkAnswer(t, p, c, fam, a)
				// Explain runs the same chain: same members for every
				// deterministic chain, same scope always.
				e, steps := p.Explain(c, fam)
				if e.Scope != a.Scope || len(steps) == 0 {
					t.Fatalf("pool %d: Explain scope %d, Select %d", n, e.Scope, a.Scope)
				}
				if st := p.Stages(); !slices.ContainsFunc(st, func(s string) bool { return s == "weighted" || s == "roundrobin" || s == "load" }) &&
					!slices.Equal(names(e), names(a)) {
					t.Fatalf("pool %d chain %v: Explain %v, Select %v", n, st, names(e), names(a))
				}
			}
		}
	}
}

func FuzzSelect(f *testing.F) {
	f.Add(uint64(1), uint64(2), []byte{10, 1, 2, 3}, uint8(24), true)
	f.Add(uint64(7), uint64(9), []byte{0x20, 1, 2, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint8(48), false)
	f.Fuzz(func(t *testing.T, seed1, seed2 uint64, addr []byte, src uint8, v4 bool) {
		r := rand.New(rand.NewPCG(seed1, seed2))
		p := randomPool(t, r)
		a, ok := netip.AddrFromSlice(addr)
		if !ok {
			return
		}
		c := &Client{Addr: a, SourcePrefix: int(src) % (a.BitLen() + 1)}
		fam := IPv6
		if v4 {
			fam = IPv4
		}
		s := NewScratch(0)
		s.Seed(seed1)
		checkAnswer(t, p, c, fam, p.Select(c, fam, s))
	})
}

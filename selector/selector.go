package selector

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
)

// ErrUnknownFallback is returned when an all_down fallback names no pool of
// the set.
var ErrUnknownFallback = errors.New("fallback names no other pool")

// Family is the address family an answer is for.
type Family uint8

const (
	IPv4 Family = 4 // A queries
	IPv6 Family = 6 // AAAA queries
)

// Client is what a decision may know of who asks.
type Client struct {
	// Addr is the EDNS Client Subnet address when the query carries one,
	// else the query's source address.
	Addr netip.Addr
	// SourcePrefix is the ECS source prefix length, or Addr's bit length
	// when there was no ECS option.
	SourcePrefix int
}

// Member is one backend of a compiled pool. Immutable.
type Member struct {
	// Addr is the member's address; invalid for a host-name member.
	Addr netip.Addr
	// Host is the fully qualified name of a host-name member, answered as a
	// CNAME; empty for an address member.
	Host     string
	Weight   uint32
	Priority int
	Site     string
	Capacity float64
}

// Name returns the member's address or host name, for messages.
func (m Member) Name() string {
	if m.Host != "" {
		return m.Host
	}
	return m.Addr.String()
}

// Status is a member's state as the snapshot sees it.
type Status struct {
	Up    bool    // probes (or a forced admin state) say up
	Drain bool    // admin drain: no new answers
	Load  float64 // latest smoothed load report, 0 when none
	// Shed is the share of the member's clients an operator sends
	// elsewhere (0 to 1; shed:100 is Drain).
	Shed float64
	// RTT are the member's smoothed probe RTTs by vantage node.
	RTT []RTT
}

// Answer is one decision's outcome.
type Answer struct {
	// Pool is the pool that answered: differs from the asked pool when an
	// all_down fallback was taken.
	Pool *Pool
	// Members are the chosen members in answer order, as indexes into
	// Pool.Members. The slice lives in the Scratch and is valid until its
	// next use. Either every member is an address member, or there is one
	// member and it is a host-name member (answer a CNAME to it). Empty
	// means NODATA.
	Members []int
	// Scope is the ECS scope prefix length the decision depended on: 0
	// when no stage looked at the client, never more than the client's
	// source prefix.
	Scope int
	// TTL of the answer in seconds.
	TTL uint32
	// AllDown is true when no member passed the healthy stage and the
	// pool's all_down behaviour decided the answer.
	AllDown bool
}

// CNAME returns the host name to answer a CNAME to, or "" when the
// answer is addresses.
func (a Answer) CNAME() string {
	if len(a.Members) == 1 && a.Pool != nil {
		return a.Pool.Members[a.Members[0]].Host
	}
	return ""
}

// AllDownMode is what a pool answers when none of its members of the asked
// family is up.
type AllDownMode uint8

const (
	// AllDownAll answers as if every member were up (the default: a
	// guess beats an empty answer when the probes may be what is wrong).
	AllDownAll AllDownMode = iota
	// AllDownNone answers nothing (NODATA).
	AllDownNone
	// AllDownFallback answers from another pool.
	AllDownFallback
)

// Pool is a compiled pool: members, chain and member states. Immutable
// except for its round-robin counter, which survives WithStatus copies.
type Pool struct {
	Name    string
	Members []Member
	Answers int    // 0: all
	TTL     uint32 // 0: the POOL record's TTL
	// AllDown is the all_down behaviour; Fallback names the pool of
	// AllDownFallback.
	AllDown  AllDownMode
	Fallback string
	// FillNext is fill: next_tier: an answer with fewer first-tier
	// members than Answers fills up from the next tiers; by default it
	// answers from the first tier alone.
	FillNext bool

	chain []stage
	// weight is each member's Weight, apart from Members so that the
	// weighted stage reads a few lines; hasHost says a member is a host
	// name (shape then looks at each).
	weight  []uint32
	hasHost bool
	// famMembers are the members of each family (0: IPv4, 1: IPv6),
	// host-name members in both.
	famMembers [2][]int
	upMembers  [2][]int // famMembers up and not drained
	need       []int    // per chain position: positions an ordering stage must fix (0: all)
	status     []Status
	rr         *atomic.Uint64
	fallback   *Pool

	// priority stage
	minCount, minPercent int
	group                []int    // member -> index into groups
	groups               []int    // priority of each group, ascending
	groupSize            [2][]int // per family (0: IPv4, 1: IPv6): members in each group

	// sticky stage
	stickyV4, stickyV6 int
	memberKey          []uint64 // stable hash of each member's address or host

	geo   *geoPlan
	geoUp [2][]geoPre // per family, per site-list class (precomputeGeo); nil: per query

	// latency stage
	latPlan *latPlan
	lat     *latState
	// spill stage: implicit (not listed by Stages) unless the chain names it
	spill         *spillState
	spillAt       float64
	siteCap       map[string]float64 // declared site capacities
	memberCap     []bool             // member declared a capacity
	implicitSpill int                // chain position of an implicit spill, -1 none
}

// WithStatus returns a copy of p whose members have the given states
// (indexed like Members). The copy's all_down fallback still points at the
// pool it pointed at; Link a new set of pools to repoint fallbacks.
func (p *Pool) WithStatus(st []Status) *Pool {
	q := *p
	q.status = append([]Status(nil), st...)
	q.precomputeUp()
	q.precomputeGeo()
	q.precomputeLatency()
	q.precomputeSpill()
	return &q
}

// precomputeUp lists each family's members that are up and not drained:
// states change far less often than queries come, so the healthy stage
// at the head of a chain is a copy of this list.
func (p *Pool) precomputeUp() {
	for f := range p.famMembers {
		p.upMembers[f] = nil
		for _, i := range p.famMembers[f] {
			if p.status[i].Up && !p.status[i].Drain {
				p.upMembers[f] = append(p.upMembers[f], i)
			}
		}
	}
}

// Status returns member i's state.
func (p *Pool) Status(i int) Status { return p.status[i] }

// FallbackPool returns the pool an all_down fallback answers from, or nil.
func (p *Pool) FallbackPool() *Pool { return p.fallback }

// Stages returns the names of the stages of p's chain, in order (the
// implicit family stage that precedes them is not listed).
func (p *Pool) Stages() []string {
	out := make([]string, 0, len(p.chain))
	for i, st := range p.chain {
		if i != p.implicitSpill {
			out = append(out, st.String())
		}
	}
	return out
}

// Link points every pool's all_down fallback at the pool of that name in
// pools, and returns the set with every pool that has a fallback copied
// (the others are returned as they are). Call it after replacing pools with
// WithStatus so a fallback answers from current member states. A
// fallback naming no pool in the set is an error. To replace a few pools
// of a large set, Fallbacks.Relink repoints only the pools that need it.
func Link(pools []*Pool) ([]*Pool, error) {
	fb, err := NewFallbacks(NewTable(pools))
	if err != nil {
		return nil, err
	}
	out := slices.Clone(pools)
	for i, to := range fb.to {
		if to >= 0 {
			q := *out[i] // only copies are repointed: the pool may be serving
			out[i] = &q
		}
	}
	for i, to := range fb.to {
		if to >= 0 {
			out[i].fallback = out[to]
		}
	}
	return out, nil
}

// Fallbacks is the all_down fallback graph of a set of pools (one
// configuration's, by index): which pool each falls back to and which fall
// back to it. It outlives the pools' states: every WithStatus copy of the
// set has the same graph.
type Fallbacks struct {
	to   []int32   // by pool: the pool it falls back to, -1 for none
	from [][]int32 // by pool: the pools that fall back to it
}

// NewFallbacks computes the fallback graph of pools; a fallback naming no
// other pool of the set is an error.
func NewFallbacks(pools Table) (*Fallbacks, error) {
	byName := make(map[string]int32, pools.Len())
	for i, p := range pools.All() {
		byName[p.Name] = int32(i)
	}
	f := &Fallbacks{to: make([]int32, pools.Len()), from: make([][]int32, pools.Len())}
	for i, p := range pools.All() {
		f.to[i] = -1
		if p.AllDown != AllDownFallback {
			continue
		}
		to, ok := byName[p.Fallback]
		if !ok || to == int32(i) {
			return nil, fmt.Errorf("pool %q: all_down fallback %q: %w", p.Name, p.Fallback, ErrUnknownFallback)
		}
		f.to[i] = to
		f.from[to] = append(f.from[to], int32(i))
	}
	return f, nil
}

// Relink repoints fallbacks after the pools at the indexes changed were
// replaced in pools (an edit of the set, not served yet): each changed
// pool that has a fallback, and every pool whose fallback chain reaches a
// changed one, points at its fallback as pools now holds it. The changed pools must be the caller's
// own copies (WithStatus gives one) and are repointed in place; the others
// are copied first, since they may be serving. Pools no chain from a
// changed one reaches are left alone, so the cost follows the changed
// pools and those that fall back to them, not the set.
func (f *Fallbacks) Relink(pools *TableEdit, changed []int) {
	own := make(map[int32]bool, len(changed))
	for _, i := range changed {
		own[int32(i)] = true
	}
	// Every pool whose chain reaches a changed one, by the reverse edges.
	seen := make(map[int32]bool, len(changed))
	queue := make([]int32, 0, len(changed))
	for _, i := range changed {
		if !seen[int32(i)] {
			seen[int32(i)] = true
			queue = append(queue, int32(i))
		}
	}
	for k := 0; k < len(queue); k++ {
		for _, j := range f.from[queue[k]] {
			if !seen[j] {
				seen[j] = true
				queue = append(queue, j)
			}
		}
	}
	for _, i := range queue {
		if f.to[i] >= 0 && !own[i] {
			q := *pools.At(int(i))
			pools.Set(int(i), &q)
		}
	}
	for _, i := range queue {
		if f.to[i] >= 0 {
			pools.At(int(i)).fallback = pools.At(int(f.to[i]))
		}
	}
}

// Select decides which members answer client c for family fam, running
// the pool's chain in s. It does no I/O, reads no clock and, once s has
// grown to the pool's size, allocates nothing.
func (p *Pool) Select(c *Client, fam Family, s *Scratch) Answer {
	if c == nil { // nothing known of the client: stages that ask see 0.0.0.0/0
		c = &Client{}
	}
	return p.selectDepth(c, fam, s, 0)
}

// maxFallbackDepth bounds a chain of all_down fallbacks; configuration
// validation rejects loops, this guards a hand-built set.
const maxFallbackDepth = 8

func (p *Pool) selectDepth(c *Client, fam Family, s *Scratch, depth int) Answer {
	s.begin(p)
	if s.ex != nil {
		s.ex.pool(p)
	}
	if p.run(c, fam, s, false) {
		return p.answer(c, s)
	}
	return p.allDown(c, fam, s, depth)
}

// allDown answers when nothing of the family passed the healthy stage,
// as p.AllDown says. Apart from selectDepth, so that the query path's
// frame does not carry this one's temporaries (its stack lines are cold
// at low rates like its code).
//
//go:noinline
func (p *Pool) allDown(c *Client, fam Family, s *Scratch, depth int) Answer {
	switch {
	case p.AllDown == AllDownAll:
		if s.ex != nil {
			s.ex.event("all members of the family are down: all_down all answers as if every member were up")
			s.ex.asIfUp = true
		}
		s.reset(p)
		p.run(c, fam, s, true)
		a := p.answer(c, s)
		a.AllDown = true
		return a
	case p.AllDown == AllDownFallback && p.fallback != nil && depth < maxFallbackDepth:
		if s.ex != nil {
			s.ex.event("all members of the family are down: all_down falls back to pool " + p.fallback.Name)
		}
		scope := s.scope
		a := p.fallback.selectDepth(c, fam, s, depth+1)
		a.Scope = capScope(max(a.Scope, scope), c)
		a.AllDown = true
		return a
	default:
		if s.ex != nil {
			s.ex.event("all members of the family are down: all_down none answers nothing (NODATA)")
		}
		s.idx = s.idx[:0]
		a := p.answer(c, s)
		a.AllDown = true
		return a
	}
}

func (p *Pool) answer(c *Client, s *Scratch) Answer {
	return Answer{Pool: p, Members: s.idx, Scope: capScope(s.scope, c), TTL: p.TTL}
}

func capScope(scope int, c *Client) int {
	if scope > c.SourcePrefix {
		scope = c.SourcePrefix
	}
	if scope < 0 {
		scope = 0
	}
	return scope
}

func dnsFQDN(s string) string {
	if len(s) > 0 && s[len(s)-1] == '.' {
		return s
	}
	return s + "."
}

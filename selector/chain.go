package selector

import (
	"math"
	"math/bits"
	"math/rand/v2"

	"github.com/ternlb/tern/internal/mix"
)

// stage is one step of a pool's chain.
type stage uint8

const (
	stFamily     stage = iota // implicit first stage: members of the asked family
	stHealthy                 // drop members down or drained
	stGeo                     // keep and order sites by where the client is
	stPriority                // the first priority group with enough members up
	stWeighted                // weighted random order, without replacement
	stRoundRobin              // rotate by a shared counter
	stLoad                    // least load relative to capacity first
	stSticky                  // rendezvous hashing of the client subnet
	stFirst                   // the first `answers` members
	stLatency                 // fastest first by the RTTs of the vantage nearest the client
	stSpill                   // capacity spill-over and operator shedding by client subnet
)

var stageNames = [...]string{
	stFamily: "family", stHealthy: "healthy", stGeo: "geo", stPriority: "priority",
	stWeighted: "weighted", stRoundRobin: "roundrobin", stLoad: "load", stSticky: "sticky",
	stFirst: "first", stLatency: "latency", stSpill: "spill",
}

func (st stage) String() string { return stageNames[st] }

func parseStage(name string) (stage, bool) {
	for i, n := range stageNames {
		if n == name && stage(i) != stFamily {
			return stage(i), true
		}
	}
	return 0, false
}

// orders reports whether st orders members rather than narrowing them.
func (st stage) orders() bool {
	return st == stWeighted || st == stRoundRobin || st == stLoad || st == stSticky
}

// Scratch holds the buffers one decision works in. One per worker; not safe
// for concurrent use. Its random source is its own, so weighted choice
// takes no shared lock.
type Scratch struct {
	// The fields every decision reads come first, in the struct's first
	// cache lines: at low rates each line is a miss.
	//
	// sized is the pool s was last sized for: a pool's sizes never
	// change (a status change makes a new Pool), so the next decision on
	// it checks nothing else.
	sized *Pool
	rng   uint64
	// scope is the widest client prefix length a stage has depended on.
	scope int
	ex    *explainer
	// idx is the candidate list: member indexes in current order. It is
	// cut into tiers (ends in tier): an ordering stage orders within each
	// tier, and tiers come in preference order (geo makes them).
	idx  []int
	tier []int
	// tier2 is where a stage that recuts tiers writes the new ends.
	tier2 []int
	keep  []bool   // by position in idx: survives the current stage
	key   []uint64 // by member index: sort key of the current stage
	cnt   []int    // by priority group: members still in the list
	tmp   []int    // by position: the geo stage's counting sort
	rcnt  []int    // by rank: the geo stage's counting sort
	// by distinct location: the nearest stage's ranking
	lord, lrank []int
	ldist       []float64
}

// NewScratch returns a Scratch for pools of up to n members (it grows when
// a pool is larger), seeded from the runtime's random source.
func NewScratch(n int) *Scratch {
	s := &Scratch{rng: rand.Uint64()}
	s.grow(n, 0)
	return s
}

// Seed resets the Scratch's random source, for reproducible decisions.
func (s *Scratch) Seed(seed uint64) { s.rng = seed }

func (s *Scratch) grow(n, groups int) {
	if cap(s.idx) < n {
		s.idx = make([]int, 0, n)
		s.tier = make([]int, 0, n+1)
		s.tier2 = make([]int, 0, n+1)
		s.keep = make([]bool, n)
		s.key = make([]uint64, n)
		s.tmp = make([]int, n)
	}
	if cap(s.cnt) < groups {
		s.cnt = make([]int, groups)
	}
}

func (s *Scratch) growGeo(g *geoPlan) {
	if len(s.rcnt) < g.maxRank+1 {
		s.rcnt = make([]int, g.maxRank+1)
	}
	if n := len(g.locs); len(s.lord) < n {
		s.lord, s.lrank, s.ldist = make([]int, n), make([]int, n), make([]float64, n)
	}
}

// begin readies s for a decision on p.
func (s *Scratch) begin(p *Pool) {
	if s.sized != p {
		s.grow(len(p.Members), len(p.groups))
		if p.geo != nil {
			s.growGeo(p.geo)
		}
		s.sized = p
	}
	s.scope = 0
}

// reset readies s to run p's chain again (all_down all); explain keeps
// the steps of the first run.
func (s *Scratch) reset(p *Pool) {
	s.scope = 0
}

// next returns the next value of s's wyrand generator.
func (s *Scratch) next() uint64 {
	s.rng += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(s.rng, s.rng^0xe7037ed1a0b428db)
	return hi ^ lo
}

// below returns a uniform value in [0, n) (Lemire's multiply-shift; the
// bias is below 2^-40 for any weight sum a pool can have).
func (s *Scratch) below(n uint64) uint64 {
	hi, _ := bits.Mul64(s.next(), n)
	return hi
}

// compact drops the positions whose keep flag is false, keeping tiers.
func (s *Scratch) compact() {
	w, start, nt := 0, 0, 0
	for t := 0; t < len(s.tier); t++ {
		end := s.tier[t]
		from := w
		for j := start; j < end; j++ {
			if s.keep[j] {
				s.idx[w] = s.idx[j]
				w++
			}
		}
		start = end
		if w > from {
			s.tier[nt] = w
			nt++
		}
	}
	s.idx = s.idx[:w]
	s.tier = s.tier[:nt]
}

// run executes p's chain for fam into s. It reports false when members of
// fam exist but the healthy stage dropped every one (all down); asIfUp
// skips the healthy stage.
func (p *Pool) run(c *Client, fam Family, s *Scratch, asIfUp bool) bool {
	fi := famIndex(fam)
	chain := p.chain
	if len(p.famMembers[fi]) == 0 {
		s.idx = s.idx[:0]
		s.tier = append(s.tier[:0], 0)
		if s.ex != nil {
			s.ex.family(p, fam, s)
		}
		return true
	}
	if !asIfUp && s.ex == nil && len(chain) > 0 && chain[0] == stHealthy {
		// family and healthy at once, from the list WithStatus made,
		// and geo too, from the lists precomputeGeo made, when it
		// decides: then the up list is never copied.
		up, pre := p.upMembers[fi], p.geoUp[fi]
		if len(up) > 0 && pre != nil && p.geoFrom(c, s, pre) {
			return p.runFrom(c, fam, s, asIfUp, 2)
		}
		s.idx = append(s.idx[:0], up...)
		s.tier = append(s.tier[:0], len(s.idx))
		if len(s.idx) == 0 {
			return false
		}
		if pre != nil {
			return p.runFrom(c, fam, s, asIfUp, 2) // geo kept them all
		}
		return p.runFrom(c, fam, s, asIfUp, 1)
	}
	s.idx = append(s.idx[:0], p.famMembers[fi]...)
	s.tier = append(s.tier[:0], len(s.idx))
	if s.ex != nil {
		s.ex.family(p, fam, s)
	}
	return p.runFrom(c, fam, s, asIfUp, 0)
}

// anyUndrained reports whether a member of idx is not drained.
func (p *Pool) anyUndrained(idx []int) bool {
	for _, i := range idx {
		if !p.status[i].Drain {
			return true
		}
	}
	return false
}

// runFrom runs p's chain from stage index from on.
func (p *Pool) runFrom(c *Client, fam Family, s *Scratch, asIfUp bool, from int) bool {
	var ctr uint64
	for k := from; k < len(p.chain); k++ {
		st := p.chain[k]
		if s.ex != nil {
			s.ex.begin(s)
		}
		switch st {
		case stHealthy:
			if asIfUp {
				// all_down all answers as if every member were up, but an
				// operator's drain still holds, unless everything is
				// drained: all never answers empty.
				if p.anyUndrained(s.idx) {
					for j, i := range s.idx {
						s.keep[j] = !p.status[i].Drain
					}
					s.compact()
				}
				break
			}
			for j, i := range s.idx {
				s.keep[j] = p.status[i].Up && !p.status[i].Drain
			}
			s.compact()
			if len(s.idx) == 0 {
				if s.ex != nil {
					s.ex.end(p, st, s, "")
				}
				return false
			}
		case stGeo:
			p.geoStage(c, s)
		case stPriority:
			p.priority(fam, s)
		case stLatency:
			p.latencyStage(c, s)
		case stSpill:
			p.spillStage(c, s)
		case stWeighted, stRoundRobin, stLoad, stSticky:
			switch st {
			case stRoundRobin, stLoad:
				ctr = p.rr.Add(1)
			case stSticky:
				ctr = p.stickyKeys(c, s)
			}
			p.order(st, s, p.need[k], ctr)
		case stFirst:
			p.shape(s, p.Answers)
		}
		if s.ex != nil && !(k == p.implicitSpill && !p.spill.any) {
			s.ex.end(p, st, s, p.note(st, c, fam, s, ctr))
		}
	}
	p.shape(s, 0)
	return true
}

func (p *Pool) inFamily(i int, fam Family) bool {
	m := &p.Members[i]
	return m.Host != "" || m.Addr.Is4() == (fam == IPv4)
}

func famIndex(fam Family) int {
	if fam == IPv4 {
		return 0
	}
	return 1
}

// priority keeps the first priority group (lowest priority value) with at
// least min_healthy members still in the list; when none has enough, the
// first group with any.
func (p *Pool) priority(fam Family, s *Scratch) {
	cnt := s.cnt[:len(p.groups)]
	clear(cnt)
	for _, i := range s.idx {
		cnt[p.group[i]]++
	}
	chosen := -1
	for g := range cnt {
		if cnt[g] > 0 && cnt[g] >= p.minOf(p.groupSize[famIndex(fam)][g]) {
			chosen = g
			break
		}
	}
	if chosen < 0 {
		for g := range cnt {
			if cnt[g] > 0 {
				chosen = g
				break
			}
		}
	}
	// The chosen group is the first tier, the other groups follow in
	// priority order, one tier each: first answers from them only with
	// fill: next_tier.
	tmp := s.tmp[:len(s.idx)]
	w := 0
	for _, i := range s.idx {
		if p.group[i] == chosen {
			tmp[w] = i
			w++
		}
	}
	s.tier = append(s.tier[:0], w)
	for g := range cnt {
		if g == chosen || cnt[g] == 0 {
			continue
		}
		for _, i := range s.idx {
			if p.group[i] == g {
				tmp[w] = i
				w++
			}
		}
		s.tier = append(s.tier, w)
	}
	copy(s.idx, tmp)
}

// minOf returns how many of a group of n members must be up for the group
// to be chosen: min_healthy, at most the whole group (a group fully up is
// as healthy as it can be).
func (p *Pool) minOf(n int) int {
	need := 1
	switch {
	case p.minPercent > 0:
		need = (n*p.minPercent + 99) / 100
	case p.minCount > 0:
		need = p.minCount
	}
	return max(min(need, n), 1)
}

// order runs an ordering stage over each tier, fixing only the first need
// positions overall (0: all) when nothing after the stage but first N
// looks at the order.
func (p *Pool) order(st stage, s *Scratch, need int, ctr uint64) {
	start := 0
	for _, end := range s.tier {
		if need > 0 && start >= need {
			return
		}
		t := s.idx[start:end]
		k := len(t)
		if need > 0 && need-start < k {
			k = need - start
		}
		switch st {
		case stWeighted:
			p.weighted(t, k, s)
		case stRoundRobin:
			rotate(t, int(ctr%uint64(len(t))))
		case stLoad:
			// Rotating first makes equal loads take turns; the stable
			// selection below keeps that order among equals.
			rotate(t, int(ctr%uint64(len(t))))
			for _, i := range t {
				r := p.status[i].Load / p.Members[i].Capacity
				if !(r > 0) { // negative, zero or NaN
					r = 0
				}
				s.key[i] = math.Float64bits(r)
			}
			selectOrder(t, k, s.key, false)
		case stSticky:
			selectOrder(t, k, s.key, true)
		}
		start = end
	}
}

// weighted puts the first k positions of t in weighted random order
// without replacement: each position is drawn from the members not yet
// placed, with probability proportional to weight.
func (p *Pool) weighted(t []int, k int, s *Scratch) {
	for j := 0; j < k && j < len(t)-1; j++ {
		var total uint64
		for _, i := range t[j:] {
			total += uint64(p.weight[i])
		}
		if total == 0 {
			return
		}
		r := s.below(total)
		x := j
		for ; x < len(t)-1; x++ {
			w := uint64(p.weight[t[x]])
			if r < w {
				break
			}
			r -= w
		}
		t[j], t[x] = t[x], t[j]
	}
}

// selectOrder moves the k best members of t (by key, ascending or
// descending) to its front in order, keeping equal keys in their present
// order.
func selectOrder(t []int, k int, key []uint64, desc bool) {
	for j := 0; j < k && j < len(t)-1; j++ {
		best := j
		for x := j + 1; x < len(t); x++ {
			a, b := key[t[x]], key[t[best]]
			if desc && a > b || !desc && a < b {
				best = x
			}
		}
		if best != j {
			v := t[best]
			copy(t[j+1:best+1], t[j:best])
			t[j] = v
		}
	}
}

// stickyKeys computes each candidate's rendezvous score for the client's
// subnet into s.key and returns the subnet's hash.
func (p *Pool) stickyKeys(c *Client, s *Scratch) uint64 {
	h := p.subnetHash(c, s)
	for _, i := range s.idx {
		s.key[i] = mix.Mix64(h ^ p.memberKey[i])
	}
	return h
}

// subnetHash hashes the client's address masked to the sticky prefix of
// its family (never wider than the source prefix) and widens s.scope to
// that prefix.
func (p *Pool) subnetHash(c *Client, s *Scratch) uint64 {
	a := c.Addr.Unmap()
	bitsLen := p.stickyV6
	if a.Is4() {
		bitsLen = p.stickyV4
	}
	bitsLen = min(bitsLen, c.SourcePrefix)
	if !a.IsValid() || bitsLen < 0 {
		bitsLen = 0
	}
	if pf, err := a.Prefix(bitsLen); err == nil {
		a = pf.Addr()
	}
	s.scope = max(s.scope, bitsLen)
	b := a.As16()
	hi := uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
	lo := uint64(b[8])<<56 | uint64(b[9])<<48 | uint64(b[10])<<40 | uint64(b[11])<<32 |
		uint64(b[12])<<24 | uint64(b[13])<<16 | uint64(b[14])<<8 | uint64(b[15])
	if a.Is4() {
		hi ^= 0x9e3779b97f4a7c15 // keep 0.0.0.0/8 apart from ::/8
	}
	return mix.Mix64(hi ^ mix.Mix64(lo^uint64(bitsLen)))
}

// fnv64 hashes a member's identity for rendezvous hashing: stable across
// restarts and member list order.
func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix.Mix64(h)
}

// shape makes the list an answer: one host-name member when the best
// member is a host name (a CNAME has one target), else the address
// members only, at most n of them (0: all).
func (p *Pool) shape(s *Scratch, n int) {
	if len(s.idx) == 0 {
		return
	}
	if !p.FillNext && len(s.tier) > 1 {
		// fill: first_tier (as gdnsd's metafo): the nearest site or the
		// chosen group alone, even when it has fewer than n members.
		s.idx = s.idx[:s.tier[0]]
		s.tier = s.tier[:1]
	}
	if !p.hasHost {
		if n > 0 && len(s.idx) > n {
			s.idx = s.idx[:n]
		}
		s.tier = append(s.tier[:0], len(s.idx))
		return
	}
	if p.Members[s.idx[0]].Host != "" {
		s.idx = s.idx[:1]
		s.tier = append(s.tier[:0], 1)
		return
	}
	w := 0
	for _, i := range s.idx {
		if p.Members[i].Host == "" {
			s.idx[w] = i
			w++
			if w == n {
				break
			}
		}
	}
	s.idx = s.idx[:w]
	s.tier = append(s.tier[:0], w)
}

func rotate(a []int, k int) {
	if k == 0 {
		return
	}
	reverse(a[:k])
	reverse(a[k:])
	reverse(a)
}

func reverse(a []int) {
	for i, j := 0, len(a)-1; i < j; i, j = i+1, j-1 {
		a[i], a[j] = a[j], a[i]
	}
}

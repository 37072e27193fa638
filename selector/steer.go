package selector

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/geo"
)

// RTT is one vantage node's smoothed round-trip time of a member's probes.
type RTT struct {
	Node    string
	Seconds float64
}

// latPlan is a pool's compiled latency stage: the vantage nodes (where
// each probes from, when the configuration says) and, per member state,
// each vantage's RTTs and the members' order by them.
type latPlan struct {
	loc    Locator
	nodes  []string  // vantage index -> node name; self is among them
	vec    []geo.Vec // by vantage: where it probes from
	hasLoc []bool
	nLoc   int // vantages with a location
	self   int
	tol    float64 // seconds
	maxRTT float64 // seconds, 0: none
}

// latState is what WithStatus precomputes for the latency stage: by
// vantage, each member's RTT (+Inf unknown; a vantage that has not
// measured a member takes the answering node's own RTT) and its rank in
// the order by RTT, so a decision only reads.
type latState struct {
	rtt [][]float64
	ord [][]int // by vantage: members fastest first
}

func compileLatency(cfg *config.Config, cp config.Pool, loc Locator) *latPlan {
	l := &latPlan{loc: loc, self: -1, tol: cp.Tolerance.D().Seconds(), maxRTT: cp.MaxRTT.D().Seconds()}
	for _, name := range slices.Sorted(maps.Keys(cfg.Nodes)) {
		v := len(l.nodes)
		l.nodes = append(l.nodes, name)
		ll, ok := cfg.NodeLocation(name)
		ok = ok && len(ll) == 2
		l.hasLoc = append(l.hasLoc, ok)
		var vec geo.Vec
		if ok {
			vec = geo.VecOf(ll[0], ll[1])
			l.nLoc++
		}
		l.vec = append(l.vec, vec)
		if name == cfg.Node.Name {
			l.self = v
		}
	}
	if l.self < 0 {
		l.self = len(l.nodes)
		l.nodes = append(l.nodes, cfg.Node.Name)
		l.hasLoc = append(l.hasLoc, false)
		l.vec = append(l.vec, geo.Vec{})
	}
	return l
}

// precomputeLatency fills p.lat from the members' RTTs.
func (p *Pool) precomputeLatency() {
	l := p.latPlan
	if l == nil {
		return
	}
	n := len(p.Members)
	st := &latState{rtt: make([][]float64, len(l.nodes)), ord: make([][]int, len(l.nodes))}
	for v, node := range l.nodes {
		rtt := make([]float64, n)
		for i := range n {
			rtt[i] = math.Inf(1)
			own := math.Inf(1)
			for _, r := range p.status[i].RTT {
				if r.Node == node && r.Seconds >= 0 {
					rtt[i] = r.Seconds
				}
				if r.Node == l.nodes[l.self] && r.Seconds >= 0 {
					own = r.Seconds
				}
			}
			if math.IsInf(rtt[i], 1) {
				rtt[i] = own
			}
		}
		// rank: by RTT, ties by member order (insertion sort: pools are small
		// and this runs on state changes, not per query).
		ord := make([]int, n)
		for i := range ord {
			ord[i] = i
			for j := i; j > 0 && rtt[ord[j-1]] > rtt[ord[j]]; j-- {
				ord[j], ord[j-1] = ord[j-1], ord[j]
			}
		}
		st.rtt[v], st.ord[v] = rtt, ord
	}
	p.lat = st
}

// vantage returns the vantage node whose RTTs stand for client c's: the
// located node nearest the client, or the answering node's own when the
// client's or the nodes' locations are unknown.
func (p *Pool) vantage(c *Client, s *Scratch) int {
	l := p.latPlan
	a := c.Addr.Unmap()
	if l.nLoc == 0 || l.loc == nil || !a.IsValid() {
		return l.self
	}
	loc := l.loc.Locate(a)
	s.scope = max(s.scope, loc.Bits) // the choice of vantage held for that network
	if !loc.HasCoords {
		return l.self
	}
	cv := geo.VecOf(loc.Lat, loc.Lon)
	best, bd := l.self, math.Inf(1)
	for v, ok := range l.hasLoc {
		if ok {
			if d := 1 - cv.Dot(l.vec[v]); d < bd {
				best, bd = v, d
			}
		}
	}
	return best
}

// latencyStage orders each tier fastest first, by the RTTs of the vantage
// nearest the client, and cuts it into bands: a band holds the members
// within tolerance of its fastest, who count as equal (the ordering stage
// after it shares among them). With max_rtt, slower members are dropped
// unless every member is slower.
func (p *Pool) latencyStage(c *Client, s *Scratch) {
	v := p.vantage(c, s)
	rtt, ord := p.lat.rtt[v], p.lat.ord[v]
	if s.ex != nil {
		s.ex.vantage = v
	}
	if lim := p.latPlan.maxRTT; lim > 0 {
		any := false
		for j, i := range s.idx {
			s.keep[j] = rtt[i] <= lim
			any = any || s.keep[j]
		}
		if any {
			s.compact()
		}
	}
	tol := p.latPlan.tol
	nt := s.tier2[:0]
	start := 0
	for k, end := range s.tier {
		// Order the tier by the precomputed order: mark its members, then
		// walk the order (O(members), no sort per decision).
		t := s.idx[start:end]
		stamp := uint64(k) + 1<<32
		for _, i := range t {
			s.key[i] = stamp
		}
		w := 0
		for _, i := range ord {
			if s.key[i] == stamp {
				t[w] = i
				s.key[i] = 0
				w++
			}
		}
		band := rtt[t[0]]
		for x := 1; x < len(t); x++ {
			if r := rtt[t[x]]; r > band+tol || math.IsInf(r, 1) && !math.IsInf(band, 1) {
				nt = append(nt, start+x)
				band = r
			}
		}
		nt = append(nt, end)
		start = end
	}
	s.tier, s.tier2 = nt, s.tier[:0]
}

// spillState is what WithStatus precomputes for the spill stage: each
// member's share of clients to send elsewhere (capacity spill-over or an
// operator's shed) and its share of its site's free capacity.
type spillState struct {
	shed []float64 // 0 to 1
	free []float64 // capacity left below spill_at, split over the site's members
	any  bool      // some member sheds
	// why by member, for explain: "load 95 of capacity 100 (spill at 0.9)"
	why []string
}

// precomputeSpill fills p.spill from loads, capacities and shed states.
func (p *Pool) precomputeSpill() {
	if !p.mayShed() {
		p.spill = &spillState{}
		return
	}
	n := len(p.Members)
	st := &spillState{shed: make([]float64, n), free: make([]float64, n), why: make([]string, n)}
	at := p.spillAt
	// site load: sum of the loads of the site's members up.
	siteLoad := map[string]float64{}
	siteUp := map[string]int{}
	for i, m := range p.Members {
		if m.Site != "" && p.status[i].Up && !p.status[i].Drain {
			siteLoad[m.Site] += max(p.status[i].Load, 0)
			siteUp[m.Site]++
		}
	}
	for i, m := range p.Members {
		sh, free, why := 0.0, 0.0, ""
		capOf := func(load, cp float64, what string) {
			lim := at * cp
			if load > lim && load > 0 {
				if f := 1 - lim/load; f > sh {
					sh = f
					why = fmt.Sprintf("%s load %.4g over %.4g (%.3g of capacity %.4g): %.1f%% of its clients move", what, load, lim, at, cp, 100*f)
				}
			}
		}
		switch {
		case p.siteCap[m.Site] > 0:
			c := p.siteCap[m.Site]
			capOf(siteLoad[m.Site], c, "site "+m.Site)
			if k := siteUp[m.Site]; k > 0 {
				free = max(at*c-siteLoad[m.Site], 0) / float64(k)
			}
		case p.memberCap[i]:
			capOf(p.status[i].Load, m.Capacity, "member")
			free = max(at*m.Capacity-p.status[i].Load, 0)
		}
		if a := p.status[i].Shed; a > sh {
			sh = min(a, 1)
			why = fmt.Sprintf("an operator sheds %.0f%% of its clients", 100*sh)
		}
		free *= 1 - sh
		st.shed[i], st.free[i], st.why[i] = sh, free, why
		st.any = st.any || sh > 0
	}
	p.spill = st
}

// mayShed reports whether a member may shed: a capacity declared for it
// or its site, or an operator's shed. Most pools have none and skip the
// work (and a large pool's rebuild stays cheap).
func (p *Pool) mayShed() bool {
	for i, m := range p.Members {
		if p.memberCap[i] || p.siteCap[m.Site] > 0 || p.status[i].Shed > 0 {
			return true
		}
	}
	return false
}

// spillStage moves a client away from the members of its first tier that
// shed it. Whether a member sheds this client is decided by a hash of the
// client subnet (sticky_prefix wide) against the member's shed share, so
// a subnet keeps its answer and the share moving follows the load
// smoothly. When the whole first tier sheds the client, it goes to one of
// the next tiers, picked in proportion to their free capacity (by the
// same hash, rescaled: stable too), or the next tier when none declares
// any; that tier comes first, the rest keep their order.
func (p *Pool) spillStage(c *Client, s *Scratch) {
	sp := p.spill
	if !sp.any || len(s.idx) == 0 {
		return
	}
	first := s.idx[:s.tier[0]]
	touched := false
	for _, i := range first {
		if sp.shed[i] > 0 {
			touched = true
			break
		}
	}
	if !touched {
		return
	}
	h := p.subnetHash(c, s)
	u := float64(h>>11) / (1 << 53) // uniform in [0, 1)
	if s.ex != nil {
		s.ex.hashU = u
	}
	// Members of the first tier that shed this client.
	maxShed := 0.0
	kept := 0
	for _, i := range first {
		if u >= sp.shed[i] {
			kept++
		} else {
			maxShed = max(maxShed, sp.shed[i])
		}
	}
	if kept > 0 || len(s.tier) == 1 {
		if kept > 0 {
			for j := range s.idx {
				s.keep[j] = j >= len(first) || u >= sp.shed[s.idx[j]]
			}
			s.compact()
		}
		return // a tier alone keeps its members: an answer beats none
	}
	// The whole first tier sheds this client: pick a next tier by free
	// capacity, with u rescaled to [0, 1) within the shed share.
	v := u / maxShed
	var total float64
	start := s.tier[0]
	for _, end := range s.tier[1:] {
		for _, i := range s.idx[start:end] {
			total += sp.free[i]
		}
		start = end
	}
	pick := 1
	if total > 0 {
		r := v * total
		start = s.tier[0]
		for t, end := range s.tier[1:] {
			var f float64
			for _, i := range s.idx[start:end] {
				f += sp.free[i]
			}
			if r < f || t == len(s.tier)-2 {
				pick = t + 1
				break
			}
			r -= f
			start = end
		}
	}
	// Move tier pick to the front, tier 0 after it (still an answer if
	// the rest go down), the others in order.
	p.moveTier(s, pick)
	if s.ex != nil {
		var b strings.Builder
		fmt.Fprintf(&b, "the whole first tier sheds this client: moved to the tier of %s (picked by free capacity:", p.Members[s.idx[0]].Name())
		for _, i := range s.idx {
			fmt.Fprintf(&b, " %s=%.4g", p.Members[i].Name(), sp.free[i])
		}
		b.WriteString(")")
		s.ex.stageNote = b.String()
	}
}

// moveTier makes tier t the first, keeping the others' order.
func (p *Pool) moveTier(s *Scratch, t int) {
	from := 0
	if t > 0 {
		from = s.tier[t-1]
	}
	to := s.tier[t]
	tmp := s.tmp[:len(s.idx)]
	w := copy(tmp, s.idx[from:to])
	w += copy(tmp[w:], s.idx[:from])
	copy(tmp[w:], s.idx[to:])
	copy(s.idx, tmp)
	nt := s.tier2[:0]
	nt = append(nt, to-from)
	for k, end := range s.tier {
		if k < t {
			nt = append(nt, end+(to-from))
		} else if k > t {
			nt = append(nt, end)
		}
	}
	s.tier, s.tier2 = nt, s.tier[:0]
}

// latencyNote says which vantage's RTTs the latency stage used.
func (p *Pool) latencyNote(s *Scratch) string {
	l := p.latPlan
	v := s.ex.vantage
	var b strings.Builder
	how := "the answering node's own (no located node or client location)"
	if v != l.self || l.nLoc > 0 && l.hasLoc[l.self] && l.loc != nil {
		how = "the node nearest the client"
	}
	fmt.Fprintf(&b, "RTTs from node %s, %s; tolerance %gms", l.nodes[v], how, 1000*l.tol)
	if l.maxRTT > 0 {
		fmt.Fprintf(&b, ", max_rtt %gms", 1000*l.maxRTT)
	}
	b.WriteString(":")
	for _, i := range s.ex.before {
		r := p.lat.rtt[v][i]
		if math.IsInf(r, 1) {
			fmt.Fprintf(&b, " %s=unmeasured", p.Members[i].Name())
		} else {
			fmt.Fprintf(&b, " %s=%.1fms", p.Members[i].Name(), 1000*r)
		}
	}
	return b.String()
}

// spillNote says which loads and shed shares the spill stage read.
func (p *Pool) spillNote(s *Scratch) string {
	var parts []string
	for _, i := range s.ex.before {
		if w := p.spill.why[i]; w != "" {
			parts = append(parts, p.Members[i].Name()+": "+w)
		}
	}
	if len(parts) == 0 {
		return "no member of the list sheds clients"
	}
	note := fmt.Sprintf("client hash %.3f; ", s.ex.hashU) + strings.Join(parts, "; ")
	if s.ex.stageNote != "" {
		note += "; " + s.ex.stageNote
	}
	return note
}

package selector

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// Step is what one stage of a chain did, for explain.
type Step struct {
	// Pool is the pool whose chain ran the stage (an all_down fallback's
	// steps name the fallback pool).
	Pool *Pool
	// Stage is the stage's name, or "all_down" for the all-down decision.
	Stage string
	// Kept are the members (indexes into Pool.Members) still in the list
	// after the stage, in order; Tiers are the ends of its tiers in Kept.
	Kept  []int
	Tiers []int
	// Dropped are the members the stage removed, each with why.
	Dropped []Drop
	// Note says how the stage decided.
	Note string
	// Scope is the ECS scope the decision depended on so far.
	Scope int
}

// Drop is one member a stage removed.
type Drop struct {
	Member int
	Why    string
}

// explainer records steps while a Scratch runs a chain; a Scratch has one
// only when explaining, so the query path pays a nil check per stage.
type explainer struct {
	cur        *Pool
	steps      []Step
	before     []int
	stageNote  string
	geoList    []string
	client     [2]float64
	hasClient  bool
	asIfUp     bool    // the all_down all run: healthy keeps everyone
	beforeTier []int   // tier ends of before
	vantage    int     // the latency stage's vantage node
	hashU      float64 // the spill stage's client hash in [0, 1)
}

func (e *explainer) pool(p *Pool) { e.cur = p }

func (e *explainer) event(note string) {
	e.steps = append(e.steps, Step{Pool: e.cur, Stage: "all_down", Note: note})
}

func (e *explainer) family(p *Pool, fam Family, s *Scratch) {
	st := Step{Pool: p, Stage: stFamily.String(), Kept: slices.Clone(s.idx), Tiers: slices.Clone(s.tier), Scope: s.scope}
	for i, m := range p.Members {
		if !p.inFamily(i, fam) {
			st.Dropped = append(st.Dropped, Drop{i, fmt.Sprintf("%s address: the query asks for %s", famName(m.Addr), famQuery(fam))})
		}
	}
	st.Note = fmt.Sprintf("%s: address members of that family and host-name members", famQuery(fam))
	e.steps = append(e.steps, st)
}

func (e *explainer) begin(s *Scratch) {
	e.before = append(e.before[:0], s.idx...)
	e.beforeTier = append(e.beforeTier[:0], s.tier...)
	e.stageNote, e.geoList = "", nil
}

func (e *explainer) end(p *Pool, st stage, s *Scratch, note string) {
	step := Step{Pool: p, Stage: st.String(), Kept: slices.Clone(s.idx), Tiers: slices.Clone(s.tier), Note: note, Scope: s.scope}
	for _, i := range e.before {
		if !slices.Contains(s.idx, i) {
			step.Dropped = append(step.Dropped, Drop{i, e.why(p, st, i, s)})
		}
	}
	e.steps = append(e.steps, step)
}

// why says why stage st dropped member i.
func (e *explainer) why(p *Pool, st stage, i int, s *Scratch) string {
	m := p.Members[i]
	switch st {
	case stHealthy:
		switch stt := p.status[i]; {
		case !stt.Up && stt.Drain:
			return "down and drained"
		case stt.Drain:
			return "drained"
		default:
			return "down"
		}
	case stGeo:
		return fmt.Sprintf("site %q is not in the list %v", m.Site, e.geoList)
	case stLatency:
		return fmt.Sprintf("RTT %.1fms above max_rtt %gms", 1000*p.lat.rtt[e.vantage][i], 1000*p.latPlan.maxRTT)
	case stSpill:
		return fmt.Sprintf("sheds this client (hash %.3f below its shed share %.3f): %s", e.hashU, p.spill.shed[i], p.spill.why[i])
	case stPriority:
		if len(s.idx) > 0 {
			return fmt.Sprintf("priority %d: group priority %d chosen", m.Priority, p.Members[s.idx[0]].Priority)
		}
		return fmt.Sprintf("priority %d", m.Priority)
	case stFirst:
		if len(s.idx) > 0 && p.Members[s.idx[0]].Host != "" {
			return fmt.Sprintf("the answer is a CNAME to %s", p.Members[s.idx[0]].Host)
		}
		if m.Host != "" {
			return "host name: an address answer cannot carry a CNAME"
		}
		if !p.FillNext && len(e.beforeTier) > 1 {
			if k := slices.Index(e.before, i); k >= e.beforeTier[0] {
				return "not in the first tier (fill: first_tier; fill: next_tier would fill from the next tiers)"
			}
		}
		return fmt.Sprintf("beyond answers: %d", p.Answers)
	}
	return "dropped"
}

// note says how stage st decided; only called when explaining.
func (p *Pool) note(st stage, c *Client, fam Family, s *Scratch, ctr uint64) string {
	e := s.ex
	switch st {
	case stHealthy:
		if e.asIfUp {
			return "all_down all: every member counts as up, drained ones stay out (unless all are drained)"
		}
		return "drops members that are down or drained"
	case stGeo:
		return e.stageNote
	case stLatency:
		return p.latencyNote(s)
	case stSpill:
		return p.spillNote(s)
	case stPriority:
		var b strings.Builder
		for g, prio := range p.groups {
			up := 0
			for _, i := range e.before {
				if p.group[i] == g {
					up++
				}
			}
			size := p.groupSize[famIndex(fam)][g]
			fmt.Fprintf(&b, "priority %d: %d of %d up, needs %d; ", prio, up, size, p.minOf(size))
		}
		return strings.TrimSuffix(b.String(), "; ")
	case stWeighted:
		var ws []string
		for _, i := range e.before {
			ws = append(ws, fmt.Sprintf("%s=%d", p.Members[i].Name(), p.Members[i].Weight))
		}
		return "one draw of a weighted random order within each tier (weights " + strings.Join(ws, " ") + ")"
	case stRoundRobin:
		return fmt.Sprintf("rotation by counter %d within each tier", ctr)
	case stLoad:
		var ls []string
		for _, i := range e.before {
			ls = append(ls, fmt.Sprintf("%s=%.3g", p.Members[i].Name(), p.status[i].Load/p.Members[i].Capacity))
		}
		return "least load/capacity first (" + strings.Join(ls, " ") + ")"
	case stSticky:
		a := c.Addr.Unmap()
		bitsLen := p.stickyV6
		if a.Is4() {
			bitsLen = p.stickyV4
		}
		bitsLen = max(min(bitsLen, c.SourcePrefix), 0)
		pf, _ := a.Prefix(bitsLen)
		return fmt.Sprintf("client subnet %s: highest rendezvous score first", pf)
	case stFirst:
		if p.Answers == 0 {
			return "answers: all"
		}
		return fmt.Sprintf("answers: %d", p.Answers)
	}
	return ""
}

// Explain runs p's chain for client c and family fam like Select and
// returns the answer with what each stage did. It allocates freely: it is
// for people, not for the query path. Random stages show one draw.
func (p *Pool) Explain(c *Client, fam Family) (Answer, []Step) {
	s := NewScratch(len(p.Members))
	s.ex = &explainer{}
	a := p.Select(c, fam, s)
	a.Members = slices.Clone(a.Members)
	return a, s.ex.steps
}

// ParseClient parses an address ("192.0.2.7") or a subnet
// ("192.0.2.0/24", as an ECS option would carry it) into a Client.
func ParseClient(str string) (Client, error) {
	if a, err := netip.ParseAddr(str); err == nil {
		a = a.Unmap()
		return Client{Addr: a, SourcePrefix: a.BitLen()}, nil
	}
	pf, err := netip.ParsePrefix(str)
	if err != nil {
		return Client{}, fmt.Errorf("client %q: write an address like 192.0.2.7 or a subnet like 192.0.2.0/24", str)
	}
	pf = pf.Masked()
	return Client{Addr: pf.Addr().Unmap(), SourcePrefix: pf.Bits()}, nil
}

// WriteExplain writes, for people, how pool p answers client c for family
// fam: stage by stage which members were kept or dropped and why, then
// the answer, its TTL and its ECS scope. recordTTL is the POOL record's
// TTL, used when the pool sets none. This is `tern explain`.
func WriteExplain(w io.Writer, p *Pool, c Client, fam Family, recordTTL uint32) error {
	a, steps := p.Explain(&c, fam)
	var b strings.Builder
	fmt.Fprintf(&b, "pool %s, %s query, client %s/%d\n", p.Name, famQuery(fam), c.Addr, c.SourcePrefix)
	for _, st := range steps {
		if st.Stage == "all_down" {
			fmt.Fprintf(&b, "  %-10s %s\n", st.Stage, st.Note)
			continue
		}
		prefix := ""
		if st.Pool != p {
			prefix = st.Pool.Name + "/"
		}
		fmt.Fprintf(&b, "  %-10s kept %s", prefix+st.Stage, tiered(st.Pool, st.Kept, st.Tiers))
		if st.Note != "" {
			fmt.Fprintf(&b, "\n  %-10s   %s", "", st.Note)
		}
		b.WriteByte('\n')
		for _, d := range st.Dropped {
			fmt.Fprintf(&b, "  %-10s   dropped %s: %s\n", "", st.Pool.Members[d.Member].Name(), d.Why)
		}
	}
	switch {
	case a.Pool == nil || len(a.Members) == 0:
		b.WriteString("answer: none (NODATA)\n")
	case a.CNAME() != "":
		fmt.Fprintf(&b, "answer: CNAME %s\n", a.CNAME())
	default:
		names := make([]string, len(a.Members))
		for i, m := range a.Members {
			names[i] = a.Pool.Members[m].Name()
		}
		fmt.Fprintf(&b, "answer: %s\n", strings.Join(names, " "))
	}
	if a.Pool != nil && a.Pool != p {
		fmt.Fprintf(&b, "answered by: pool %s (all_down fallback)\n", a.Pool.Name)
	}
	ttl := a.TTL
	if ttl == 0 {
		ttl = recordTTL
	}
	fmt.Fprintf(&b, "ttl: %d\n", ttl)
	fmt.Fprintf(&b, "ecs scope: /%d\n", a.Scope)
	_, err := io.WriteString(w, b.String())
	return err
}

// tiered prints members with tiers bracketed when there is more than one.
func tiered(p *Pool, kept, tiers []int) string {
	if len(kept) == 0 {
		return "none"
	}
	var parts []string
	start := 0
	for _, end := range tiers {
		var names []string
		for _, i := range kept[start:min(end, len(kept))] {
			names = append(names, p.Members[i].Name())
		}
		parts = append(parts, strings.Join(names, " "))
		start = end
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "[" + strings.Join(parts, "] [") + "]"
}

func famName(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

func famQuery(fam Family) string {
	if fam == IPv4 {
		return "A"
	}
	return "AAAA"
}

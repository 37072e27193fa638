package selector

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/ternlb/tern/config"
)

// Compile turns the configuration's pools into compiled pools, in
// cfg.PoolNames() order, every member at its configured initial state,
// without a geo database: geo maps then match CIDR keys and default only,
// and nearest-site choice keeps the configured order. See CompileLocated.
func Compile(cfg *config.Config) ([]*Pool, error) {
	return CompileLocated(cfg, nil)
}

// CompileLocated is Compile with a Locator (usually a *geo.DB) that the
// geo stage asks where a client is; loc may be nil.
func CompileLocated(cfg *config.Config, loc Locator) ([]*Pool, error) {
	names := cfg.PoolNames()
	out := make([]*Pool, len(names))
	for i, name := range names {
		p, err := compilePool(cfg, name, loc)
		if err != nil {
			return nil, fmt.Errorf("compile pool %q: %w", name, err)
		}
		out[i] = p
	}
	return Link(out)
}

func compilePool(cfg *config.Config, name string, loc Locator) (*Pool, error) {
	cp := cfg.Pools[name]
	p := &Pool{
		Name: name, Answers: cp.Answers, TTL: uint32(cp.TTL), rr: new(atomic.Uint64),
		minCount: cp.MinHealthy.Count, minPercent: cp.MinHealthy.Percent,
		stickyV4: cp.StickyPrefix.IPv4, stickyV6: cp.StickyPrefix.IPv6,
		FillNext: cp.Fill == config.FillNextTier, spillAt: cp.SpillAt, implicitSpill: -1,
		siteCap: map[string]float64{},
	}
	if p.spillAt <= 0 {
		p.spillAt = 0.9
	}
	for name, site := range cfg.Sites {
		if site.Capacity > 0 {
			p.siteCap[name] = site.Capacity
		}
	}
	if p.stickyV4 == 0 {
		p.stickyV4 = 24
	}
	if p.stickyV6 == 0 {
		p.stickyV6 = 56
	}
	switch ad := cp.AllDown; {
	case ad == "" || ad == "all":
		p.AllDown = AllDownAll
	case ad == "none":
		p.AllDown = AllDownNone
	case strings.HasPrefix(ad, "fallback:"):
		p.AllDown, p.Fallback = AllDownFallback, strings.TrimPrefix(ad, "fallback:")
	default:
		return nil, fmt.Errorf("all_down %q: write all, none or fallback:<pool>", ad)
	}

	for _, m := range cp.Members {
		p.memberCap = append(p.memberCap, m.Capacity > 0)
		mm := Member{Weight: uint32(max(m.Weight, 1)), Priority: max(m.Priority, 1), Site: m.Site, Capacity: m.Capacity}
		if mm.Capacity <= 0 {
			mm.Capacity = 1
		}
		key := ""
		if a, err := netip.ParseAddr(m.Address); err == nil {
			mm.Addr = a.Unmap()
			key = mm.Addr.String()
		} else {
			mm.Host = dnsFQDN(strings.ToLower(m.Address))
			key = mm.Host
		}
		p.Members = append(p.Members, mm)
		p.weight = append(p.weight, mm.Weight)
		p.memberKey = append(p.memberKey, fnv64(key))
		p.status = append(p.status, Status{
			Up:    cp.Initial != "down" && m.Admin != "down" || m.Admin == "up",
			Drain: m.Admin == "drain",
		})
	}

	for _, m := range p.Members {
		if !slices.Contains(p.groups, m.Priority) {
			p.groups = append(p.groups, m.Priority)
		}
	}
	slices.Sort(p.groups)
	p.groupSize = [2][]int{make([]int, len(p.groups)), make([]int, len(p.groups))}
	for i, m := range p.Members {
		g := slices.Index(p.groups, m.Priority)
		p.group = append(p.group, g)
		if p.inFamily(i, IPv4) {
			p.groupSize[0][g]++
			p.famMembers[0] = append(p.famMembers[0], i)
		}
		if p.inFamily(i, IPv6) {
			p.groupSize[1][g]++
			p.famMembers[1] = append(p.famMembers[1], i)
		}
	}

	p.precomputeUp()
	hasHost, hasAddr := false, false
	for _, m := range p.Members {
		hasHost = hasHost || m.Host != ""
		hasAddr = hasAddr || m.Host == ""
	}
	p.hasHost = hasHost
	names := config.ChainOf(cp)
	if !slices.Contains(names, "spill") {
		// Spill runs in every chain, so an operator's shed and declared
		// capacities hold in any pool; it costs a check when nothing sheds.
		p.implicitSpill = config.SpillPosition(names)
		names = slices.Insert(slices.Clone(names), p.implicitSpill, "spill")
	}
	for _, name := range names {
		st, ok := parseStage(name)
		if !ok {
			return nil, fmt.Errorf("chain stage %q is unknown", name)
		}
		p.chain = append(p.chain, st)
		if st == stLatency {
			p.latPlan = compileLatency(cfg, cp, loc)
		}
	}
	p.need = make([]int, len(p.chain))
	for k, st := range p.chain {
		// An ordering stage followed by nothing but first N only has to
		// fix the first N positions; host members mixed with addresses
		// may be dropped by shaping, so then it orders them all.
		if st.orders() && p.Answers > 0 && !(hasHost && hasAddr) &&
			(k == len(p.chain)-1 || k == len(p.chain)-2 && p.chain[k+1] == stFirst) {
			p.need[k] = p.Answers
		}
		if st == stGeo {
			g, err := compileGeo(cfg, cp, p, loc)
			if err != nil {
				return nil, err
			}
			p.geo = g
		}
	}
	p.precomputeGeo()
	p.precomputeLatency()
	p.precomputeSpill()
	return p, nil
}

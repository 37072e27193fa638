package selector

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strings"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/geo"
)

// Locator tells where an address is. *geo.DB implements it; it must be
// safe for concurrent use and should not allocate.
type Locator interface {
	Locate(addr netip.Addr) geo.Location
}

// geoPlan is a pool's compiled geo stage: a map from where the client is
// to an ordered list of sites, or (without a map) nearest first by
// great-circle distance.
type geoPlan struct {
	loc Locator

	// map mode
	mapName            string
	byMap              bool
	cidr               geo.Table[int] // CIDR key -> list index
	country, continent codeIndex
	def                int      // list of "default", -1 when none
	keys               []string // list index -> the map key, for explain
	lists              [][]string
	// class numbers the distinct site lists (list index -> class), and
	// rank is each class's: member -> rank (unlisted: noRank). Map
	// entries that list the same sites share one.
	class   []int
	rank    [][]uint64
	locates bool // the map has country or continent keys

	// nearest mode: distinct locations, and each member's (-1: none)
	locs   []geo.Vec
	memLoc []int

	// maxRank bounds the ranks the stage gives (list length, or
	// locations + 1), for the counting sort's buffer.
	maxRank int
}

const noRank = math.MaxUint64

func compileGeo(cfg *config.Config, cp config.Pool, p *Pool, loc Locator) (*geoPlan, error) {
	g := &geoPlan{loc: loc, def: -1}
	if cp.Map == "" {
		seen := map[[2]float64]int{}
		for _, m := range cp.Members {
			ll := m.Location
			if len(ll) != 2 && m.Site != "" {
				ll = cfg.Sites[m.Site].Location
			}
			if len(ll) != 2 {
				g.memLoc = append(g.memLoc, -1)
				continue
			}
			k := [2]float64{ll[0], ll[1]}
			li, ok := seen[k]
			if !ok {
				li = len(g.locs)
				seen[k] = li
				g.locs = append(g.locs, geo.VecOf(ll[0], ll[1]))
			}
			g.memLoc = append(g.memLoc, li)
		}
		g.maxRank = len(g.locs) + 1
		return g, nil
	}
	m, ok := cfg.Geo.Maps[cp.Map]
	if !ok {
		return nil, fmt.Errorf("geo map %q is not under geo.maps", cp.Map)
	}
	g.byMap, g.mapName = true, cp.Map
	classOf := map[string]int{} // site list -> its class
	for _, key := range slices.Sorted(maps.Keys(m)) {
		li := len(g.lists)
		kind, code, _ := strings.Cut(key, ":")
		switch {
		case key == "default":
			g.def = li
		case kind == "country" || kind == "continent":
			idx := &g.country
			if kind == "continent" {
				idx = &g.continent
			}
			if !idx.add(code, li) {
				return nil, fmt.Errorf("geo map %q key %q: a %s code is two letters", cp.Map, key, kind)
			}
			g.locates = true
		default:
			pf, err := netip.ParsePrefix(key)
			if err != nil {
				return nil, fmt.Errorf("geo map %q key %q: write continent:XX, country:XX, a CIDR or default", cp.Map, key)
			}
			g.cidr.Insert(pf, li)
		}
		sites := m[key]
		same := strings.Join(sites, "\x00")
		c, ok := classOf[same]
		if !ok {
			c = len(g.rank)
			classOf[same] = c
			rank := make([]uint64, len(p.Members))
			for i, mem := range p.Members {
				rank[i] = noRank
				for r, site := range sites {
					if mem.Site == site {
						rank[i] = uint64(r)
						break
					}
				}
			}
			g.rank = append(g.rank, rank)
		}
		g.class = append(g.class, c)
		g.keys = append(g.keys, key)
		g.lists = append(g.lists, sites)
		g.maxRank = max(g.maxRank, len(sites))
	}
	return g, nil
}

// codeIndex maps country or continent codes to list indexes: two-letter
// codes (configuration validation allows no other) as 16-bit keys in a
// sorted slice searched by halves, so a geo decision compares integers,
// not strings, and hashes nothing. Each key sits beside its list index:
// a search reads one slice (eight entries a cache line), not two.
type codeIndex struct {
	ents []codeEnt
}

type codeEnt struct {
	key  uint16
	list int32
}

func cmpCodeEnt(e codeEnt, k uint16) int { return cmp.Compare(e.key, k) }

// codeKey is code's key; false when code is not two bytes long.
func codeKey(code string) (uint16, bool) {
	if len(code) != 2 {
		return 0, false
	}
	return uint16(code[0])<<8 | uint16(code[1]), true
}

// add records code -> li, keeping the keys sorted whatever the order;
// false for a code not two bytes long.
func (c *codeIndex) add(code string, li int) bool {
	k, ok := codeKey(code)
	if !ok {
		return false
	}
	i, found := slices.BinarySearchFunc(c.ents, k, cmpCodeEnt)
	if found {
		c.ents[i].list = int32(li)
		return true
	}
	c.ents = slices.Insert(c.ents, i, codeEnt{key: k, list: int32(li)})
	return true
}

// find returns the list index of code. Not inlined (see hasMember).
//
//go:noinline
func (c *codeIndex) find(code string) (int, bool) {
	k, ok := codeKey(code)
	if !ok {
		return 0, false
	}
	ents := c.ents
	lo, hi := 0, len(ents)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch e := ents[m]; {
		case e.key == k:
			return int(e.list), true
		case e.key < k:
			lo = m + 1
		default:
			hi = m
		}
	}
	return 0, false
}

// geoStage keeps the members of the sites the client's map entry lists,
// one tier per site in the listed order; or, without a map, orders every
// member nearest first, one tier per distance. When the client's most
// specific entry lists no site with a member left, the next entry decides
// (country, then continent, then default); when none does, or the
// client's coordinates are unknown, it leaves the list as it is: an answer
// from another site beats none.
// Messages for explain are only built when explaining.
func (p *Pool) geoStage(c *Client, s *Scratch) {
	g := p.geo
	a := c.Addr.Unmap()
	if !a.IsValid() {
		if s.ex != nil {
			s.ex.stageNote = "no client address: order kept"
		}
		return
	}
	if !g.byMap {
		p.nearest(a, s)
		return
	}
	chosen, scope, l, cand, n := g.entry(a, s, nil)
	s.scope = max(s.scope, scope)
	if s.ex != nil {
		p.explainMap(a, l, cand[:n], chosen, s)
	}
	if chosen < 0 {
		return
	}
	p.applyRank(g.rank[g.class[chosen]], s)
}

// geoFrom is geoStage over a family's up members from pre, that
// family's precomputed results: the same choice of entry and the same
// list, with no pass over the members. It fills s's list and reports
// true when an entry decides; when none does (the geo stage keeps every
// member) s's list is left for the caller to fill.
func (p *Pool) geoFrom(c *Client, s *Scratch, pre []geoPre) bool {
	a := c.Addr.Unmap()
	if !a.IsValid() {
		return false
	}
	g := p.geo
	chosen, scope, _, _, _ := g.entry(a, s, pre)
	s.scope = max(s.scope, scope)
	if chosen < 0 {
		return false
	}
	r := &pre[g.class[chosen]]
	s.idx = append(s.idx[:0], r.idx...)
	s.tier = append(s.tier[:0], r.tier...)
	return true
}

// applyRank keeps the members rank lists and orders them by it, one tier
// per rank.
func (p *Pool) applyRank(rank []uint64, s *Scratch) {
	for j, i := range s.idx {
		s.keep[j] = rank[i] != noRank
		s.key[i] = rank[i]
	}
	s.compact()
	p.tierByKey(s)
}

// entry chooses the map entry that decides for client address a:
// candidates most specific first (the longest CIDR key, the country, the
// continent, default), the first that lists the site of a member still
// in s's list, -1 for none. The database is only asked when no CIDR entry
// decides. It returns the scope the choice depends on and, for explain,
// the client's location and the candidates. With pre (the geo stage's
// result over the up members, precomputeGeo) an entry is listed when its
// result is not empty; without, s's list is scanned.
func (g *geoPlan) entry(a netip.Addr, s *Scratch, pre []geoPre) (chosen, scope int, l geo.Location, cand [4]int, n int) {
	li, scope, ok := g.cidr.Lookup(a)
	if ok {
		cand[n], n = li, n+1
		if g.hasMember(li, s, pre) {
			return li, scope, l, cand, n
		}
	}
	if g.locates && g.loc != nil {
		l = g.loc.Locate(a)
		scope = max(scope, l.Bits)
		if x, ok := g.country.find(l.Country); ok && l.Country != "" {
			cand[n], n = x, n+1
		}
		if x, ok := g.continent.find(l.Continent); ok && l.Continent != "" {
			cand[n], n = x, n+1
		}
	}
	if g.def >= 0 {
		cand[n], n = g.def, n+1
	}
	for _, li := range cand[:n] {
		if g.hasMember(li, s, pre) {
			return li, scope, l, cand, n
		}
	}
	return -1, scope, l, cand, n
}

// hasMember reports whether entry li lists a site with a member in s's
// list (with pre: in the precomputed result). Not inlined, and neither is
// codeIndex.find: entry calls each from two places, and one copy of
// their code keeps a geo query's instructions in fewer cache lines.
//
//go:noinline
func (g *geoPlan) hasMember(li int, s *Scratch, pre []geoPre) bool {
	if pre != nil {
		return len(pre[g.class[li]].idx) > 0
	}
	return g.listed(li, s)
}

// geoPre is the geo stage's result for one distinct site list over one
// family's up members: the members it keeps in tier order and the tiers'
// ends.
type geoPre struct {
	idx, tier []int
}

// maxGeoPre bounds the members precomputeGeo stores per family (distinct
// site lists times members); a larger map is decided per query. A
// variable for tests.
var maxGeoPre = 1 << 18

// precomputeGeo runs the geo stage of a chain that starts healthy, geo
// over each family's up members for every distinct site list of the map:
// states change far less often than queries come, so such a chain's
// first two stages are then a map lookup and a copy (run). Without a map,
// or for a map too large, it stores nothing.
func (p *Pool) precomputeGeo() {
	p.geoUp = [2][]geoPre{}
	g := p.geo
	if g == nil || !g.byMap || len(p.chain) < 2 || p.chain[0] != stHealthy || p.chain[1] != stGeo ||
		len(g.rank)*len(p.Members) > maxGeoPre {
		return
	}
	s := NewScratch(len(p.Members))
	s.begin(p)
	for f, up := range p.upMembers {
		pre := make([]geoPre, len(g.rank))
		for c, rank := range g.rank {
			s.idx = append(s.idx[:0], up...)
			s.tier = append(s.tier[:0], len(s.idx))
			p.applyRank(rank, s)
			pre[c] = geoPre{idx: slices.Clone(s.idx), tier: slices.Clone(s.tier)}
		}
		p.geoUp[f] = pre
	}
}

// listed reports whether map entry li lists the site of a member still
// in the list.
func (g *geoPlan) listed(li int, s *Scratch) bool {
	rank := g.rank[g.class[li]]
	for _, i := range s.idx {
		if rank[i] != noRank {
			return true
		}
	}
	return false
}

func (p *Pool) explainMap(a netip.Addr, l geo.Location, cand []int, chosen int, s *Scratch) {
	g := p.geo
	var b strings.Builder
	fmt.Fprintf(&b, "map %q, client %s", g.mapName, a)
	if g.locates && g.loc != nil {
		fmt.Fprintf(&b, " (%s)", describe(l))
	}
	b.WriteString(": ")
	for _, li := range cand {
		fmt.Fprintf(&b, "%s -> %v", g.keys[li], g.lists[li])
		if li == chosen {
			s.ex.geoList = g.lists[li]
			break
		}
		b.WriteString(" has no member left; ")
	}
	switch {
	case len(cand) == 0:
		b.WriteString("no entry matches and there is no default: order kept")
	case chosen < 0:
		b.WriteString(": order kept")
	}
	s.ex.stageNote = b.String()
}

func describe(l geo.Location) string {
	if !l.Found {
		return fmt.Sprintf("not in the geo database, network /%d", l.Bits)
	}
	return fmt.Sprintf("country %q continent %q, network /%d", l.Country, l.Continent, l.Bits)
}

// nearest orders members by great-circle distance from the client, one
// tier per distinct distance, members without a location last.
func (p *Pool) nearest(a netip.Addr, s *Scratch) {
	g := p.geo
	if g.loc == nil {
		if s.ex != nil {
			s.ex.stageNote = "no geo database: order kept"
		}
		return
	}
	l := g.loc.Locate(a)
	s.scope = max(s.scope, l.Bits)
	if !l.HasCoords {
		if s.ex != nil {
			s.ex.stageNote = fmt.Sprintf("client %s has no coordinates (%s): order kept", a, describe(l))
		}
		return
	}
	// Rank the few distinct locations by distance, then members by their
	// location's rank.
	cv := geo.VecOf(l.Lat, l.Lon)
	nl := len(g.locs)
	ord, dist := s.lord[:nl], s.ldist[:nl]
	for li, v := range g.locs {
		// 1-cos is 0 (same place) to 2 (antipodes), growing with the
		// great-circle distance.
		dist[li] = 1 - cv.Dot(v)
		ord[li] = li
		for j := li; j > 0 && dist[ord[j-1]] > dist[li]; j-- {
			ord[j], ord[j-1] = ord[j-1], ord[j]
		}
	}
	rank := s.lrank[:nl]
	for r, li := range ord {
		rank[li] = r
		if r > 0 && dist[li] == dist[ord[r-1]] {
			rank[li] = rank[ord[r-1]]
		}
	}
	for _, i := range s.idx {
		s.key[i] = uint64(nl)
		if li := g.memLoc[i]; li >= 0 {
			s.key[i] = uint64(rank[li])
		}
	}
	p.tierByKey(s)
	if s.ex != nil {
		s.ex.stageNote = fmt.Sprintf("client %s at [%.2f, %.2f] (%s): nearest first", a, l.Lat, l.Lon, describe(l))
		s.ex.client = [2]float64{l.Lat, l.Lon}
		s.ex.hasClient = true
	}
}

// tierByKey orders the whole list by s.key, small ranks below
// p.geo.maxRank, keeping the present order among equals (a counting sort),
// and cuts it into one tier per rank.
func (p *Pool) tierByKey(s *Scratch) {
	nr := p.geo.maxRank
	cnt := s.rcnt[:nr+1]
	clear(cnt)
	for _, i := range s.idx {
		cnt[s.key[i]+1]++
	}
	s.tier = s.tier[:0]
	for r := 1; r <= nr; r++ {
		if cnt[r] > 0 {
			s.tier = append(s.tier, cnt[r-1]+cnt[r])
		}
		cnt[r] += cnt[r-1]
	}
	tmp := s.tmp[:len(s.idx)]
	for _, i := range s.idx {
		tmp[cnt[s.key[i]]] = i
		cnt[s.key[i]]++
	}
	copy(s.idx, tmp)
}

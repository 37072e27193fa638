package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.yaml.in/yaml/v3"
)

// Presets are the policy names a pool may use instead of a chain, and the
// chains they stand for. Package selector implements the stages.
var Presets = map[string][]string{
	"roundrobin": {"healthy", "roundrobin", "first"},
	"weighted":   {"healthy", "weighted", "first"},
	"geo":        {"healthy", "geo", "weighted", "first"},
	// Members of the chosen group take turns: without an ordering
	// stage, the first listed would take every client that uses the
	// first address.
	"failover": {"healthy", "priority", "roundrobin", "first"},
	"load":     {"healthy", "load", "first"},
	"sticky":   {"healthy", "sticky", "first"},
	// The fastest members (within the tolerance band) share by weight.
	"latency": {"healthy", "latency", "weighted", "first"},
}

// Stages are the stage names a chain may hold.
var Stages = map[string]bool{
	"healthy": true, "geo": true, "priority": true, "weighted": true,
	"roundrobin": true, "load": true, "sticky": true, "first": true,
	"latency": true, "spill": true,
}

// Fill modes: what a first stage does when the first tier (the nearest
// site, the chosen priority group, the fastest band) has fewer members
// than answers.
const (
	FillFirstTier = "first_tier" // answer from the first tier alone (the default, as gdnsd's metafo)
	FillNextTier  = "next_tier"  // fill up from the next tiers in order
)

var adminModes = map[string]bool{"auto": true, "up": true, "down": true, "drain": true}

// Pool is a set of members that answer a POOL name, and how to choose.
type Pool struct {
	// Policy is a preset (roundrobin, weighted, geo, failover, load,
	// sticky) that expands to a chain; Chain spells the stages out instead.
	Policy string   `yaml:"policy"`
	Chain  []string `yaml:"chain"`
	// Map names the geo map the geo stage uses; without one the geo stage
	// orders sites by distance.
	Map string `yaml:"map"`
	// Answers is how many addresses an answer carries; 0 means every
	// member the chain keeps.
	Answers int `yaml:"answers"`
	// TTL of the answers, seconds; 0 means the POOL record's own TTL.
	TTL        int        `yaml:"ttl"`
	Check      string     `yaml:"check"`
	AllDown    string     `yaml:"all_down"` // all | none | fallback:<pool>
	MinHealthy MinHealthy `yaml:"min_healthy"`
	// StickyPrefix is how wide a client subnet shares a sticky member.
	StickyPrefix StickyPrefix `yaml:"sticky_prefix"`
	// Initial is a member's state before its first probe round: up or down.
	Initial string `yaml:"initial"`
	// Fill is first_tier (default) or next_tier: see FillFirstTier.
	Fill string `yaml:"fill"`
	// MaxRTT drops, in the latency stage, members whose RTT is above it
	// (unless every member is); 0: none dropped. Tolerance is the band
	// above the fastest member's RTT within which members count as equal
	// (default 5ms).
	MaxRTT    Duration `yaml:"max_rtt"`
	Tolerance Duration `yaml:"tolerance"`
	// SpillAt is the fraction of a site's (or member's) declared capacity
	// past which the spill stage sheds the excess share of its clients
	// (default 0.9).
	SpillAt float64  `yaml:"spill_at"`
	Members []Member `yaml:"members"`
}

// StickyPrefix is the client prefix length per family for sticky pools.
type StickyPrefix struct {
	IPv4 int `yaml:"ipv4"`
	IPv6 int `yaml:"ipv6"`
}

// MinHealthy is a count ("2") or a percentage ("50%") of a priority
// group's members.
type MinHealthy struct {
	Count   int
	Percent int
	set     bool
}

func (m *MinHealthy) UnmarshalYAML(n *yaml.Node) error {
	v := strings.TrimSpace(n.Value)
	if p, ok := strings.CutSuffix(v, "%"); ok {
		pct, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || pct < 1 || pct > 100 {
			return lineError(n, "min_healthy %q: a percentage is 1%% to 100%%", v)
		}
		*m = MinHealthy{Percent: pct, set: true}
		return nil
	}
	cnt, err := strconv.Atoi(v)
	if err != nil || cnt < 1 {
		return lineError(n, "min_healthy %q: write a count of at least 1 or a percentage like 50%%", v)
	}
	*m = MinHealthy{Count: cnt, set: true}
	return nil
}

// Of returns how many of a group of n members must be up.
func (m MinHealthy) Of(n int) int {
	if m.Percent > 0 {
		return (n*m.Percent + 99) / 100
	}
	if m.Count > 0 {
		return m.Count
	}
	return 1
}

// Member is one backend of a pool.
type Member struct {
	// Address is an IPv4 or IPv6 address, or a host name (answered as a
	// CNAME to it).
	Address string `yaml:"address"`
	Site    string `yaml:"site"`
	// Weight is the member's share in weighted choice (default 1).
	Weight int `yaml:"weight"`
	// Priority groups members for failover: lower is preferred (default 1).
	Priority int `yaml:"priority"`
	// Location overrides the site's [latitude, longitude].
	Location []float64 `yaml:"location"`
	// Capacity is the member's capacity, in the unit its load check
	// reports: the load stage orders by load/capacity (1 when not
	// declared), and the spill stage sheds a member's clients past the
	// pool's spill_at fraction of it (only when declared; a site's
	// capacity, when declared, counts instead).
	Capacity float64 `yaml:"capacity"`
	// Probe is where checks go when that differs from Address: an
	// address, or address:port.
	Probe string `yaml:"probe"`
	// Admin is the operator's state: auto (default), up, down or drain.
	Admin string `yaml:"admin"`
}

// ChainOf returns the stages pool p runs, its own chain or its preset's.
func ChainOf(p Pool) []string {
	if len(p.Chain) > 0 {
		return p.Chain
	}
	return Presets[p.Policy]
}

func (c *Config) poolDefaults() {
	for name, p := range c.Pools {
		if p.Policy == "" && len(p.Chain) == 0 {
			p.Policy = "roundrobin"
		}
		if p.AllDown == "" {
			p.AllDown = "all"
		}
		if p.Initial == "" {
			p.Initial = "up"
		}
		if p.StickyPrefix.IPv4 == 0 {
			p.StickyPrefix.IPv4 = 24
		}
		if p.StickyPrefix.IPv6 == 0 {
			p.StickyPrefix.IPv6 = 56
		}
		if p.Fill == "" {
			p.Fill = FillFirstTier
		}
		if p.Tolerance == 0 {
			p.Tolerance = Duration(5 * time.Millisecond)
		}
		if p.SpillAt == 0 {
			p.SpillAt = 0.9
		}
		for i := range p.Members {
			m := &p.Members[i]
			if m.Weight == 0 {
				m.Weight = 1
			}
			if m.Priority == 0 {
				m.Priority = 1
			}
			if m.Admin == "" {
				m.Admin = "auto"
			}
		}
		c.Pools[name] = p
	}
}

func (c *Config) validatePool(name string, add func(string, string, ...any)) {
	pl := c.Pools[name]
	p := "pools." + name
	if pl.Policy != "" && len(pl.Chain) > 0 {
		add(p+".chain", "pool %q: give policy: or chain:, not both", name)
	}
	if pl.Policy != "" {
		if _, ok := Presets[pl.Policy]; !ok {
			add(p+".policy", "pool %q: policy %q is not one of roundrobin, weighted, geo, failover, load, sticky, latency (or write a chain:)", name, pl.Policy)
		}
	}
	for i, st := range pl.Chain {
		if !Stages[st] {
			add(fmt.Sprintf("%s.chain.%d", p, i), "pool %q: chain stage %q is not one of healthy, geo, priority, latency, spill, weighted, roundrobin, load, sticky, first", name, st)
		}
	}
	chain := ChainOf(pl)
	uses := func(stage string) bool {
		for _, s := range chain {
			if s == stage {
				return true
			}
		}
		return false
	}
	c.validateChain(name, add)
	if pl.Map != "" {
		if m, ok := c.Geo.Maps[pl.Map]; !ok {
			add(p+".map", "pool %q: geo map %q is not under geo.maps", name, pl.Map)
		} else if !uses("geo") {
			add(p+".map", "pool %q: map %q is only read by the geo stage, which this pool's chain does not run (use policy: geo, or add geo to the chain)", name, pl.Map)
		} else if c.Geo.Database == "" && mapLocates(m) {
			add(p+".map", "pool %q: geo map %q has country or continent keys, which need geo.database: set one, or keep to CIDR keys and default", name, pl.Map)
		}
	} else if uses("geo") && c.Geo.Database == "" {
		add(chainPath(p, pl), "pool %q: the geo stage without a map: chooses the nearest site from the client's coordinates, which need geo.database: set one, or give the pool a map:", name)
	}
	if pl.Answers < 0 {
		add(p+".answers", "pool %q: answers must be 0 (all) or more", name)
	} else if pl.Answers > 0 && len(chain) > 0 && !uses("first") {
		add(p+".answers", "pool %q: answers: %d is applied by the first stage: end the chain with first", name, pl.Answers)
	}
	if pl.MinHealthy.set && len(chain) > 0 && !uses("priority") {
		add(p+".min_healthy", "pool %q: min_healthy is read by the priority stage, which this pool's chain does not run (use policy: failover, or add priority to the chain)", name)
	}
	if pl.TTL < 0 || pl.TTL > 604800 {
		add(p+".ttl", "pool %q: ttl %d: write 0 (the POOL record's TTL) to 604800", name, pl.TTL)
	}
	if pl.Check != "" {
		if _, ok := c.Checks[pl.Check]; !ok {
			add(p+".check", "pool %q: check %q is not under checks:", name, pl.Check)
		}
	}
	switch {
	case pl.AllDown == "all", pl.AllDown == "none":
	case strings.HasPrefix(pl.AllDown, "fallback:"):
		fb := strings.TrimPrefix(pl.AllDown, "fallback:")
		if _, ok := c.Pools[fb]; !ok || fb == name {
			add(p+".all_down", "pool %q: all_down fallback names pool %q, which is not another pool", name, fb)
		} else if c.fallbackLoops(name) {
			add(p+".all_down", "pool %q: all_down fallbacks form a loop", name)
		}
	default:
		add(p+".all_down", "pool %q: all_down %q: write all, none or fallback:<pool>", name, pl.AllDown)
	}
	if pl.Fill != FillFirstTier && pl.Fill != FillNextTier {
		add(p+".fill", "pool %q: fill %q: write first_tier (answer from the nearest site or first group alone) or next_tier (fill up from the next ones)", name, pl.Fill)
	}
	if pl.MaxRTT < 0 || pl.MaxRTT > Duration(time.Minute) {
		add(p+".max_rtt", "pool %q: max_rtt %v: write a duration up to 1m, like 150ms (0: no limit)", name, pl.MaxRTT.D())
	} else if pl.MaxRTT > 0 && len(chain) > 0 && !uses("latency") {
		add(p+".max_rtt", "pool %q: max_rtt is read by the latency stage, which this pool's chain does not run (use policy: latency, or add latency to the chain)", name)
	}
	if pl.Tolerance < 0 || pl.Tolerance > Duration(time.Minute) {
		add(p+".tolerance", "pool %q: tolerance %v: write a duration up to 1m, like 5ms", name, pl.Tolerance.D())
	}
	if !(pl.SpillAt > 0 && pl.SpillAt <= 1) {
		add(p+".spill_at", "pool %q: spill_at %g: write a fraction of capacity above 0 and at most 1, like 0.9", name, pl.SpillAt)
	}
	if uses("latency") && pl.Check == "" {
		add(chainPath(p, pl), "pool %q: the latency stage orders by the RTTs its check measures: give the pool a check:", name)
	} else if uses("latency") && c.Checks[pl.Check].Type == "exec" {
		add(p+".check", "pool %q: the latency stage needs RTTs, which an exec check does not measure: use a tcp, http, https, dns or load check", name)
	}
	if pl.Initial != "up" && pl.Initial != "down" {
		add(p+".initial", "pool %q: initial %q: write up or down", name, pl.Initial)
	}
	if v := pl.StickyPrefix.IPv4; v < 1 || v > 32 {
		add(p+".sticky_prefix.ipv4", "pool %q: sticky_prefix ipv4 %d: write 1 to 32", name, v)
	}
	if v := pl.StickyPrefix.IPv6; v < 1 || v > 128 {
		add(p+".sticky_prefix.ipv6", "pool %q: sticky_prefix ipv6 %d: write 1 to 128", name, v)
	}
	if len(pl.Members) == 0 {
		add(p+".members", "pool %q has no members", name)
	}
	seen := map[string]int{}
	for i, m := range pl.Members {
		mp := fmt.Sprintf("%s.members.%d", p, i)
		if m.Address == "" {
			add(mp, "pool %q member %d has no address", name, i)
		} else if _, err := netip.ParseAddr(m.Address); err != nil {
			switch _, ok := dns.IsDomainName(m.Address); {
			case !ok || strings.ContainsAny(m.Address, " :/"):
				add(mp+".address", "pool %q: %q is neither an IP address nor a host name", name, m.Address)
			case allNumeric(m.Address):
				// 127.0.1.300 is a typo, not a host name to resolve.
				add(mp+".address", "pool %q: member %q looks like an IPv4 address but is not one", name, m.Address)
			}
		}
		if j, dup := seen[m.Address]; dup {
			add(mp+".address", "pool %q: member %q is listed twice (also member %d)", name, m.Address, j)
		}
		seen[m.Address] = i
		if m.Site != "" {
			if _, ok := c.Sites[m.Site]; !ok {
				add(mp+".site", "pool %q: site %q is not under sites:", name, m.Site)
			}
		}
		if m.Weight < 1 || m.Weight > 1_000_000 {
			add(mp+".weight", "pool %q: weight %d: write 1 to 1000000 (to take a member out, use admin: drain)", name, m.Weight)
		}
		if m.Priority < 1 {
			add(mp+".priority", "pool %q: priority %d: write 1 (most preferred) or more", name, m.Priority)
		}
		if m.Capacity < 0 || math.IsNaN(m.Capacity) || math.IsInf(m.Capacity, 0) {
			add(mp+".capacity", "pool %q: capacity %g: write a positive number in the unit the load check reports (or leave it out)", name, m.Capacity)
		}
		if len(m.Location) > 0 {
			if err := checkLocation(m.Location); err != nil {
				add(mp+".location", "pool %q: %v", name, err)
			}
		}
		if m.Probe != "" {
			if _, err := ParseProbeTarget(m.Probe); err != nil {
				add(mp+".probe", "pool %q: %v", name, err)
			}
		}
		if !adminModes[m.Admin] {
			add(mp+".admin", "pool %q: admin %q: write auto, up, down or drain", name, m.Admin)
		}
		if uses("geo") && pl.Map == "" && m.Site == "" && len(m.Location) == 0 {
			add(mp, "pool %q: nearest-site choice needs a site: or location: on every member (or give the pool a map:)", name)
		}
		if uses("geo") && pl.Map != "" && m.Site == "" {
			add(mp, "pool %q: a geo map chooses by site: give this member a site:", name)
		}
	}
}

// orderingStages put members in an order; a chain runs at most one, as a
// second would only undo the first.
var orderingStages = map[string]bool{"weighted": true, "roundrobin": true, "load": true, "sticky": true}

// SpillPosition is where the spill stage runs in a chain that does not
// name it: before the ordering stage (or first, or at the end), after
// the stages that make tiers. It is a no-op for a pool that declares no
// capacity and sheds nothing.
func SpillPosition(chain []string) int {
	for i, st := range chain {
		if orderingStages[st] || st == "first" {
			return i
		}
	}
	return len(chain)
}

// tieringStages cut the list into tiers in preference order; they run
// before the spill stage, which moves clients between tiers, and before
// the ordering stage, which orders within them.
var tieringStages = map[string]bool{"geo": true, "priority": true, "latency": true}

// validateChain checks the shape of an explicit chain: healthy first,
// each stage once, at most one ordering stage, first last.
func (c *Config) validateChain(name string, add func(string, string, ...any)) {
	pl := c.Pools[name]
	p := "pools." + name
	if len(pl.Chain) == 0 {
		return
	}
	seen := map[string]int{}
	ordering := ""
	for i, st := range pl.Chain {
		at := fmt.Sprintf("%s.chain.%d", p, i)
		if !Stages[st] {
			continue // reported above
		}
		if j, dup := seen[st]; dup {
			add(at, "pool %q: chain stage %q appears twice (also at position %d)", name, st, j+1)
			continue
		}
		seen[st] = i
		switch {
		case st == "healthy" && i != 0:
			add(at, "pool %q: healthy must be the chain's first stage: the stages before it would count down members", name)
		case st == "first" && i != len(pl.Chain)-1:
			add(at, "pool %q: first must be the chain's last stage: it cuts the answer to its final length", name)
		case (tieringStages[st] || st == "spill") && ordering != "":
			add(at, "pool %q: %s must come before the ordering stage %s: it decides the tiers %s orders within", name, st, ordering, ordering)
		case tieringStages[st] && seenAny(seen, "spill"):
			add(at, "pool %q: %s must come before spill: spill moves clients between the tiers it makes", name, st)
		case orderingStages[st] && ordering != "":
			add(at, "pool %q: chain orders members twice (%s, then %s): the second would undo the first; keep one", name, ordering, st)
		case orderingStages[st]:
			ordering = st
		}
	}
	if _, ok := seen["healthy"]; !ok {
		add(p+".chain", "pool %q: chain has no healthy stage, so it would answer members that are down: start it with healthy (admin: up forces a member up)", name)
	}
}

func seenAny(seen map[string]int, st string) bool { _, ok := seen[st]; return ok }

// chainPath is where a pool's policy is written: its chain or its
// policy key.
func chainPath(p string, pl Pool) string {
	if len(pl.Chain) > 0 {
		return p + ".chain"
	}
	return p + ".policy"
}

// mapLocates reports whether a geo map has keys that need a database.
func mapLocates(m map[string][]string) bool {
	for k := range m {
		if strings.HasPrefix(k, "country:") || strings.HasPrefix(k, "continent:") {
			return true
		}
	}
	return false
}

// fallbackLoops reports whether following all_down fallbacks from pool
// name comes back to a pool already visited.
func (c *Config) fallbackLoops(name string) bool {
	seen := map[string]bool{}
	for cur := name; ; {
		if seen[cur] {
			return true
		}
		seen[cur] = true
		next, ok := strings.CutPrefix(c.Pools[cur].AllDown, "fallback:")
		if !ok {
			return false
		}
		if _, exists := c.Pools[next]; !exists {
			return false
		}
		cur = next
	}
}

// ProbeTarget is where a member's checks go when it differs from the
// member's address.
type ProbeTarget struct {
	Addr netip.Addr
	Port int // 0: the check's port
}

// ParseProbeTarget parses "addr" or "addr:port" ("[v6]:port").
func ParseProbeTarget(s string) (ProbeTarget, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return ProbeTarget{Addr: a}, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return ProbeTarget{}, fmt.Errorf("probe %q: write an address or address:port", s)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return ProbeTarget{}, fmt.Errorf("probe %q: %q is not an IP address", s, host)
	}
	pn, err := strconv.Atoi(port)
	if err != nil || pn < 1 || pn > 65535 {
		return ProbeTarget{}, fmt.Errorf("probe %q: port %q is out of range", s, port)
	}
	return ProbeTarget{Addr: a, Port: pn}, nil
}

// allNumeric reports whether every label of the name is digits only: no
// host name looks like that (RFC 1123 2.1 keeps the top label alphabetic
// for this reason), a mistyped IPv4 address does.
func allNumeric(name string) bool {
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if l == "" || strings.Trim(l, "0123456789") != "" {
			return false
		}
	}
	return true
}

package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Presets are the policy names a pool may use instead of a chain, and the
// chains they stand for. Package selector implements the stages.
var Presets = map[string][]string{
	"roundrobin": {"healthy", "roundrobin", "first"},
	"weighted":   {"healthy", "weighted", "first"},
	"geo":        {"healthy", "geo", "weighted", "first"},
	"failover":   {"healthy", "priority", "first"},
	"load":       {"healthy", "load", "first"},
	"sticky":     {"healthy", "sticky", "first"},
}

// Stages are the stage names a chain may hold.
var Stages = map[string]bool{
	"healthy": true, "geo": true, "priority": true, "weighted": true,
	"roundrobin": true, "load": true, "sticky": true, "first": true,
}

var (
	checkTypes = map[string]bool{"tcp": true, "http": true, "https": true, "dns": true, "exec": true, "load": true}
	adminModes = map[string]bool{"auto": true, "up": true, "down": true, "drain": true}
)

func (c *Config) setDefaults() {
	n := &c.Node
	if n.Name == "" {
		n.Name, _ = os.Hostname()
	}
	if len(n.DNS) == 0 {
		n.DNS = []string{":53"}
	}
	if n.Data == "" && n.Name != "" {
		n.Data = "data/" + n.Name
	}
	if n.TCPIdle == 0 {
		n.TCPIdle = Duration(10 * time.Second)
	}
	if n.UDPSize == 0 {
		n.UDPSize = 1232
	}
	for name, ch := range c.Checks {
		if ch.Interval == 0 {
			ch.Interval = Duration(5 * time.Second)
		}
		if ch.Timeout == 0 {
			ch.Timeout = min(Duration(2*time.Second), ch.Interval)
		}
		if ch.Rise == 0 {
			ch.Rise = 2
		}
		if ch.Fall == 0 {
			ch.Fall = 3
		}
		if (ch.Type == "http" || ch.Type == "https" || ch.Type == "load") && ch.Method == "" {
			ch.Method = "GET"
		}
		if (ch.Type == "http" || ch.Type == "https" || ch.Type == "load") && ch.Path == "" {
			ch.Path = "/"
		}
		if (ch.Type == "http" || ch.Type == "https") && len(ch.ExpectStatus) == 0 {
			ch.ExpectStatus = []int{200}
		}
		if ch.Type == "dns" && ch.QType == "" {
			ch.QType = "A"
		}
		if ch.Type == "dns" && ch.ExpectRcode == "" {
			ch.ExpectRcode = "NOERROR"
		}
		c.Checks[name] = ch
	}
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
		for i := range p.Members {
			m := &p.Members[i]
			if m.Weight == 0 {
				m.Weight = 1
			}
			if m.Priority == 0 {
				m.Priority = 1
			}
			if m.Capacity == 0 {
				m.Capacity = 1
			}
			if m.Admin == "" {
				m.Admin = "auto"
			}
		}
		c.Pools[name] = p
	}
}

// ChainOf returns the stages pool p runs, its own chain or its preset's.
func ChainOf(p Pool) []string {
	if len(p.Chain) > 0 {
		return p.Chain
	}
	return Presets[p.Policy]
}

// validate checks everything that can be checked without reading another
// file, and reports each problem at its line.
func (c *Config) validate(file string) Problems {
	var ps Problems
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{File: file, Line: c.pos.line(path), Msg: fmt.Sprintf(format, args...)})
	}

	n := c.Node
	if n.Name == "" {
		add("node.name", "node.name is empty: give each node a stable name")
	}
	for i, a := range n.DNS {
		if _, _, err := net.SplitHostPort(a); err != nil {
			add(fmt.Sprintf("node.dns.%d", i), "dns listener %q: write host:port, like 127.0.0.1:53 or [::1]:53", a)
		}
	}
	for _, f := range []struct{ key, v string }{{"node.api", n.API}, {"node.raft", n.Raft}} {
		if f.v == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(f.v); err != nil {
			add(f.key, "%s %q: write host:port", f.key, f.v)
		}
	}
	if n.UDPSockets < 0 || n.UDPSockets > 256 {
		add("node.udp_sockets", "udp_sockets %d: write 0 (one per CPU) to 256", n.UDPSockets)
	}
	if n.UDPSize < 512 || n.UDPSize > 65535 {
		add("node.udp_size", "udp_size %d: write 512 to 65535 (1232 is the safe default)", n.UDPSize)
	}
	if n.TCPIdle < 0 {
		add("node.tcp_idle_timeout", "tcp_idle_timeout must be positive")
	}

	for _, name := range sortedKeys(c.Sites) {
		if err := checkLocation(c.Sites[name].Location); err != nil {
			add("sites."+name+".location", "site %q: %v", name, err)
		}
	}
	for _, mapName := range sortedKeys(c.Geo.Maps) {
		m := c.Geo.Maps[mapName]
		for _, key := range sortedKeys(m) {
			path := "geo.maps." + mapName + "." + key
			if err := checkGeoKey(key); err != nil {
				add(path, "geo map %q: %v", mapName, err)
			}
			if len(m[key]) == 0 {
				add(path, "geo map %q key %q lists no sites", mapName, key)
			}
			for _, s := range m[key] {
				if _, ok := c.Sites[s]; !ok {
					add(path, "geo map %q key %q names site %q, which is not under sites:", mapName, key, s)
				}
			}
		}
	}

	for _, name := range sortedKeys(c.Checks) {
		c.validateCheck(name, add)
	}
	for _, name := range sortedKeys(c.Pools) {
		c.validatePool(name, add)
	}

	if len(c.Zones) == 0 {
		add("zones", "no zones: list at least one zone file under zones:")
	}
	for i, z := range c.Zones {
		if z.File == "" {
			add(fmt.Sprintf("zones.%d", i), "zone entry without file:")
		}
		if z.Origin != "" {
			if _, ok := dns.IsDomainName(z.Origin); !ok {
				add(fmt.Sprintf("zones.%d.origin", i), "origin %q is not a domain name", z.Origin)
			}
		}
	}
	if c.Dispatcher != nil {
		c.Dispatcher.check(func(path, msg string) { add(path, "%s", msg) })
	}
	return ps
}

func (c *Config) validateCheck(name string, add func(string, string, ...any)) {
	ch := c.Checks[name]
	p := "checks." + name
	if !checkTypes[ch.Type] {
		add(p+".type", "check %q: type %q is not one of tcp, http, https, dns, exec, load", name, ch.Type)
	}
	if ch.Port < 0 || ch.Port > 65535 {
		add(p+".port", "check %q: port %d is out of range", name, ch.Port)
	}
	if ch.Type == "tcp" && ch.Port == 0 {
		add(p, "check %q: a tcp check needs port:", name)
	}
	if ch.Timeout > ch.Interval {
		add(p+".timeout", "check %q: timeout %v is longer than interval %v", name, ch.Timeout.D(), ch.Interval.D())
	}
	if ch.Interval < Duration(10*time.Millisecond) {
		add(p+".interval", "check %q: interval %v is shorter than 10ms", name, ch.Interval.D())
	}
	if ch.Rise < 1 || ch.Fall < 1 {
		add(p, "check %q: rise and fall must be at least 1", name)
	}
	for _, s := range ch.ExpectStatus {
		if s < 100 || s > 599 {
			add(p+".expect_status", "check %q: %d is not an HTTP status", name, s)
		}
	}
	if ch.Type == "exec" && len(ch.Command) == 0 {
		add(p, "check %q: an exec check needs command: [program, args...]", name)
	}
	if ch.Type == "dns" {
		if _, ok := dns.StringToType[strings.ToUpper(ch.QType)]; !ok {
			add(p+".qtype", "check %q: qtype %q is not a DNS type", name, ch.QType)
		}
		if _, ok := dns.StringToRcode[strings.ToUpper(ch.ExpectRcode)]; !ok {
			add(p+".expect_rcode", "check %q: expect_rcode %q is not an rcode (NOERROR, NXDOMAIN, ...)", name, ch.ExpectRcode)
		}
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
			add(p+".policy", "pool %q: policy %q is not one of roundrobin, weighted, geo, failover, load, sticky (or write a chain:)", name, pl.Policy)
		}
	}
	for i, st := range pl.Chain {
		if !Stages[st] {
			add(fmt.Sprintf("%s.chain.%d", p, i), "pool %q: chain stage %q is not one of healthy, geo, priority, weighted, roundrobin, load, sticky, first", name, st)
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
	if pl.Map != "" {
		if _, ok := c.Geo.Maps[pl.Map]; !ok {
			add(p+".map", "pool %q: geo map %q is not under geo.maps", name, pl.Map)
		}
	}
	if pl.Answers < 0 {
		add(p+".answers", "pool %q: answers must be 0 (all) or more", name)
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
			if _, ok := dns.IsDomainName(m.Address); !ok || strings.ContainsAny(m.Address, " :/") {
				add(mp+".address", "pool %q: %q is neither an IP address nor a host name", name, m.Address)
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
		if m.Capacity <= 0 {
			add(mp+".capacity", "pool %q: capacity must be positive", name)
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

func checkLocation(loc []float64) error {
	if len(loc) != 2 {
		return fmt.Errorf("location: write [latitude, longitude]")
	}
	if loc[0] < -90 || loc[0] > 90 || loc[1] < -180 || loc[1] > 180 {
		return fmt.Errorf("location [%g, %g] is off the globe: latitude -90..90, longitude -180..180", loc[0], loc[1])
	}
	return nil
}

func checkGeoKey(key string) error {
	switch kind, code, _ := strings.Cut(key, ":"); {
	case key == "default":
		return nil
	case kind == "continent":
		if !continents[code] {
			return fmt.Errorf("%q: continent codes are AF, AN, AS, EU, NA, OC, SA", key)
		}
		return nil
	case kind == "country":
		if len(code) != 2 || strings.ToUpper(code) != code {
			return fmt.Errorf("%q: a country is its ISO 3166 code in capitals, like country:GB", key)
		}
		return nil
	}
	if _, err := netip.ParsePrefix(key); err != nil {
		return fmt.Errorf("key %q: write continent:XX, country:XX, a CIDR like 192.0.2.0/24, or default", key)
	}
	return nil
}

var continents = map[string]bool{"AF": true, "AN": true, "AS": true, "EU": true, "NA": true, "OC": true, "SA": true}

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

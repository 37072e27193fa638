package config

import (
	"fmt"
	"maps"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
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
	c.checkDefaults()
	c.poolDefaults()
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
	if n.ProbeWait < 0 || n.ProbeWait > Duration(5*time.Minute) {
		add("node.probe_wait", "probe_wait %v: write 0 (the default, 3s) up to 5m", n.ProbeWait.D())
	}
	if q := n.QueryLog; q != nil && !(q.Sample > 0 && q.Sample <= 1) {
		add("node.query_log.sample", "query_log sample %g: write the share of queries to log, above 0 up to 1 (0.01: one in a hundred; 1: every query), or leave query_log out", q.Sample)
	}
	if n.TCPIdle < 0 {
		add("node.tcp_idle_timeout", "tcp_idle_timeout must be positive")
	}
	c.validateTLS(add)
	c.validateAPIToken(add)

	for _, name := range slices.Sorted(maps.Keys(c.Sites)) {
		if err := checkLocation(c.Sites[name].Location); err != nil {
			add("sites."+name+".location", "site %q: %v", name, err)
		}
		if cp := c.Sites[name].Capacity; cp < 0 || math.IsNaN(cp) || math.IsInf(cp, 0) {
			add("sites."+name+".capacity", "site %q: capacity %g: write a positive number in the unit its members' load check reports (or leave it out)", name, cp)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Nodes)) {
		ns := c.Nodes[name]
		np := "nodes." + name
		switch {
		case len(ns.Location) > 0 && ns.Site != "":
			add(np, "node %q: give location: or site:, not both", name)
		case len(ns.Location) > 0:
			if err := checkLocation(ns.Location); err != nil {
				add(np+".location", "node %q: %v", name, err)
			}
		case ns.Site != "":
			if _, ok := c.Sites[ns.Site]; !ok {
				add(np+".site", "node %q: site %q is not under sites:", name, ns.Site)
			} else if len(c.Sites[ns.Site].Location) != 2 {
				add(np+".site", "node %q: site %q has no location", name, ns.Site)
			}
		default:
			add(np, "node %q: say where it is: location: [latitude, longitude] or site: NAME", name)
		}
	}
	for _, mapName := range slices.Sorted(maps.Keys(c.Geo.Maps)) {
		m := c.Geo.Maps[mapName]
		for _, key := range slices.Sorted(maps.Keys(m)) {
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

	for _, name := range slices.Sorted(maps.Keys(c.Checks)) {
		c.validateCheck(name, add)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Pools)) {
		c.validatePool(name, add)
	}

	// A dispatcher-only configuration (tern dispatch) serves no DNS.
	if len(c.Zones) == 0 && (c.Dispatcher == nil || len(c.Pools) > 0) {
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
		if z.DNSSEC != nil {
			z.DNSSEC.check(fmt.Sprintf("zones.%d.dnssec", i), add)
		}
	}
	c.validateDNS(add)
	if c.Dispatcher != nil {
		c.Dispatcher.check(func(path, msg string) { add(path, "%s", msg) })
		c.Dispatcher.checkRefs(func(name string) bool { _, ok := c.Checks[name]; return ok },
			func(path, msg string) { add(path, "%s", msg) })
	}
	return ps
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

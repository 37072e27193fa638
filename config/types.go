package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration written as "1s", "500ms" in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return lineError(n, "%q is not a duration (write it like 1s or 500ms)", n.Value)
	}
	*d = Duration(v)
	return nil
}

// Check describes how members are probed. Which fields apply depends on
// Type; see package probes.
type Check struct {
	Type     string   `yaml:"type"` // tcp | http | https | dns | exec | load
	Port     int      `yaml:"port"`
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	Rise     int      `yaml:"rise"`
	Fall     int      `yaml:"fall"`

	// http, https and load
	Method        string `yaml:"method"`
	Path          string `yaml:"path"`
	Host          string `yaml:"host"`
	ExpectStatus  []int  `yaml:"expect_status"`
	ExpectBody    string `yaml:"expect_body"`
	ExpectBodyRE  string `yaml:"expect_body_regexp"`
	TLSServerName string `yaml:"tls_server_name"`
	TLSSkipVerify bool   `yaml:"tls_skip_verify"`

	// dns
	Query        string `yaml:"query"`
	QType        string `yaml:"qtype"`
	ExpectRcode  string `yaml:"expect_rcode"`
	ExpectAnswer string `yaml:"expect_answer"`

	// exec
	Command []string `yaml:"command"`
}

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
	Initial string   `yaml:"initial"`
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
	// Capacity is the member's capacity for the load stage (default 1).
	Capacity float64 `yaml:"capacity"`
	// Probe is where checks go when that differs from Address: an
	// address, or address:port.
	Probe string `yaml:"probe"`
	// Admin is the operator's state: auto (default), up, down or drain.
	Admin string `yaml:"admin"`
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// lineError reports a bad value as a *yaml.TypeError, which the decoder
// collects and goes on past, so one bad value does not hide the others.
func lineError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
}

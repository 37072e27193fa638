package zones

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/config"
)

// Zone is one loaded, validated zone. It never changes after loading and is
// safe for concurrent use.
type Zone struct {
	// Origin is the zone's apex: canonical, lowercase, fully qualified.
	Origin string
	// SOA is the zone's SOA record.
	SOA *dns.SOA
	// File names the zone file as the operator knows it.
	File string

	// soaFile and soaLine say where the SOA record was written (an
	// $INCLUDE file perhaps), for warnings about the zone as a whole.
	soaFile string
	soaLine int

	apex    *node
	nodes   map[string]*node
	records []dns.RR
}

// node is one name in the zone: an owner of records or an empty
// non-terminal above one.
type node struct {
	name    string
	sets    []rrset  // by type; POOL and CNAME are kept apart
	cname   []dns.RR // the CNAME RRset, when there is one
	pool    int      // index of the pool a POOL record names; -1 for none
	poolTTL uint32
	parent  *node    // the name one label up; nil at the apex
	cut     *node    // the delegation at or above this name; nil when authoritative
	wild    *node    // the node "*.name", when it exists
	ns      []dns.RR // at a delegation: the child's NS RRset
	// glue: at a delegation, addresses of its in-zone name servers, the
	// inDomain ones (names below the cut, RFC 9471's in-domain glue)
	// first.
	glue     []dns.RR
	inDomain int
}

type rrset struct {
	typ uint16
	rrs []dns.RR
}

func (n *node) set(t uint16) []dns.RR {
	for i := range n.sets {
		if n.sets[i].typ == t {
			return n.sets[i].rrs
		}
	}
	return nil
}

// NS returns the apex NS RRset.
func (z *Zone) NS() []dns.RR { return z.apex.set(dns.TypeNS) }

// Records returns every record of the zone, POOL records included, in
// canonical order (RFC 4034 section 6.1: by owner name, then type, then
// rdata). The slice and the records are shared: do not modify them.
func (z *Zone) Records() []dns.RR { return z.records }

// Set is the zones one server answers for. It never changes after it is
// built and is safe for concurrent use.
type Set struct {
	zones    []*Zone
	byOrigin map[string]*Zone
	// extra holds the additional-section records of every NS, MX and SRV
	// RRset the set serves, keyed by the RRset's first record (see
	// additional): the query path only reads it.
	extra map[dns.RR][]dns.RR
}

var (
	errDuplicateOrigin = errors.New("duplicate zone origin")
	errOutside         = errors.New("outside the zone file's directory")
	errPOOLArgs        = errors.New("POOL takes exactly one pool name, like: www 30 IN POOL web")
)

// NewSet makes a Set of zones; two zones with the same origin are an error.
func NewSet(zones ...*Zone) (*Set, error) {
	s := &Set{byOrigin: make(map[string]*Zone, len(zones))}
	for _, z := range zones {
		if other, dup := s.byOrigin[z.Origin]; dup {
			return nil, fmt.Errorf("zone %s from %s and %s: %w", z.Origin, other.File, z.File, errDuplicateOrigin)
		}
		s.byOrigin[z.Origin] = z
		s.zones = append(s.zones, z)
	}
	slices.SortFunc(s.zones, func(a, b *Zone) int { return compareNames(a.Origin, b.Origin) })
	s.extra = s.additional()
	return s, nil
}

// Zones returns the zones in canonical order of their origins.
func (s *Set) Zones() []*Zone { return s.zones }

// Zone returns the zone whose origin is the longest match for qname (in any
// case), or nil when no zone holds qname.
func (s *Set) Zone(qname string) *Zone {
	if qname == "" {
		return nil
	}
	if !needsFold(qname) {
		return zoneOf(s, qname)
	}
	var buf [maxName]byte
	return zoneOf(s, lower(&buf, qname))
}

func zoneOf[S name](s *Set, name S) *Zone {
	for off := 0; off >= 0; off = parent(name, off) {
		if z := s.byOrigin[string(name[off:])]; z != nil {
			return z
		}
	}
	return nil
}

// Lookup finds the zone for qname and looks qname up in it, lowercasing the
// name once. The zone is nil (and the Result's Kind NotInZone) when no zone
// holds qname. DS at the apex of a zone whose parent zone the set also
// serves is looked up in the parent, where DS records belong, when the
// parent delegates that name (has NS records there); else the child
// answers it (RFC 4035 section 3.1.4.1). A Success answer of type NS, MX
// or SRV carries in Additional the addresses of its targets (see
// Result.Additional).
func (s *Set) Lookup(qname string, qtype uint16) (*Zone, Result) {
	if qname == "" {
		return nil, Result{Kind: NotInZone}
	}
	if !needsFold(qname) {
		return setLookup(s, qname, qtype)
	}
	var buf [maxName]byte
	return setLookup(s, lower(&buf, qname), qtype)
}

func setLookup[S name](s *Set, name S, qtype uint16) (*Zone, Result) {
	z := zoneOf(s, name)
	if z == nil {
		return nil, Result{Kind: NotInZone}
	}
	// DS records live in the parent (RFC 4035 section 3.1.4.1): when the
	// set serves the parent too and the parent delegates the child, DS
	// at the child's apex is the parent's. A parent without that
	// delegation knows nothing of the name (it would say NXDOMAIN for a
	// name that exists): the child answers, NODATA with its SOA.
	if qtype == dns.TypeDS && len(z.Origin) == len(name) {
		if p := s.delegator(z); p != nil {
			return p, lookup(p, name, qtype)
		}
	}
	r := lookup(z, name, qtype)
	if r.Kind == Success && len(r.Answer) > 0 {
		switch r.Answer[0].Header().Rrtype {
		case dns.TypeNS, dns.TypeMX, dns.TypeSRV:
			r.Additional = s.extra[r.Answer[0]]
		}
	}
	return z, r
}

// parentZone returns the served zone holding the name one label above
// z's origin, or nil (z is the root, or its parent is not served).
func (s *Set) parentZone(z *Zone) *Zone {
	off := parent(z.Origin, 0)
	if off < 0 {
		return nil
	}
	return zoneOf(s, z.Origin[off:])
}

// delegator returns the served parent zone of z when it delegates z's
// origin (has NS records there), else nil.
func (s *Set) delegator(z *Zone) *Zone {
	p := s.parentZone(z)
	if p == nil {
		return nil
	}
	if n := p.nodes[z.Origin]; n == nil || n.cut != n {
		return nil
	}
	return p
}

// Warnings returns what is legal in the set but likely a mistake, each
// at the file and line it concerns: a served zone whose served parent
// zone does not delegate it (no NS records at the child's name). A
// resolver that learns of the parent first is told the child's names do
// not exist; a checker of the delegation finds none. They do not stop
// the set from serving.
func (s *Set) Warnings() config.Problems {
	var ws config.Problems
	for _, z := range s.zones {
		p := s.parentZone(z)
		if p == nil || s.delegator(z) != nil {
			continue
		}
		label := strings.TrimSuffix(z.Origin, "."+p.Origin)
		if p.Origin == "." {
			label = strings.TrimSuffix(z.Origin, ".")
		}
		ws = append(ws, config.Problem{File: z.soaFile, Line: z.soaLine, Msg: fmt.Sprintf(
			"zone %s is served with its parent zone %s (%s), which does not delegate it: add its NS records to the parent, like `%s IN NS %s`",
			z.Origin, p.Origin, p.File, label, firstNS(z))})
	}
	return ws
}

// firstNS names the first name server of z's apex NS RRset, for an
// example record.
func firstNS(z *Zone) string {
	for _, rr := range z.NS() {
		if ns, ok := rr.(*dns.NS); ok {
			return ns.Ns
		}
	}
	return "<name server>"
}

// additional resolves, once per set, the targets of every NS, MX and SRV
// RRset to the A and AAAA records the set serves for them (RFC 1035
// sections 3.3.9, 3.3.11 and 4.3.2 step 6; RFC 2782), in the order of
// the RRset's records, each address RRset once. A target is resolved in
// whichever served zone holds it, by its exact name: a target that is
// not an owner of addresses there is left out, and so are targets under
// a delegation (not authoritative data), aliases (RFC 2181 section 10.3),
// wildcard matches, and POOL names, whose answer depends on health and
// on the client: the resolver asks for those and gets the pool's live
// answer. A delegation's own NS RRset is not here: referrals carry glue
// (Result.Glue).
func (s *Set) additional() map[dns.RR][]dns.RR {
	out := map[dns.RR][]dns.RR{}
	for _, z := range s.zones {
		for _, n := range z.nodes {
			if n.cut != nil {
				continue // at or below a delegation: referrals only
			}
			for _, set := range n.sets {
				if rrs := s.targetAddresses(set.rrs); len(rrs) > 0 {
					out[set.rrs[0]] = rrs
				}
			}
		}
	}
	return out
}

func (s *Set) targetAddresses(rrs []dns.RR) []dns.RR {
	var out []dns.RR
	seen := map[string]bool{}
	for _, rr := range rrs {
		var target string
		switch r := rr.(type) {
		case *dns.NS:
			target = r.Ns
		case *dns.MX:
			target = r.Mx
		case *dns.SRV:
			target = r.Target
		default:
			return nil
		}
		t, ok := canonical(target)
		if !ok || t == "." || seen[t] {
			continue // "." is the null MX (RFC 7505) or "no service" SRV
		}
		seen[t] = true
		z := zoneOf(s, t)
		if z == nil {
			continue
		}
		n := z.nodes[t]
		if n == nil || n.cut != nil || n.cname != nil || n.pool >= 0 {
			continue
		}
		out = append(out, n.set(dns.TypeA)...)
		out = append(out, n.set(dns.TypeAAAA)...)
	}
	return out
}

// Load parses and validates every zone of c (c.Zones, read from c.FS with
// paths resolved by c.Resolve), resolving POOL names to indexes into
// c.PoolNames(). It returns every problem found; the Set is nil unless
// there are none.
func Load(c *config.Config) (*Set, config.Problems) {
	RegisterPOOL()
	pools := make(map[string]int, len(c.Pools))
	for i, name := range c.PoolNames() {
		pools[name] = i
	}
	var (
		ps    config.Problems
		zones []*Zone
		seen  = map[string]int{} // origin -> index in c.Zones
	)
	for i, zc := range c.Zones {
		at := func(key string) config.Problem {
			return config.Problem{File: c.Name, Line: c.Line(fmt.Sprintf("zones.%d%s", i, key))}
		}
		if zc.File == "" {
			continue // config reports it
		}
		display := c.DisplayPath(zc.File)
		if c.FS == nil {
			p := at(".file")
			p.Msg = fmt.Sprintf("zone file %q: the configuration has no file system to read it from", display)
			ps = append(ps, p)
			continue
		}
		file := c.Resolve(zc.File)
		data, err := fs.ReadFile(c.FS, file)
		if err != nil {
			p := at(".file")
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			p.Msg = fmt.Sprintf("zone file %q: %v", display, err)
			ps = append(ps, p)
			continue
		}
		z, zps := parse(c.FS, file, display, zc.Origin, data, pools)
		ps = append(ps, zps...)
		if z.Origin == "" {
			continue
		}
		if j, dup := seen[z.Origin]; dup {
			p := at("")
			p.Msg = fmt.Sprintf("zone %s is listed twice: zones.%d (%s) already loads it", z.Origin, j, c.DisplayPath(c.Zones[j].File))
			ps = append(ps, p)
			continue
		}
		seen[z.Origin] = i
		zones = append(zones, z)
	}
	if len(ps) > 0 {
		ps.Sort()
		return nil, ps
	}
	s, err := NewSet(zones...)
	if err != nil { // cannot happen: duplicates are reported above
		return nil, config.Problems{{File: c.Name, Msg: err.Error()}}
	}
	return s, nil
}

// Parse parses and validates one zone file, file in fsys, named display in
// problems. origin is the zone's name; when empty, the owner of the file's
// SOA record is. pools maps pool names to the indexes POOL records resolve
// to. The Zone is nil unless there are no problems.
func Parse(fsys fs.FS, file, display, origin string, pools map[string]int) (*Zone, config.Problems) {
	RegisterPOOL()
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return nil, config.Problems{{File: display, Msg: fmt.Sprintf("read zone file: %v", err)}}
	}
	z, ps := parse(fsys, file, display, origin, data, pools)
	if len(ps) > 0 {
		return nil, ps
	}
	return z, nil
}

// parse reads and builds a zone. It always returns a Zone, with its Origin
// set when one could be determined; the Zone is only fit to serve when
// there are no problems.
func parse(fsys fs.FS, file, display, origin string, data []byte, pools map[string]int) (*Zone, config.Problems) {
	entries, ps, syntaxErr := read(fsys, file, display, origin, data)
	b := &builder{file: display, pools: pools, truncated: syntaxErr}
	z := b.build(origin, entries)
	ps = append(ps, b.ps...)
	ps.Sort()
	return z, ps
}

// sortEntries orders records by type, then canonical rdata.
func sortEntries(es []*entry) {
	sort.SliceStable(es, func(i, j int) bool {
		ti, tj := es[i].rr.Header().Rrtype, es[j].rr.Header().Rrtype
		if ti != tj {
			return ti < tj
		}
		return string(es[i].rdata) < string(es[j].rdata)
	})
}

package zones

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/config"
)

// builder validates the records of one zone and compiles them into a Zone,
// collecting every problem on the way.
type builder struct {
	file      string // display name of the zone file
	pools     map[string]int
	truncated bool // a syntax error stopped the parse: skip "missing" checks
	ps        config.Problems
}

func (b *builder) problem(e *entry, format string, args ...any) {
	b.ps = append(b.ps, config.Problem{File: e.file, Line: e.line, Msg: fmt.Sprintf(format, args...)})
}

// owner collects the records of one name while building.
type owner struct {
	name string
	key  string // sortKey(name), for canonical order
	sets map[uint16][]*entry
	seen map[string]*entry // type and rdata -> the record, to drop duplicates
}

func (o *owner) types() []uint16 {
	ts := make([]uint16, 0, len(o.sets))
	for t := range o.sets {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return ts
}

func typeName(t uint16) string {
	if t == TypePOOL {
		return "POOL"
	}
	return dns.Type(t).String()
}

func at(e *entry, from *entry) string {
	if e.file == from.file {
		return fmt.Sprintf("line %d", e.line)
	}
	return fmt.Sprintf("%s:%d", e.file, e.line)
}

func (b *builder) build(origin string, entries []entry) *Zone {
	z := &Zone{File: b.file}
	apex := ""
	if origin != "" {
		c, ok := canonical(origin)
		if !ok {
			b.ps = append(b.ps, config.Problem{File: b.file, Msg: fmt.Sprintf("origin %q is not a domain name", origin)})
			return z
		}
		apex = c
	} else {
		for i := range entries {
			if entries[i].rr.Header().Rrtype == dns.TypeSOA {
				apex, _ = canonical(entries[i].rr.Header().Name)
				break
			}
		}
		if apex == "" {
			if !b.truncated {
				b.ps = append(b.ps, config.Problem{File: b.file, Msg: "no SOA record, so the zone has no name: add `@ IN SOA ...` at its apex (and $ORIGIN, or origin: in the configuration)"})
			}
			return z
		}
	}
	z.Origin = apex

	owners := map[string]*owner{}
	var soa *entry
	buf := make([]byte, 65536+512)
	for i := range entries {
		e := &entries[i]
		h := e.rr.Header()
		name, ok := canonical(h.Name)
		if !ok {
			b.problem(e, "owner %q is not a domain name", h.Name)
			continue
		}
		h.Name = name
		t := h.Rrtype
		switch {
		case h.Class != dns.ClassINET:
			b.problem(e, "%s %s: class %s: Tern serves class IN only", name, typeName(t), dns.Class(h.Class))
			continue
		case !isSubdomain(name, apex):
			b.problem(e, "%s %s is outside the zone %s: write a name under the zone's origin", name, typeName(t), apex)
			continue
		case t == 0 || t == dns.TypeOPT || (t >= 128 && t <= 255):
			b.problem(e, "%s: %s is not a record type a zone can hold", name, typeName(t))
			continue
		case t == dns.TypeDNAME:
			// Served as plain data, a DNAME would leave the names below it
			// answered NXDOMAIN instead of redirected: refuse it outright.
			b.problem(e, "%s DNAME: Tern does not implement DNAME redirection (RFC 6672); use CNAME records for the names you need", name)
			continue
		}
		rdata, err := packRdata(e.rr, buf)
		if err != nil {
			b.problem(e, "%s %s: %v", name, typeName(t), err)
			continue
		}
		if len(rdata) == 0 && t != dns.TypeNULL && t != dns.TypeAPL {
			b.problem(e, "%s %s has no data: write the record's value after its type", name, typeName(t))
			continue
		}
		e.rdata = rdata
		if t == dns.TypeSOA {
			switch {
			case name != apex:
				b.problem(e, "SOA record at %s: a zone's only SOA belongs at its apex %s", name, apex)
				continue
			case soa != nil:
				b.problem(e, "second SOA record at the apex (the first is at %s): a zone has exactly one", at(soa, e))
				continue
			}
			soa = e
		}
		if p, ok := poolOf(e.rr); ok {
			if err := e.rr.(*dns.PrivateRR).Data.(*POOL).Err(); err != nil {
				b.problem(e, "%s: %v", name, err)
				continue
			}
			if _, ok := b.pools[p]; !ok {
				b.problem(e, "%s POOL %s: %s", name, p, b.unknownPool(p))
				continue
			}
		}
		o := owners[name]
		if o == nil {
			o = &owner{name: name, key: sortKey(name), sets: map[uint16][]*entry{}, seen: map[string]*entry{}}
			owners[name] = o
		}
		// A record written twice is one record (RFC 2181 section 5), but
		// not with two TTLs.
		key := string([]byte{byte(t >> 8), byte(t)}) + string(rdata)
		if d := o.seen[key]; d != nil {
			if d.rr.Header().Ttl != h.Ttl {
				b.problem(e, "%s %s is written again with TTL %d; at %s its TTL is %d: give it one TTL", name, typeName(t), h.Ttl, at(d, e), d.rr.Header().Ttl)
			}
			continue
		}
		o.seen[key] = e
		o.sets[t] = append(o.sets[t], e)
	}

	if soa == nil && !b.truncated {
		b.ps = append(b.ps, config.Problem{File: b.file, Msg: fmt.Sprintf("zone %s has no SOA record: add one at its apex, like `@ IN SOA ns1 hostmaster 1 3600 600 604800 60`", apex)})
	}
	if o := owners[apex]; (o == nil || len(o.sets[dns.TypeNS]) == 0) && !b.truncated {
		p := config.Problem{File: b.file, Msg: fmt.Sprintf("zone %s has no NS records at its apex: add `@ IN NS <name server>`", apex)}
		if soa != nil {
			p.File, p.Line = soa.file, soa.line
		}
		b.ps = append(b.ps, p)
	}
	if soa != nil {
		z.SOA, _ = soa.rr.(*dns.SOA)
		z.soaFile, z.soaLine = soa.file, soa.line
	}

	// Every name an NS record points at: addresses there are glue.
	nsTargets := map[string]bool{}
	for _, o := range owners {
		for _, e := range o.sets[dns.TypeNS] {
			if t, ok := canonical(e.rr.(*dns.NS).Ns); ok {
				nsTargets[t] = true
			}
		}
	}
	names := make([]*owner, 0, len(owners))
	for _, o := range owners {
		names = append(names, o)
	}
	sort.Slice(names, func(i, j int) bool { return names[i].key < names[j].key })

	b.compile(z, apex, names)
	for _, o := range names {
		b.checkName(o, z.nodes[o.name].cut, owners, nsTargets)
	}
	return z
}

// checkName applies the rules that concern one name's records together.
// cutNode is the delegation at or above o's name, nil when none.
func (b *builder) checkName(o *owner, cutNode *node, owners map[string]*owner, nsTargets map[string]bool) {
	ts := o.types()
	first := func(t uint16) *entry { return o.sets[t][0] }

	for _, t := range ts {
		set := o.sets[t]
		if t == dns.TypeRRSIG || t == TypePOOL {
			continue // RRSIGs over different types may carry different TTLs; two POOLs are reported below
		}
		for _, e := range set[1:] {
			if e.rr.Header().Ttl != set[0].rr.Header().Ttl {
				b.problem(e, "%s %s: TTL %d differs from TTL %d of the same RRset at %s (RFC 2181 section 5.2): give every record of an RRset one TTL",
					o.name, typeName(t), e.rr.Header().Ttl, set[0].rr.Header().Ttl, at(set[0], e))
			}
		}
	}

	if pools := o.sets[TypePOOL]; len(pools) > 0 {
		for _, e := range pools[1:] {
			q, _ := poolOf(pools[0].rr)
			b.problem(e, "%s has more than one POOL record (the first, naming %s, is at %s): a name answers from one pool", o.name, q, at(pools[0], e))
		}
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME} {
			if e := o.sets[t]; len(e) > 0 {
				b.problem(e[0], "%s has a POOL record (at %s) and %s records: a POOL name answers A and AAAA from its pool; remove the %s records or the POOL",
					o.name, at(pools[0], e[0]), typeName(t), typeName(t))
			}
		}
	}

	if cn := o.sets[dns.TypeCNAME]; len(cn) > 0 {
		for _, e := range cn[1:] {
			b.problem(e, "%s has more than one CNAME (the first is at %s): a name is an alias of one name only", o.name, at(cn[0], e))
		}
		for _, t := range ts {
			switch t {
			case dns.TypeCNAME, TypePOOL, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
				continue // POOL beside CNAME is reported above; DNSSEC records may accompany a CNAME
			}
			b.problem(first(t), "%s has a CNAME (at %s) and %s records: a CNAME must be the only data at its name (RFC 1034 section 3.6.2); remove one of them",
				o.name, at(cn[0], first(t)), typeName(t))
		}
	}

	if cutNode != nil && cutNode.name == o.name && strings.HasPrefix(o.name, "*.") {
		b.problem(first(dns.TypeNS), "%s: a wildcard cannot be a delegation (RFC 4592 section 4.2); name the child zone", o.name)
	}

	if cutNode == nil {
		return
	}
	cut := cutNode.name
	c := owners[cut].sets[dns.TypeNS][0]
	for _, t := range ts {
		glue := (t == dns.TypeA || t == dns.TypeAAAA) && nsTargets[o.name]
		if o.name == cut && (t == dns.TypeNS || t == dns.TypeDS || t == dns.TypeRRSIG || t == dns.TypeNSEC) || glue {
			continue
		}
		for _, e := range o.sets[t] {
			switch {
			case t == dns.TypeA || t == dns.TypeAAAA:
				b.problem(e, "%s %s is at or below the delegation of %s (at %s) and no NS record names it, so it is not glue and would never be answered",
					o.name, typeName(t), cut, at(c, e))
			case o.name == cut:
				b.problem(e, "%s %s is at the delegation of %s (NS at %s): that data belongs in the child zone; only NS, DS and glue addresses stay in the parent",
					o.name, typeName(t), cut, at(c, e))
			default:
				b.problem(e, "%s %s is below the delegation of %s (at %s) and would never be answered: only the child's name server addresses (glue) belong there",
					o.name, typeName(t), cut, at(c, e))
			}
		}
	}
}

func (b *builder) unknownPool(p string) string {
	if len(b.pools) == 0 {
		return fmt.Sprintf("pool %q is not in the configuration, which has no pools: add it under pools:", p)
	}
	names := make([]string, 0, len(b.pools))
	for n := range b.pools {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if strings.EqualFold(n, p) {
			return fmt.Sprintf("pool %q is not in the configuration; did you mean %q? (pool names are case-sensitive)", p, n)
		}
	}
	return fmt.Sprintf("pool %q is not in the configuration (its pools: %s)", p, strings.Join(names, ", "))
}

// compile turns the owners into the Zone's lookup structures.
func (b *builder) compile(z *Zone, apex string, names []*owner) {
	z.nodes = make(map[string]*node, len(names)+1)
	z.apex = &node{name: apex, pool: -1}
	z.nodes[apex] = z.apex
	// ensure returns the node of name, creating it and the empty
	// non-terminals between it and the nearest existing ancestor (RFC 4592
	// section 2.2.2, RFC 8020).
	var ensure func(name string) *node
	ensure = func(name string) *node {
		if n := z.nodes[name]; n != nil {
			return n
		}
		n := &node{name: name, pool: -1}
		z.nodes[name] = n
		if p, ok := parentName(name); ok {
			n.parent = ensure(p)
		}
		return n
	}
	for _, o := range names {
		n := ensure(o.name)
		for _, t := range o.types() {
			es := slices.Clone(o.sets[t]) // the checks want file order
			sortEntries(es)
			rrs := make([]dns.RR, len(es))
			for i, e := range es {
				rrs[i] = e.rr
			}
			z.records = append(z.records, rrs...)
			switch t {
			case dns.TypeCNAME:
				n.cname = rrs[:1]
			case TypePOOL:
				p, _ := poolOf(rrs[0])
				if idx, ok := b.pools[p]; ok {
					n.pool, n.poolTTL = idx, rrs[0].Header().Ttl
				}
			default:
				n.sets = append(n.sets, rrset{typ: t, rrs: rrs})
			}
		}
	}
	// The delegation a name is under is the highest cut above it: a cut
	// is a name other than the apex with NS records.
	done := make(map[*node]bool, len(z.nodes))
	var cutOf func(n *node) *node
	cutOf = func(n *node) *node {
		if n == z.apex || n.parent == nil || done[n] {
			return n.cut
		}
		done[n] = true
		if c := cutOf(n.parent); c != nil {
			n.cut = c
		} else if len(n.set(dns.TypeNS)) > 0 {
			n.cut = n
		}
		return n.cut
	}
	for name, n := range z.nodes {
		cutOf(n)
		if w, ok := strings.CutPrefix(name, "*."); ok {
			if p := z.nodes[w]; p != nil {
				p.wild = n
			}
		}
	}
	for _, n := range z.nodes {
		if n.cut != n {
			continue
		}
		n.ns = n.set(dns.TypeNS)
		// In-domain glue first (RFC 9471: required), then sibling glue.
		for _, inDomain := range []bool{true, false} {
			seen := map[string]bool{}
			for _, rr := range n.ns {
				t, ok := canonical(rr.(*dns.NS).Ns)
				if !ok || seen[t] || !isSubdomain(t, apex) || isSubdomain(t, n.name) != inDomain {
					continue
				}
				seen[t] = true
				if g := z.nodes[t]; g != nil {
					n.glue = append(n.glue, g.set(dns.TypeA)...)
					n.glue = append(n.glue, g.set(dns.TypeAAAA)...)
				}
			}
			if inDomain {
				n.inDomain = len(n.glue)
			}
		}
	}
}

// packRdata returns rr's rdata in wire form (uncompressed), a fresh slice.
func packRdata(rr dns.RR, buf []byte) ([]byte, error) {
	end, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil, err
	}
	i := 0
	for i < end && buf[i] != 0 {
		i += int(buf[i]) + 1
	}
	i++ // the root label
	if i+10 > end {
		return nil, fmt.Errorf("packed record too short")
	}
	rdlen := int(binary.BigEndian.Uint16(buf[i+8:]))
	start := i + 10
	if start+rdlen != end {
		return nil, fmt.Errorf("packed record has rdlength %d, not %d", rdlen, end-start)
	}
	return bytes.Clone(buf[start:end]), nil
}

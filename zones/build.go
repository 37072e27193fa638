package zones

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/config"
)

// builder compiles the records of one zone into a Zone as the parser
// yields them, collecting every problem on the way. A record is checked
// and stored in compact form at once (its name in one arena, its wire
// rdata in another, the rest in a small struct without pointers), so the
// parsed dns.RR values die young. What only the build needs (each
// record's file and line, a name's parent) is dropped when it is done.
type builder struct {
	file      string // display name of the zone file
	origin    string // as configured: "" names the zone by its SOA
	pools     map[string]int
	poolRefs  map[string]int32 // the zone's own index of each pool it names: Zone.poolNames
	truncated bool             // a syntax error stopped the parse: skip "missing" checks
	ps        config.Problems

	apex string // the zone's name; "" until known
	// dead: no zone can be built (the configured origin is not a name):
	// records are no longer looked at.
	dead bool
	// pending holds the records read before the apex was known (no
	// origin configured, and no SOA yet).
	pending []pendingRR

	files    []string // display names, indexed by pos.file
	lastFile string
	lastIdx  uint32

	soa   *dns.SOA
	soaAt pos

	names []byte // every name, canonical
	// nodes are the names by the order they were first seen (their
	// name fields only), parents the name one label up of each (noNode
	// at the apex).
	nodes   []node
	parents []uint32
	keys    ordering
	// groups is checkName's, kept to be reused.
	groups []group
	idx    index
	recs   []brec // in file order
	data   []byte // every record's wire rdata
	buf    []byte // packs one record
	canon  [maxName]byte
}

type pendingRR struct {
	rr   dns.RR
	file string
	line int
}

// pos is where a record was written: an index into builder.files, and a
// line.
type pos struct{ file, line uint32 }

// brec is one record while building.
type brec struct {
	node  uint32
	ttl   uint32
	at    pos
	off   uint32 // rdata: data[off:off+rdlen]
	rdlen uint16
	typ   uint16
}

// newBuilder starts a zone named origin ("": by its SOA) of the zone file
// of text data.
func newBuilder(display, origin string, pools map[string]int, data []byte) *builder {
	b := &builder{file: display, origin: origin, pools: pools, buf: make([]byte, 65536+512)}
	b.sizeFor(data)
	if origin != "" {
		c, ok := canonical(origin)
		if !ok {
			b.ps = append(b.ps, config.Problem{File: display, Msg: fmt.Sprintf("origin %q is not a domain name", origin)})
			b.dead = true
			return b
		}
		b.setApex(c)
	}
	return b
}

// sizeFor sizes the arenas for a zone file of data: about a record a
// line, names about as long as the text.
func (b *builder) sizeFor(data []byte) {
	lines := bytes.Count(data, []byte{'\n'}) + 1
	b.recs = make([]brec, 0, lines)
	b.nodes = make([]node, 0, lines)
	b.parents = make([]uint32, 0, lines)
	b.names = make([]byte, 0, len(data))
	b.data = make([]byte, 0, len(data)/4)
	b.keys.keys = make([]byte, 0, len(data)/2)
	b.keys.ents = make([]keyEnt, 0, lines)
}

func (b *builder) nameOf(i uint32) string { return nodeName(b.nameText(), b.nodes, i) }

// nameText is names as a string sharing its bytes, for the index: valid
// while names is not appended to.
func (b *builder) nameText() string { return unsafe.String(unsafe.SliceData(b.names), len(b.names)) }

func (b *builder) rdata(r *brec) []byte { return b.data[r.off : r.off+uint32(r.rdlen)] }

func (b *builder) problem(at pos, format string, args ...any) {
	b.ps = append(b.ps, config.Problem{File: b.files[at.file], Line: int(at.line), Msg: fmt.Sprintf(format, args...)})
}

// at says where e is, as seen from a problem at from.
func (b *builder) at(e, from pos) string {
	if e.file == from.file {
		return fmt.Sprintf("line %d", e.line)
	}
	return fmt.Sprintf("%s:%d", b.files[e.file], e.line)
}

func (b *builder) pos(file string, line int) pos {
	if file != b.lastFile || len(b.files) == 0 {
		i := slices.Index(b.files, file)
		if i < 0 {
			i = len(b.files)
			b.files = append(b.files, file)
		}
		b.lastFile, b.lastIdx = file, uint32(i)
	}
	return pos{file: b.lastIdx, line: uint32(max(line, 0))}
}

func typeName(t uint16) string {
	if t == TypePOOL {
		return "POOL"
	}
	return dns.Type(t).String()
}

// setApex names the zone and makes its first node.
func (b *builder) setApex(apex string) {
	b.apex = apex
	b.idx = newIndex(cap(b.nodes))
	b.keys.apexKey = len(appendSortKey(nil, apex))
	b.names = append(b.names, apex...)
	b.newNode(0, len(apex), b.idx.hash(apex))
}

// add takes one record from the parser.
func (b *builder) add(rr dns.RR, file string, line int) {
	switch {
	case b.dead:
		return
	case b.apex == "":
		// Without an origin the zone is named by its SOA: hold what comes
		// before it (zone files nearly always start with it).
		if rr.Header().Rrtype != dns.TypeSOA {
			b.pending = append(b.pending, pendingRR{rr, file, line})
			return
		}
		apex, ok := canonical(rr.Header().Name)
		if !ok {
			b.dead = true // finish reports the zone has no name
			return
		}
		b.setApex(apex)
		for _, p := range b.pending {
			b.record(p.rr, p.file, p.line)
		}
		b.pending = nil
	}
	b.record(rr, file, line)
}

// record checks what can be checked of one record alone and stores it.
func (b *builder) record(rr dns.RR, file string, line int) {
	at := b.pos(file, line)
	h := rr.Header()
	name, ok := b.canonicalName(h.Name)
	if !ok {
		b.problem(at, "owner %q is not a domain name", h.Name)
		return
	}
	t := h.Rrtype
	switch {
	case h.Class != dns.ClassINET:
		b.problem(at, "%s %s: class %s: Tern serves class IN only", name, typeName(t), dns.Class(h.Class))
		return
	case !isSubdomain(name, b.apex):
		b.problem(at, "%s %s is outside the zone %s: write a name under the zone's origin", name, typeName(t), b.apex)
		return
	case t == 0 || t == dns.TypeOPT || (t >= 128 && t <= 255):
		b.problem(at, "%s: %s is not a record type a zone can hold", name, typeName(t))
		return
	case t == dns.TypeDNAME:
		// Served as plain data, a DNAME would leave the names below it
		// answered NXDOMAIN instead of redirected: refuse it outright.
		b.problem(at, "%s DNAME: Tern does not implement DNAME redirection (RFC 6672); use CNAME records for the names you need", name)
		return
	}
	h.Name = "." // packed for its rdata alone: the owner is name
	rdata, err := packRdata(rr, b.buf)
	if err != nil {
		b.problem(at, "%s %s: %v", name, typeName(t), err)
		return
	}
	if len(rdata) == 0 && t != dns.TypeNULL && t != dns.TypeAPL {
		b.problem(at, "%s %s has no data: write the record's value after its type", name, typeName(t))
		return
	}
	if t == dns.TypeSOA {
		switch {
		case name != b.apex:
			b.problem(at, "SOA record at %s: a zone's only SOA belongs at its apex %s", name, b.apex)
			return
		case b.soa != nil:
			b.problem(at, "second SOA record at the apex (the first is at %s): a zone has exactly one", b.at(b.soaAt, at))
			return
		}
		b.soa, b.soaAt = rr.(*dns.SOA), at
		b.soa.Hdr.Name = b.apex
	}
	if p, ok := poolOf(rr); ok {
		if err := rr.(*dns.PrivateRR).Data.(*POOL).Err(); err != nil {
			b.problem(at, "%s: %v", name, err)
			return
		}
		if _, ok := b.pools[p]; !ok {
			b.problem(at, "%s POOL %s: %s", name, p, b.unknownPool(p))
			return
		}
	}
	if len(b.data)+len(rdata) > math.MaxUint32 || len(b.recs) == math.MaxUint32-1 {
		b.problem(at, "%s %s: the zone holds more than 4 GiB of records: split it into several zones", name, typeName(t))
		return
	}
	off := len(b.data)
	b.data = grow(b.data, len(rdata))
	b.data = append(b.data, rdata...)
	b.recs = grow(b.recs, 1)
	b.recs = append(b.recs, brec{node: b.node(name), ttl: h.Ttl, at: at, off: uint32(off), rdlen: uint16(len(rdata)), typ: t})
}

// canonicalName is canonical without allocating for plain names: the
// result may then share b.canon, valid until the next call.
func (b *builder) canonicalName(name string) (string, bool) {
	if c, ok := plainCanonical(&b.canon, name); ok {
		return unsafe.String(unsafe.SliceData(c), len(c)), true
	}
	return canonical(name)
}

// node returns the node of name (canonical, in the zone), making it and
// the empty non-terminals between it and the nearest existing ancestor
// (RFC 4592 section 2.2.2, RFC 8020).
func (b *builder) node(name string) uint32 {
	h := b.idx.hash(name)
	if i := b.idx.probe(name, h, b.nameText(), b.nodes); i != noNode {
		return i
	}
	off := len(b.names)
	b.names = grow(b.names, len(name))
	b.names = append(b.names, name...)
	return b.newNode(uint32(off), len(name), h)
}

// newNode makes the node of the name at names[off:off+n], of hash h,
// which is not in the index. A parent's name is the tail of its child's:
// it shares the child's bytes.
func (b *builder) newNode(off uint32, n int, h uint64) uint32 {
	i := uint32(len(b.nodes))
	b.nodes = grow(b.nodes, 1)
	b.nodes = append(b.nodes, node{name: off, nlen: uint16(n)})
	b.parents = grow(b.parents, 1)
	b.parents = append(b.parents, noNode)
	b.idx.insert(i, h, b.nameText(), b.nodes)
	name := b.nameOf(i)
	b.keys.add(i, name)
	if name == b.apex {
		return i
	}
	p := parent(name, 0) // a name below the apex has a parent
	ph := b.idx.hash(name[p:])
	pi := b.idx.probe(name[p:], ph, b.nameText(), b.nodes)
	if pi == noNode {
		pi = b.newNode(off+uint32(p), n-p, ph)
	}
	b.parents[i] = pi
	return i
}

// grow returns s with room for n more elements, doubling its capacity
// when it must grow: append grows large slices by a quarter, which
// copies an arena of a million records a dozen times.
func grow[T any](s []T, n int) []T {
	if len(s)+n <= cap(s) {
		return s
	}
	return slices.Grow(s, max(n, len(s)))
}

func (b *builder) unknownPool(p string) string {
	if len(b.pools) == 0 {
		return fmt.Sprintf("pool %q is not in the configuration, which has no pools: add it under pools:", p)
	}
	names := slices.Sorted(maps.Keys(b.pools))
	for _, n := range names {
		if strings.EqualFold(n, p) {
			return fmt.Sprintf("pool %q is not in the configuration; did you mean %q? (pool names are case-sensitive)", p, n)
		}
	}
	return fmt.Sprintf("pool %q is not in the configuration (its pools: %s)", p, strings.Join(names, ", "))
}

// finish applies the rules that concern the zone as a whole and compiles
// it. The Zone is only fit to serve when there are no problems.
func (b *builder) finish() *Zone {
	z := &Zone{File: b.file}
	if b.apex == "" {
		if b.origin == "" && !b.truncated {
			b.ps = append(b.ps, config.Problem{File: b.file, Msg: "no SOA record, so the zone has no name: add `@ IN SOA ...` at its apex (and $ORIGIN, or origin: in the configuration)"})
		}
		return z
	}
	z.Origin = b.apex
	if b.soa == nil && !b.truncated {
		b.ps = append(b.ps, config.Problem{File: b.file, Msg: fmt.Sprintf("zone %s has no SOA record: add one at its apex, like `@ IN SOA ns1 hostmaster 1 3600 600 604800 60`", b.apex)})
	}
	b.compile(z)
	if _, ok := z.setOf(0, dns.TypeNS); !ok && !b.truncated {
		p := config.Problem{File: b.file, Msg: fmt.Sprintf("zone %s has no NS records at its apex: add `@ IN NS <name server>`", b.apex)}
		if b.soa != nil {
			p.File, p.Line = b.files[b.soaAt.file], int(b.soaAt.line)
		}
		b.ps = append(b.ps, p)
	}
	if b.soa != nil {
		z.SOA = b.soa
		z.soaFile, z.soaLine = b.files[b.soaAt.file], int(b.soaAt.line)
		if s, ok := z.setOf(0, dns.TypeSOA); ok {
			d := z.data[z.sets[s].off:]
			z.soaData = d[6 : 6+int(binary.BigEndian.Uint16(d[4:]))]
		}
	}
	return z
}

// compile turns the records into the Zone's compact form, in canonical
// order, dropping duplicates, and applies the rules that concern one
// name's records together.
func (b *builder) compile(z *Zone) {
	order, rank := b.keys.order()
	n := len(order)

	// The records of each name, in file order (a counting sort).
	first := make([]uint32, n+1)
	for i := range b.recs {
		first[rank[b.recs[i].node]+1]++
	}
	for r := 1; r <= n; r++ {
		first[r] += first[r-1]
	}
	byName := make([]uint32, len(b.recs))
	next := slices.Clone(first[:n])
	for i := range b.recs {
		r := rank[b.recs[i].node]
		byName[next[r]] = uint32(i)
		next[r]++
	}
	next = nil

	// Every name an NS record points at: addresses there are glue.
	nsTarget := make([]bool, n)
	var tbuf []byte
	for i := range b.recs {
		if r := &b.recs[i]; r.typ == dns.TypeNS {
			var ok bool
			if tbuf, ok = appendCanonical(tbuf[:0], b.rdata(r)); ok {
				if t := b.idx.find(unsafe.String(unsafe.SliceData(tbuf), len(tbuf)), b.nameText(), b.nodes); t != noNode {
					nsTarget[rank[t]] = true
				}
			}
		}
	}

	size := 0
	for i := range b.recs {
		size += 6 + int(b.recs[i].rdlen)
	}
	z.nodes = make([]node, n)
	z.data = make([]byte, 0, size)
	parents := make([]uint32, n)
	cutNS := map[uint32]pos{} // the first NS record of every delegation
	for r := range n {
		bn := &b.nodes[order[r]]
		name := b.nameOf(order[r])
		zn := &z.nodes[r]
		*zn = node{name: bn.name, nlen: bn.nlen, sets: uint32(len(z.sets)), cut: noNode, wild: noNode}
		parents[r] = noNode
		if p := b.parents[order[r]]; p != noNode {
			parents[r] = rank[p]
		}

		recs := b.dedupe(name, byName[first[r]:first[r+1]])
		var a aux
		a.pool = -1
		for i := 0; i < len(recs); {
			t := b.recs[recs[i]].typ
			j := i + 1
			for j < len(recs) && b.recs[recs[j]].typ == t {
				j++
			}
			set := rrset{off: uint32(len(z.data)), n: uint32(j - i), typ: t}
			for _, k := range recs[i:j] {
				e := &b.recs[k]
				z.data = binary.BigEndian.AppendUint32(z.data, e.ttl)
				z.data = binary.BigEndian.AppendUint16(z.data, e.rdlen)
				z.data = append(z.data, b.rdata(e)...)
			}
			switch e := &b.recs[recs[i]]; t {
			case dns.TypeCNAME:
				start := len(b.names)
				var ok bool
				if b.names, ok = appendCanonical(b.names, b.rdata(e)); ok {
					a.cname, a.target, a.targetLen = true, uint32(start), uint16(len(b.names)-start)
				} else {
					b.names = b.names[:start]
				}
			case TypePOOL:
				name := poolName(b.rdata(e))
				if idx, ok := b.pools[name]; ok {
					ref, seen := b.poolRefs[name]
					if !seen {
						if b.poolRefs == nil {
							b.poolRefs = map[string]int32{}
						}
						ref = int32(len(z.poolNames))
						b.poolRefs[name] = ref
						z.poolNames = append(z.poolNames, name)
						z.poolIdx = append(z.poolIdx, int32(idx))
					}
					a.pool, a.poolTTL = ref, e.ttl
				}
			case dns.TypeNS:
				// The delegation a name is under is the highest cut
				// above it: a cut is a name other than the apex with NS
				// records. Parents come before their children.
				if r != 0 {
					zn.cut = uint32(r)
					cutNS[uint32(r)] = b.firstAt(recs[i:j])
				}
			}
			z.sets = append(z.sets, set)
			zn.nsets++
			i = j
		}
		if p := parents[r]; p != noNode && z.nodes[p].cut != noNode {
			zn.cut = z.nodes[p].cut
		}
		if a.cname || a.pool >= 0 {
			z.aux = append(z.aux, a)
			zn.aux = uint32(len(z.aux))
		}
		z.records += len(recs)
		var cutName string
		var cutAt pos
		if zn.cut != noNode {
			cutName, cutAt = b.nameOf(order[zn.cut]), cutNS[zn.cut]
		}
		b.checkName(name, recs, zn.cut, uint32(r), cutName, cutAt, nsTarget[r])
	}
	if cap(z.sets) > len(z.sets)+len(z.sets)/8 {
		z.sets = slices.Clone(z.sets)
	}

	z.names = string(b.names)
	z.index = b.idx
	z.index.renumber(rank)
	z.self = []*Zone{z}
	for r := range n {
		if strings.HasPrefix(z.nameOf(uint32(r)), "*.") && parents[r] != noNode {
			z.nodes[parents[r]].wild = uint32(r)
		}
		if z.nodes[r].cut == uint32(r) {
			z.delegation(uint32(r))
		}
	}
}

// delegation finds the glue of the delegation at node i: the addresses
// of its name servers found in the zone, in-domain glue first (RFC 9471:
// required), then sibling glue.
func (z *Zone) delegation(i uint32) {
	cut := z.nameOf(i)
	ns := z.rrsetOf(i, dns.TypeNS)
	a := aux{pool: -1, glue: uint32(len(z.glue))}
	var buf []byte
	var seen seenSet
	for _, inDomain := range []bool{true, false} {
		seen.reset(ns.Len())
		for r := range ns.All() {
			var ok bool
			if buf, ok = appendCanonical(buf[:0], r.Rdata); !ok {
				continue
			}
			t := unsafe.String(unsafe.SliceData(buf), len(buf))
			if !isSubdomain(t, z.Origin) || isSubdomain(t, cut) != inDomain {
				continue
			}
			g := z.find(t)
			if g == noNode || !seen.add(uint64(g)) {
				continue
			}
			for _, typ := range []uint16{dns.TypeA, dns.TypeAAAA} {
				if s, ok := z.setOf(g, typ); ok {
					z.glue = append(z.glue, setRef{node: g, set: s})
					if inDomain {
						a.inDomain += z.sets[s].n
					}
				}
			}
		}
	}
	a.nglue = uint32(len(z.glue)) - a.glue
	if a.nglue == 0 {
		return
	}
	if old := z.auxOf(i); old != nil {
		old.glue, old.nglue, old.inDomain = a.glue, a.nglue, a.inDomain
		return
	}
	z.aux = append(z.aux, a)
	z.nodes[i].aux = uint32(len(z.aux))
}

// dedupe sorts one name's records by type and rdata and drops the
// records written twice (RFC 2181 section 5: one record), reporting
// those written again with another TTL. What is left keeps, among equal
// records, the first in file order.
func (b *builder) dedupe(name string, recs []uint32) []uint32 {
	slices.SortFunc(recs, func(x, y uint32) int {
		rx, ry := &b.recs[x], &b.recs[y]
		if c := cmp.Compare(rx.typ, ry.typ); c != 0 {
			return c
		}
		if c := bytes.Compare(b.rdata(rx), b.rdata(ry)); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})
	out := recs[:0]
	for i, k := range recs {
		e := &b.recs[k]
		if i > 0 {
			d := &b.recs[out[len(out)-1]]
			if d.typ == e.typ && bytes.Equal(b.rdata(d), b.rdata(e)) {
				if d.ttl != e.ttl {
					b.problem(e.at, "%s %s is written again with TTL %d; at %s its TTL is %d: give it one TTL", name, typeName(e.typ), e.ttl, b.at(d.at, e.at), d.ttl)
				}
				continue
			}
		}
		out = append(out, k)
	}
	return out
}

// firstAt returns where the first of recs (in file order) was written.
func (b *builder) firstAt(recs []uint32) pos {
	return b.recs[slices.Min(recs)].at
}

// checkName applies the rules that concern one name's records together.
// recs are its records by type; cut is the delegation at or above the
// name (noNode when none), self the name's own node, cutName the cut's
// name and cutNS its first NS record; nsTarget says an NS record names
// the name.
func (b *builder) checkName(name string, recs []uint32, cut, self uint32, cutName string, cutNS pos, nsTarget bool) {
	groups := b.groups[:0]
	defer func() { b.groups = groups[:0] }()
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && b.recs[recs[j]].typ == b.recs[recs[i]].typ {
			j++
		}
		groups = append(groups, group{typ: b.recs[recs[i]].typ, recs: recs[i:j], first: slices.Min(recs[i:j])})
		i = j
	}
	of := func(t uint16) *group {
		for i := range groups {
			if groups[i].typ == t {
				return &groups[i]
			}
		}
		return nil
	}

	for _, g := range groups {
		if g.typ == dns.TypeRRSIG || g.typ == TypePOOL {
			continue // RRSIGs over different types may carry different TTLs; two POOLs are reported below
		}
		f := &b.recs[g.first]
		for _, k := range g.recs {
			if e := &b.recs[k]; e.ttl != f.ttl {
				b.problem(e.at, "%s %s: TTL %d differs from TTL %d of the same RRset at %s (RFC 2181 section 5.2): give every record of an RRset one TTL",
					name, typeName(g.typ), e.ttl, f.ttl, b.at(f.at, e.at))
			}
		}
	}

	if pools := of(TypePOOL); pools != nil {
		f := &b.recs[pools.first]
		for _, k := range pools.recs {
			if k != pools.first {
				b.problem(b.recs[k].at, "%s has more than one POOL record (the first, naming %s, is at %s): a name answers from one pool",
					name, poolName(b.rdata(f)), b.at(f.at, b.recs[k].at))
			}
		}
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeCNAME} {
			if g := of(t); g != nil {
				e := b.recs[g.first].at
				b.problem(e, "%s has a POOL record (at %s) and %s records: a POOL name answers A and AAAA from its pool; remove the %s records or the POOL",
					name, b.at(f.at, e), typeName(t), typeName(t))
			}
		}
	}

	if cn := of(dns.TypeCNAME); cn != nil {
		f := b.recs[cn.first].at
		for _, k := range cn.recs {
			if k != cn.first {
				b.problem(b.recs[k].at, "%s has more than one CNAME (the first is at %s): a name is an alias of one name only", name, b.at(f, b.recs[k].at))
			}
		}
		for _, g := range groups {
			switch g.typ {
			case dns.TypeCNAME, TypePOOL, dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3:
				continue // POOL beside CNAME is reported above; DNSSEC records may accompany a CNAME
			}
			e := b.recs[g.first].at
			b.problem(e, "%s has a CNAME (at %s) and %s records: a CNAME must be the only data at its name (RFC 1034 section 3.6.2); remove one of them",
				name, b.at(f, e), typeName(g.typ))
		}
	}

	if cut == self && strings.HasPrefix(name, "*.") {
		b.problem(b.recs[of(dns.TypeNS).first].at, "%s: a wildcard cannot be a delegation (RFC 4592 section 4.2); name the child zone", name)
	}

	if cut == noNode {
		return
	}
	for _, g := range groups {
		t := g.typ
		glue := (t == dns.TypeA || t == dns.TypeAAAA) && nsTarget
		if cut == self && (t == dns.TypeNS || t == dns.TypeDS || t == dns.TypeRRSIG || t == dns.TypeNSEC) || glue {
			continue
		}
		for _, k := range g.recs {
			e := b.recs[k].at
			switch {
			case t == dns.TypeA || t == dns.TypeAAAA:
				b.problem(e, "%s %s is at or below the delegation of %s (at %s) and no NS record names it, so it is not glue and would never be answered",
					name, typeName(t), cutName, b.at(cutNS, e))
			case cut == self:
				b.problem(e, "%s %s is at the delegation of %s (NS at %s): that data belongs in the child zone; only NS, DS and glue addresses stay in the parent",
					name, typeName(t), cutName, b.at(cutNS, e))
			default:
				b.problem(e, "%s %s is below the delegation of %s (at %s) and would never be answered: only the child's name server addresses (glue) belong there",
					name, typeName(t), cutName, b.at(cutNS, e))
			}
		}
	}
}

// group is the records of one type at a name, by rdata, and the first
// of them in file order.
type group struct {
	typ   uint16
	recs  []uint32
	first uint32
}

// poolName returns the pool a POOL record's rdata (a character-string)
// names.
func poolName(rdata []byte) string {
	if len(rdata) == 0 || len(rdata) < 1+int(rdata[0]) {
		return ""
	}
	return string(rdata[1 : 1+int(rdata[0])])
}

// packRdata returns rr's rdata in wire form (uncompressed), in buf.
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
	return buf[start:end], nil
}

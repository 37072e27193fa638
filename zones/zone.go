package zones

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"slices"
	"strings"
	"unsafe"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/config"
)

// Zone is one loaded, validated zone. It never changes after loading and is
// safe for concurrent use.
//
// A zone is held in a compact form, as Knot DNS and NSD hold theirs:
// every name once, in one string; the records of every RRset as wire
// rdata, in one byte slice; names and RRsets as small fixed-size
// structures that refer to those by offset. None of it holds a pointer,
// so the garbage collector does not scan a zone, however large; the
// parsed records are dropped as soon as they are read.
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

	// names holds every node's name and every CNAME's target, canonical.
	names string
	// nodes are the zone's names in canonical order (RFC 4034 section
	// 6.1), the apex first: owners of records and the empty
	// non-terminals above them.
	nodes []node
	// sets are the RRsets of every node, a node's by type, in node order.
	sets []rrset
	// data holds the records of every RRset in set order, each as
	// TTL (4 bytes), rdata length (2) and uncompressed wire rdata.
	data []byte
	// aux holds what a few nodes need beyond their RRsets.
	aux []aux
	// glue lists, per delegation, the address RRsets of its name
	// servers found in the zone.
	glue  []setRef
	index index
	// self is the zone alone, for RRsets views of its own glue.
	self    []*Zone
	soaData []byte // the SOA record's rdata
	records int
	// poolNames are the pools the zone's POOL records name, in order of
	// first use; aux.pool indexes it. poolIdx holds, by the same index,
	// each one's index in the pool list the zone was resolved against
	// (Parse's pools; see Repool).
	poolNames []string
	poolIdx   []int32
}

// node is one name in the zone.
type node struct {
	name  uint32 // offset of the name in Zone.names
	sets  uint32 // index of its first RRset in Zone.sets
	cut   uint32 // the delegation at or above the name; noNode when authoritative
	wild  uint32 // the node "*.name", or noNode
	aux   uint32 // index+1 into Zone.aux; 0 for none
	nlen  uint16 // length of the name
	nsets uint16 // RRsets at the name, POOL and CNAME included
}

// rrset is one RRset: its records are n records at data[off:].
type rrset struct {
	off uint32
	n   uint32
	typ uint16
}

// aux is a node's CNAME target, pool, or (at a delegation) glue.
type aux struct {
	pool      int32 // the pool a POOL record names, in Zone.poolNames; -1 for none
	poolTTL   uint32
	target    uint32 // CNAME target: offset in Zone.names
	targetLen uint16
	cname     bool
	glue      uint32 // delegation: its glue, Zone.glue[glue:glue+nglue]
	nglue     uint32
	inDomain  uint32 // records of the first RRsets of glue that are in-domain
}

// setRef names an RRset of a zone of a Set (or of the one zone of a
// Zone's own glue).
type setRef struct {
	zone uint32 // index into the RRsets' zones
	node uint32
	set  uint32
}

func (z *Zone) nameOf(i uint32) string { return nodeName(z.names, z.nodes, i) }

// find returns the node named name (canonical), or noNode.
func (z *Zone) find(name string) uint32 { return z.index.find(name, z.names, z.nodes) }

func (z *Zone) auxOf(i uint32) *aux {
	if a := z.nodes[i].aux; a != 0 {
		return &z.aux[a-1]
	}
	return nil
}

// setOf returns node i's RRset of type t, or false.
func (z *Zone) setOf(i uint32, t uint16) (uint32, bool) {
	n := &z.nodes[i]
	for s := n.sets; s < n.sets+uint32(n.nsets); s++ {
		if z.sets[s].typ == t {
			return s, true
		}
	}
	return 0, false
}

func (z *Zone) rrsetOf(i uint32, t uint16) RRset {
	if s, ok := z.setOf(i, t); ok {
		return RRset{z: z, node: i, set: s}
	}
	return RRset{}
}

// NS returns the apex NS RRset.
func (z *Zone) NS() RRset { return z.rrsetOf(0, dns.TypeNS) }

// SOARdata returns the SOA record's rdata in wire form (names
// uncompressed), shared with the zone: do not modify it.
func (z *Zone) SOARdata() []byte { return z.soaData }

// Len returns the number of records in the zone, POOL records included.
func (z *Zone) Len() int { return z.records }

// RRsets yields every RRset of the zone in canonical order (RFC 4034
// section 6.1: by owner name, then type; records by rdata).
func (z *Zone) RRsets() iter.Seq[RRset] {
	return func(yield func(RRset) bool) {
		for i := range z.nodes {
			n := &z.nodes[i]
			for s := n.sets; s < n.sets+uint32(n.nsets); s++ {
				if !yield(RRset{z: z, node: uint32(i), set: s}) {
					return
				}
			}
		}
	}
}

// All yields every record of the zone, POOL records included, in
// canonical order. A Record shares the zone's memory and costs no
// allocation.
func (z *Zone) All() iter.Seq[Record] {
	return func(yield func(Record) bool) {
		for set := range z.RRsets() {
			for r := range set.All() {
				if !yield(r) {
					return
				}
			}
		}
	}
}

// Records returns every record of the zone, POOL records included, in
// canonical order, decoded into miekg/dns records made for the call: it
// costs memory in proportion to the zone (All does not).
func (z *Zone) Records() []dns.RR {
	out := make([]dns.RR, 0, z.records)
	for r := range z.All() {
		out = append(out, r.RR())
	}
	return out
}

// Record is one record of a zone in wire form. Owner and Rdata are
// shared with the zone: do not modify them.
type Record struct {
	Owner string // canonical
	Type  uint16
	TTL   uint32
	// Rdata is the record's data in wire form, its names uncompressed
	// and in the case the zone file wrote them.
	Rdata []byte
}

// RR decodes the record into a miekg/dns record (class IN), made for the
// call.
func (r Record) RR() dns.RR {
	h := dns.RR_Header{Name: r.Owner, Rrtype: r.Type, Class: dns.ClassINET, Ttl: r.TTL, Rdlength: uint16(len(r.Rdata))}
	rr, _, err := dns.UnpackRRWithHeader(h, r.Rdata, 0)
	if err != nil {
		// Every record was packed from a parsed one when the zone was
		// built, so it unpacks; should it not, its data is kept as is.
		return &dns.RFC3597{Hdr: h, Rdata: hex.EncodeToString(r.Rdata)}
	}
	return rr
}

// Pool returns the name of the pool a POOL record names; ok is false for
// a record of another type.
func (r Record) Pool() (name string, ok bool) {
	if r.Type != TypePOOL {
		return "", false
	}
	return poolName(r.Rdata), true
}

// RRset is one RRset of a zone, read from the zone's compact form. The
// zero RRset is empty. Copying one is cheap.
type RRset struct {
	z    *Zone
	node uint32
	set  uint32
}

// Len returns the number of records in the set.
func (s RRset) Len() int {
	if s.z == nil {
		return 0
	}
	return int(s.z.sets[s.set].n)
}

// Type returns the records' type; 0 for the empty RRset.
func (s RRset) Type() uint16 {
	if s.z == nil {
		return 0
	}
	return s.z.sets[s.set].typ
}

// Owner returns the canonical owner name; "" for the empty RRset.
func (s RRset) Owner() string {
	if s.z == nil {
		return ""
	}
	return s.z.nameOf(s.node)
}

// NameSets returns how many RRsets the owner name has, this one
// included (POOL and CNAME count).
func (s RRset) NameSets() int {
	if s.z == nil {
		return 0
	}
	return int(s.z.nodes[s.node].nsets)
}

// All yields the set's records in canonical (rdata) order, without
// allocating.
func (s RRset) All() iter.Seq[Record] {
	return func(yield func(Record) bool) {
		if s.z == nil {
			return
		}
		set := &s.z.sets[s.set]
		owner := s.z.nameOf(s.node)
		d := s.z.data[set.off:]
		for range set.n {
			ttl := binary.BigEndian.Uint32(d)
			l := int(binary.BigEndian.Uint16(d[4:]))
			if !yield(Record{Owner: owner, Type: set.typ, TTL: ttl, Rdata: d[6 : 6+l : 6+l]}) {
				return
			}
			d = d[6+l:]
		}
	}
}

// RRs returns the set's records decoded into miekg/dns records made for
// the call.
func (s RRset) RRs() []dns.RR {
	var out []dns.RR
	for r := range s.All() {
		out = append(out, r.RR())
	}
	return out
}

// RRsets is a list of RRsets, of one zone or of several zones of a Set.
type RRsets struct {
	zones *[]*Zone // what setRef.zone indexes
	refs  []setRef
}

// Len returns the number of RRsets.
func (l RRsets) Len() int { return len(l.refs) }

// At returns the i-th RRset.
func (l RRsets) At(i int) RRset {
	r := l.refs[i]
	return RRset{z: (*l.zones)[r.zone], node: r.node, set: r.set}
}

// Records returns the number of records in all the RRsets.
func (l RRsets) Records() int {
	n := 0
	for i := range l.refs {
		n += l.At(i).Len()
	}
	return n
}

// RRs returns the records of every RRset decoded into miekg/dns records
// made for the call.
func (l RRsets) RRs() []dns.RR {
	var out []dns.RR
	for i := range l.refs {
		out = append(out, l.At(i).RRs()...)
	}
	return out
}

// Set is the zones one server answers for. It never changes after it is
// built and is safe for concurrent use.
type Set struct {
	zones    []*Zone
	byOrigin map[string]uint32 // origin -> index in zones
	// originLens has bit n set when some origin is n octets of text long
	// (n < 256; longer ones set bit 255): zoneOf hashes only the
	// suffixes of a length some origin has.
	originLens [4]uint64
	// few lists the origins (by index in zones) of a set of at most
	// fewOrigins zones: comparing a suffix with each costs less than
	// hashing it for byOrigin.
	few []string
	// extra holds the additional-section RRsets of every NS, MX and SRV
	// RRset the set serves (see additional), by the RRset's zone and
	// index: refs[span>>32 : span&0xFFFFFFFF]. The query path only
	// reads it.
	extra map[uint64]uint64
	refs  []setRef
}

var (
	errDuplicateOrigin = errors.New("duplicate zone origin")
	errOutside         = errors.New("outside the zone file's directory")
	errPOOLArgs        = errors.New("POOL takes exactly one pool name, like: www 30 IN POOL web")
)

// NewSet makes a Set of zones; two zones with the same origin are an error.
func NewSet(zones ...*Zone) (*Set, error) {
	s := &Set{byOrigin: make(map[string]uint32, len(zones))}
	seen := make(map[string]*Zone, len(zones))
	for _, z := range zones {
		if other, dup := seen[z.Origin]; dup {
			return nil, fmt.Errorf("zone %s from %s and %s: %w", z.Origin, other.File, z.File, errDuplicateOrigin)
		}
		seen[z.Origin] = z
		s.zones = append(s.zones, z)
	}
	slices.SortFunc(s.zones, func(a, b *Zone) int { return compareNames(a.Origin, b.Origin) })
	for i, z := range s.zones {
		s.byOrigin[z.Origin] = uint32(i)
		n := min(len(z.Origin), 255)
		s.originLens[n>>6] |= 1 << (n & 63)
		if len(s.zones) <= fewOrigins {
			s.few = append(s.few, z.Origin)
		}
	}
	s.additional()
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
	var buf [maxName]byte
	if i, ok := s.zoneOf(folded(&buf, qname)); ok {
		return s.zones[i]
	}
	return nil
}

// zoneOf returns the index of the zone holding name (canonical).
func (s *Set) zoneOf(name string) (uint32, bool) {
	for off := 0; off >= 0; off = parent(name, off) {
		n := min(len(name)-off, 255)
		if s.originLens[n>>6]&(1<<(n&63)) == 0 {
			continue
		}
		if s.few != nil {
			for i, o := range s.few {
				if o == name[off:] {
					return uint32(i), true
				}
			}
			continue
		}
		if i, ok := s.byOrigin[name[off:]]; ok {
			return i, true
		}
	}
	return 0, false
}

// fewOrigins is how many zones a set compares origins of instead of
// hashing them.
const fewOrigins = 4

// Lookup finds the zone for qname and looks qname up in it, lowercasing the
// name once. The zone is nil (and the Result's Kind NotInZone) when no zone
// holds qname. DS at the apex of a zone whose parent zone the set also
// serves is looked up in the parent, where DS records belong, when the
// parent delegates that name (has NS records there); else the child
// answers it (RFC 4035 section 3.1.4.1). A Success answer of type NS, MX
// or SRV carries in Additional the addresses of its targets (see
// Result.Additional).
func (s *Set) Lookup(qname string, qtype uint16) (*Zone, Result) {
	var r Result
	z := s.LookupTo(&r, qname, qtype)
	return z, r
}

// LookupTo is Lookup into r, for a caller that keeps its Result (the
// query path): a Result is a dozen words, returned by value it is copied
// at each level.
func (s *Set) LookupTo(r *Result, qname string, qtype uint16) *Zone {
	if qname == "" {
		*r = Result{Kind: NotInZone}
		return nil
	}
	if needsFold(qname) {
		return s.lookupFolded(r, qname, qtype)
	}
	return s.LookupCanonicalTo(r, qname, qtype)
}

// lookupFolded is LookupTo of a name that must be lowercased or made
// absolute first: its buffer is kept off the common path's stack.
func (s *Set) lookupFolded(r *Result, qname string, qtype uint16) *Zone {
	var buf [maxName]byte
	return s.LookupCanonicalTo(r, folded(&buf, qname), qtype)
}

// LookupCanonicalTo is LookupTo of a name already in canonical form:
// lower case (ASCII) and absolute, as a DNS server's parser writes a
// question's name. Another name finds nothing it should.
func (s *Set) LookupCanonicalTo(r *Result, name string, qtype uint16) *Zone {
	zi, ok := s.zoneOf(name)
	if !ok {
		*r = Result{Kind: NotInZone}
		return nil
	}
	z := s.zones[zi]
	// DS records live in the parent (RFC 4035 section 3.1.4.1): when the
	// set serves the parent too and the parent delegates the child, DS
	// at the child's apex is the parent's. A parent without that
	// delegation knows nothing of the name (it would say NXDOMAIN for a
	// name that exists): the child answers, NODATA with its SOA.
	if qtype == dns.TypeDS && len(z.Origin) == len(name) {
		if p := s.delegator(z); p != nil {
			lookupTo(r, p, name, qtype)
			return p
		}
	}
	lookupTo(r, z, name, qtype)
	if r.Kind == Success {
		switch r.Answer.Type() {
		case dns.TypeNS, dns.TypeMX, dns.TypeSRV:
			if span, ok := s.extra[uint64(zi)<<32|uint64(r.Answer.set)]; ok {
				r.Additional = RRsets{zones: &s.zones, refs: s.refs[span>>32 : span&0xFFFFFFFF]}
			}
		}
	}
	return z
}

// parentZone returns the served zone holding the name one label above
// z's origin, or nil (z is the root, or its parent is not served).
func (s *Set) parentZone(z *Zone) *Zone {
	off := parent(z.Origin, 0)
	if off < 0 {
		return nil
	}
	if i, ok := s.zoneOf(z.Origin[off:]); ok {
		return s.zones[i]
	}
	return nil
}

// delegator returns the served parent zone of z when it delegates z's
// origin (has NS records there), else nil.
func (s *Set) delegator(z *Zone) *Zone {
	p := s.parentZone(z)
	if p == nil {
		return nil
	}
	if i := p.find(z.Origin); i == noNode || p.nodes[i].cut != i {
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
	for r := range z.NS().All() {
		if ns, ok := r.RR().(*dns.NS); ok {
			return ns.Ns
		}
	}
	return "<name server>"
}

// additional resolves, once per set, the targets of every NS, MX and SRV
// RRset to the A and AAAA RRsets the set serves for them (RFC 1035
// sections 3.3.9, 3.3.11 and 4.3.2 step 6; RFC 2782), in the order of
// the RRset's records, each address RRset once. A target is resolved in
// whichever served zone holds it, by its exact name: a target that is
// not an owner of addresses there is left out, and so are targets under
// a delegation (not authoritative data), aliases (RFC 2181 section 10.3),
// wildcard matches, and POOL names, whose answer depends on health and
// on the client: the resolver asks for those and gets the pool's live
// answer. A delegation's own NS RRset is not here: referrals carry glue
// (Result.Glue).
func (s *Set) additional() {
	s.extra = map[uint64]uint64{}
	var buf []byte
	var seen seenSet
	for zi, z := range s.zones {
		for i := range z.nodes {
			n := &z.nodes[i]
			if n.cut != noNode {
				continue // at or below a delegation: referrals only
			}
			for si := n.sets; si < n.sets+uint32(n.nsets); si++ {
				skip := 0
				switch z.sets[si].typ {
				case dns.TypeNS:
				case dns.TypeMX:
					skip = 2
				case dns.TypeSRV:
					skip = 6
				default:
					continue
				}
				start := len(s.refs)
				set := RRset{z: z, node: uint32(i), set: si}
				seen.reset(set.Len())
				for r := range set.All() {
					if len(r.Rdata) < skip {
						continue
					}
					var ok bool
					if buf, ok = appendCanonical(buf[:0], r.Rdata[skip:]); !ok || string(buf) == "." {
						continue // "." is the null MX (RFC 7505) or "no service" SRV
					}
					s.addAddresses(unsafe.String(unsafe.SliceData(buf), len(buf)), &seen)
				}
				if len(s.refs) > start {
					s.extra[uint64(zi)<<32|uint64(si)] = uint64(start)<<32 | uint64(len(s.refs))
				}
			}
		}
	}
}

// addAddresses appends the A and AAAA RRsets of target (canonical) to
// s.refs, unless they are left out (see additional) or seen already.
func (s *Set) addAddresses(target string, seen *seenSet) {
	zi, ok := s.zoneOf(target)
	if !ok {
		return
	}
	z := s.zones[zi]
	i := z.find(target)
	if i == noNode || z.nodes[i].cut != noNode {
		return
	}
	if a := z.auxOf(i); a != nil && (a.cname || a.pool >= 0) {
		return
	}
	if !seen.add(uint64(zi)<<32 | uint64(i)) {
		return
	}
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		if si, ok := z.setOf(i, t); ok {
			s.refs = append(s.refs, setRef{zone: uint32(zi), node: i, set: si})
		}
	}
}

// seenSet is a set of keys: a short list for the few targets of most
// RRsets, a map for large RRsets.
type seenSet struct {
	list []uint64
	m    map[uint64]bool
}

// reset empties the set for up to n keys.
func (s *seenSet) reset(n int) {
	s.list, s.m = s.list[:0], nil
	if n > 16 {
		s.m = make(map[uint64]bool, n)
	}
}

// add adds k and reports whether it was new.
func (s *seenSet) add(k uint64) bool {
	if s.m != nil {
		if s.m[k] {
			return false
		}
		s.m[k] = true
		return true
	}
	if slices.Contains(s.list, k) {
		return false
	}
	s.list = append(s.list, k)
	return true
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
//
// The parser and the builder run in two goroutines, the records handed
// over in batches: miekg/dns's parser is the larger half of a load, and
// the builder's half then costs little more wall time.
func parse(fsys fs.FS, file, display, origin string, data []byte, pools map[string]int) (*Zone, config.Problems) {
	b := newBuilder(display, origin, pools, data)
	const batchLen, batches = 256, 4
	full := make(chan []pendingRR, batches)
	free := make(chan []pendingRR, batches)
	for range batches {
		free <- make([]pendingRR, 0, batchLen)
	}
	built := make(chan struct{})
	go func() {
		defer close(built)
		for batch := range full {
			for i := range batch {
				b.add(batch[i].rr, batch[i].file, batch[i].line)
			}
			clear(batch)
			free <- batch[:0]
		}
	}()
	batch := <-free
	ps, syntaxErr := read(fsys, file, display, origin, data, func(rr dns.RR, file string, line int) {
		batch = append(batch, pendingRR{rr, file, line})
		if len(batch) == batchLen {
			full <- batch
			batch = <-free
		}
	})
	full <- batch
	close(full)
	<-built
	b.truncated = syntaxErr
	z := b.finish()
	ps = append(ps, b.ps...)
	ps.Sort()
	return z, ps
}

// Repool returns the zone with its POOL records resolved against pools
// (pool names to indexes, as Parse takes them) in place of the list it
// was parsed with: z itself when every pool it names keeps its index, a
// copy that shares all of z's records otherwise. Its cost follows the
// pools the zone names, not its records, so a pool added to the
// configuration (which moves the indexes of the pools after it) costs no
// parse. ok is false when a pool the zone names is not in pools: the
// zone must be parsed again, and that reports the problem.
func (z *Zone) Repool(pools map[string]int) (out *Zone, ok bool) {
	var idx []int32
	for i, name := range z.poolNames {
		n, ok := pools[name]
		if !ok {
			return nil, false
		}
		if int32(n) != z.poolIdx[i] && idx == nil {
			idx = slices.Clone(z.poolIdx)
		}
		if idx != nil {
			idx[i] = int32(n)
		}
	}
	if idx == nil {
		return z, true
	}
	c := *z
	c.poolIdx = idx
	c.self = []*Zone{&c}
	return &c, true
}

// PoolNames lists the pools the zone's POOL records name, once each, in
// the order the zone first names them.
func (z *Zone) PoolNames() []string { return slices.Clone(z.poolNames) }

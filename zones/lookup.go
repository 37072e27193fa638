package zones

import "github.com/miekg/dns"

// Kind is what a lookup found.
type Kind uint8

const (
	// Success: Answer holds the RRset of the query type.
	Success Kind = iota
	// NoData: the name exists (perhaps as an empty non-terminal) but has no
	// data of the query type.
	NoData
	// NXDomain: the name does not exist and no wildcard covers it.
	NXDomain
	// Delegation: the name is at or below a zone cut; NS and Glue hold the
	// referral.
	Delegation
	// CNAME: the name is an alias; Answer holds its CNAME record. The
	// caller follows the chain.
	CNAME
	// PoolName: the name is a POOL name and the query asks for addresses;
	// Pool and PoolTTL say which pool answers.
	PoolName
	// NotInZone: the name is not in this zone (or, from Set.Lookup, in no
	// zone of the set). A server answers REFUSED.
	NotInZone
)

var kindNames = [...]string{"Success", "NoData", "NXDomain", "Delegation", "CNAME", "PoolName", "NotInZone"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(?)"
}

// Result is the outcome of a lookup. Its RRsets are views of the Zone's
// compact form: they share its memory.
type Result struct {
	Kind Kind
	// Wildcard is true when the answer is synthesized from a wildcard (RFC
	// 4592): the caller rewrites owner names to the query name.
	Wildcard bool
	// PoolTTL is the POOL record's TTL (PoolName; see Pool).
	PoolTTL uint32
	// Owner is the canonical owner that matched; for a wildcard match, the
	// wildcard ("*.wild.example."); for a Delegation, the zone cut. Empty
	// for NXDomain and NotInZone.
	Owner string
	// Answer is the RRset (Success) or the CNAME RRset, of one record
	// (CNAME).
	Answer RRset
	// Target is the CNAME's target, canonical, when Answer is a CNAME
	// RRset (Kind CNAME, or Success for qtype CNAME or ANY).
	Target string
	// Pool is the index into config.Config.PoolNames() of the pool that
	// answers a PoolName.
	Pool int
	// NS is the child's NS RRset and Glue the address RRsets of its name
	// servers found in this zone (Delegation). The first InDomainGlue
	// records of Glue belong to names below the cut (in-domain glue,
	// which RFC 9471 requires in a referral: without it the child cannot
	// be reached); the rest are sibling glue, optional.
	NS           RRset
	Glue         RRsets
	InDomainGlue int
	// Additional holds, for a Success answer of type NS, MX or SRV from
	// Set.Lookup, the A and AAAA RRsets the set serves for the answer's
	// targets (RFC 1035 section 4.3.2 step 6), to be added to the
	// additional section when they fit. Zone.Lookup leaves it empty.
	Additional RRsets
}

// Lookup answers qname (any case, with or without the final dot) and qtype
// from the zone, following RFC 1034 section 4.3.2 and RFC 4592:
//
//   - at or below a zone cut (a name other than the apex with NS records):
//     Delegation, except qtype DS at the cut itself, which the parent
//     answers (Success when the zone has DS records there, else NoData);
//   - a name with a CNAME: Kind CNAME, or Success with the CNAME for qtype
//     CNAME and ANY (ANY matches the CNAME, so the chain is not followed);
//   - a POOL name and qtype A, AAAA or ANY: PoolName; other types are
//     answered from the name's other records (TXT beside POOL is allowed);
//   - the RRset of qtype: Success; none (an empty non-terminal included):
//     NoData. qtype POOL is never answered: POOL records are Tern's own;
//   - ANY (RFC 8482, minimal ANY): one RRset, the one of the lowest type
//     code at the name (PoolName at a POOL name);
//   - a name that does not exist: the wildcard at its closest encloser,
//     when there is one, answers as above with Wildcard set; a name below an
//     existing name or empty non-terminal is never matched by a wildcard
//     above that. Else NXDomain.
//
// Lookup takes no lock and does not allocate (but for names longer than
// 255 bytes of text, which cannot come from the wire unescaped).
func (z *Zone) Lookup(qname string, qtype uint16) Result {
	var r Result
	if qname == "" {
		r.Kind = NotInZone
		return r
	}
	var buf [maxName]byte
	lookupTo(&r, z, folded(&buf, qname), qtype)
	return r
}

// lookupTo looks up a lowercase, absolute name into r. The query path
// passes its own Result: a Result is a dozen words, and returning it by
// value through each level copied it at each.
func lookupTo(r *Result, z *Zone, name string, qtype uint16) {
	if i := z.find(name); i != noNode {
		if c := z.nodes[i].cut; c != noNode && !(c == i && qtype == dns.TypeDS) {
			z.referralTo(r, c)
			return
		}
		z.answerTo(r, i, qtype, false)
		return
	}
	// The closest encloser: the longest existing ancestor. Every node is
	// in the zone, so finding none means the name is not in it.
	for off := parent(name, 0); off >= 0; off = parent(name, off) {
		ce := z.find(name[off:])
		if ce == noNode {
			continue
		}
		n := &z.nodes[ce]
		if n.cut != noNode {
			z.referralTo(r, n.cut)
			return
		}
		if n.wild != noNode {
			z.answerTo(r, n.wild, qtype, true)
			return
		}
		*r = Result{Kind: NXDomain}
		return
	}
	*r = Result{Kind: NotInZone}
}

func (z *Zone) referralTo(r *Result, i uint32) {
	*r = Result{Kind: Delegation, Owner: z.nameOf(i), NS: z.rrsetOf(i, dns.TypeNS)}
	if a := z.auxOf(i); a != nil {
		r.Glue = RRsets{zones: &z.self, refs: z.glue[a.glue : a.glue+a.nglue]}
		r.InDomainGlue = int(a.inDomain)
	}
}

func (z *Zone) answerTo(r *Result, i uint32, qtype uint16, wild bool) {
	*r = Result{Owner: z.nameOf(i), Wildcard: wild}
	n := &z.nodes[i]
	a := z.auxOf(i)
	switch {
	case a != nil && a.cname:
		r.Answer = z.rrsetOf(i, dns.TypeCNAME)
		r.Target = z.names[a.target : a.target+uint32(a.targetLen)]
		if qtype == dns.TypeCNAME || qtype == dns.TypeANY {
			r.Kind = Success
		} else {
			r.Kind = CNAME
		}
		return
	case a != nil && a.pool >= 0 && (qtype == dns.TypeA || qtype == dns.TypeAAAA || qtype == dns.TypeANY):
		r.Kind, r.Pool, r.PoolTTL = PoolName, int(z.poolIdx[a.pool]), a.poolTTL
		return
	case qtype == dns.TypeANY:
		if n.nsets > 0 && z.sets[n.sets].typ != TypePOOL {
			r.Kind, r.Answer = Success, RRset{z: z, node: i, set: n.sets}
			return
		}
	case qtype != TypePOOL:
		if s, ok := z.setOf(i, qtype); ok {
			r.Kind, r.Answer = Success, RRset{z: z, node: i, set: s}
			return
		}
	}
	r.Kind = NoData
}

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

// Result is the outcome of a lookup. Its slices are shared with the Zone:
// do not modify them.
type Result struct {
	Kind Kind
	// Owner is the canonical owner that matched; for a wildcard match, the
	// wildcard ("*.wild.example."); for a Delegation, the zone cut. Empty
	// for NXDomain and NotInZone.
	Owner string
	// Wildcard is true when the answer is synthesized from a wildcard (RFC
	// 4592): the caller rewrites owner names to the query name.
	Wildcard bool
	// Answer is the RRset (Success) or the CNAME record (CNAME).
	Answer []dns.RR
	// Pool is the index into config.Config.PoolNames() of the pool that
	// answers a PoolName, PoolTTL the POOL record's TTL.
	Pool    int
	PoolTTL uint32
	// NS is the child's NS RRset and Glue the addresses of its name
	// servers found in this zone (Delegation). The first InDomainGlue
	// records of Glue belong to names below the cut (in-domain glue,
	// which RFC 9471 requires in a referral: without it the child cannot
	// be reached); the rest are sibling glue, optional.
	NS           []dns.RR
	Glue         []dns.RR
	InDomainGlue int
	// Additional holds, for a Success answer of type NS, MX or SRV from
	// Set.Lookup, the A and AAAA records the set serves for the answer's
	// targets (RFC 1035 section 4.3.2 step 6), to be added to the
	// additional section when they fit. Zone.Lookup leaves it empty.
	Additional []dns.RR
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
	if qname == "" {
		return Result{Kind: NotInZone}
	}
	if !needsFold(qname) {
		return lookup(z, qname, qtype)
	}
	var buf [maxName]byte
	return lookup(z, lower(&buf, qname), qtype)
}

// lookup works on a lowercase, absolute name.
func lookup[S name](z *Zone, name S, qtype uint16) Result {
	if n := z.nodes[string(name)]; n != nil {
		if n.cut != nil && !(n.cut == n && qtype == dns.TypeDS) {
			return n.cut.referral()
		}
		return n.answer(qtype, false)
	}
	// The closest encloser: the longest existing ancestor. Every node is
	// in the zone, so finding none means the name is not in it.
	for off := parent(name, 0); off >= 0; off = parent(name, off) {
		ce := z.nodes[string(name[off:])]
		if ce == nil {
			continue
		}
		if ce.cut != nil {
			return ce.cut.referral()
		}
		if ce.wild != nil {
			return ce.wild.answer(qtype, true)
		}
		return Result{Kind: NXDomain}
	}
	return Result{Kind: NotInZone}
}

func (n *node) referral() Result {
	return Result{Kind: Delegation, Owner: n.name, NS: n.ns, Glue: n.glue, InDomainGlue: n.inDomain}
}

func (n *node) answer(qtype uint16, wild bool) Result {
	r := Result{Owner: n.name, Wildcard: wild}
	switch {
	case n.cname != nil:
		r.Answer = n.cname
		if qtype == dns.TypeCNAME || qtype == dns.TypeANY {
			r.Kind = Success
		} else {
			r.Kind = CNAME
		}
		return r
	case n.pool >= 0 && (qtype == dns.TypeA || qtype == dns.TypeAAAA || qtype == dns.TypeANY):
		r.Kind, r.Pool, r.PoolTTL = PoolName, n.pool, n.poolTTL
		return r
	case qtype == dns.TypeANY:
		if len(n.sets) > 0 {
			r.Kind, r.Answer = Success, n.sets[0].rrs
			return r
		}
	default:
		for i := range n.sets {
			if n.sets[i].typ == qtype {
				r.Kind, r.Answer = Success, n.sets[i].rrs
				return r
			}
		}
	}
	r.Kind = NoData
	return r
}

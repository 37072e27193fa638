package zones

import (
	"github.com/miekg/dns"
	"github.com/ternlb/tern/config"
)

// What the DNSSEC signer (package dnssec) reads of a zone.

// ID returns the RRset's index among its zone's RRsets, below
// Zone.NumRRsets: what a table of per-RRset data (signatures) is indexed
// by. It is meaningless for the empty RRset.
func (s RRset) ID() uint32 { return s.set }

// Zone returns the zone the RRset is of; nil for the empty RRset.
func (s RRset) Zone() *Zone { return s.z }

// Delegated reports whether the RRset is not the zone's authoritative
// data (RFC 4035 2.2): a delegation's NS RRset and everything below a
// zone cut (glue). The DS RRset at a cut is the parent's own.
func (s RRset) Delegated() bool {
	if s.z == nil {
		return false
	}
	c := s.z.nodes[s.node].cut
	return c != noNode && !(c == s.node && s.Type() == dns.TypeDS)
}

// NumRRsets returns the number of RRsets of the zone, POOL ones included.
func (z *Zone) NumRRsets() int { return len(z.sets) }

// AppendTypes appends to dst the types of the RRsets at name (canonical),
// a POOL standing for A and AAAA, and reports whether the zone has the
// name (an empty non-terminal has it, with no types). It does not
// allocate when dst has room.
func (z *Zone) AppendTypes(dst []uint16, name string) ([]uint16, bool) {
	i := z.find(name)
	if i == noNode {
		return dst, false
	}
	n := &z.nodes[i]
	for s := n.sets; s < n.sets+uint32(n.nsets); s++ {
		if t := z.sets[s].typ; t == TypePOOL {
			dst = append(dst, dns.TypeA, dns.TypeAAAA)
		} else {
			dst = append(dst, t)
		}
	}
	return dst, true
}

// WithRecords returns a new zone of z's records and extra (the DNSKEY,
// CDS and CDNSKEY records a signer publishes at the apex), validated as a
// zone file's would be, POOL names resolved against pools.
func WithRecords(z *Zone, extra []dns.RR, pools map[string]int) (*Zone, config.Problems) {
	RegisterPOOL()
	b := newBuilder(z.File, z.Origin, pools, nil)
	file := z.soaFile
	if file == "" {
		file = z.File
	}
	for r := range z.All() {
		b.add(r.RR(), file, 0)
	}
	for _, rr := range extra {
		b.add(rr, file, 0)
	}
	nz := b.finish()
	if len(b.ps) > 0 {
		return nil, b.ps
	}
	nz.soaFile, nz.soaLine = z.soaFile, z.soaLine
	return nz, nil
}

// Sibling returns the RRset of type t at the same name, or the empty
// RRset.
func (s RRset) Sibling(t uint16) RRset {
	if s.z == nil {
		return RRset{}
	}
	return s.z.rrsetOf(s.node, t)
}

package dnsserver

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/dnssec"
	"github.com/ternlb/tern/zones"
)

// DNSSEC on the query path (RFC 4035 3.1): with the DO bit set, every
// authoritative RRset of a signed zone goes out with its RRSIGs, placed
// right after it so that truncation keeps or drops them together. Static
// RRsets carry the signatures made when the snapshot was compiled;
// RRsets made per query (pool answers, wildcard expansions, the SOA with
// the served serial, compact-denial NSECs) are signed on first use and
// cached by their exact content (dnssec.Zone.Cached). A delegation's NS
// RRset and glue are never signed (RFC 4035 2.2).

// signing is a worker's state for signing one response.
type signing struct {
	on   bool         // the query has DO and its zone is signed
	zone *dnssec.Zone // the signer of the RRsets being added; nil: unsigned zone
	now  int64        // Unix seconds, read once per query
	// Scratch, reused across queries.
	key   []byte
	rdata []byte
	segs  []seg
	arena []byte // rdata made per query (NSEC), referenced by recs
	types []uint16
	wire  [maxNameWire + 1]byte
	err   bool // a signature could not be made: answer SERVFAIL
}

type seg struct{ off, n int }

// startSigning readies w.sg for a query.
func (w *worker) startSigning(snap *Snapshot) {
	sg := &w.sg
	sg.on, sg.zone, sg.err = false, nil, false
	sg.arena = sg.arena[:0]
	if !w.q.ednsDO || len(snap.DNSSEC) == 0 {
		return
	}
	sg.on = true
	sg.now = time.Now().Unix()
}

// signZone sets the zone whose RRsets are added next.
func (w *worker) signZone(snap *Snapshot, z *zones.Zone) {
	if !w.sg.on {
		return
	}
	w.sg.zone = snap.DNSSEC[z]
}

// signSet appends the RRSIGs of the RRset just added as recs[n:],
// static set's when they are its records unchanged (owner, serial),
// else made (or found in the cache) for the records as they are.
func (w *worker) signSet(n int, set zones.RRset) {
	sg := &w.sg
	if sg.zone == nil || n >= len(w.resp.recs) {
		return
	}
	first := w.resp.recs[n]
	if set.Zone() != nil && dnssec.Signed(set) && first.owner == set.Owner() && !first.serial {
		if sigs := sg.zone.Static(set); len(sigs) > 0 {
			w.addSigs(n, sigs)
			return
		}
	}
	w.signDynamic(n)
}

// addSigs appends an RRSIG record per signature, like the set at recs[n].
func (w *worker) addSigs(n int, sigs []byte) {
	first := w.resp.recs[n]
	for rd := range dnssec.Sigs(sigs) {
		w.resp.add(rec{sect: first.sect, kind: recZone, optional: first.optional, typ: dns.TypeRRSIG,
			class: dns.ClassINET, ttl: first.ttl, owner: first.owner, rdata: rd})
	}
}

// signDynamic signs recs[n:], one RRset, through the zone's cache.
func (w *worker) signDynamic(n int) {
	sg := &w.sg
	recs := w.resp.recs[n:]
	first := recs[0]
	// The key: owner (lowercase wire), type, TTL, then the records'
	// rdata in sorted order (an RRset is a set: a pool's shuffled
	// answers are one RRset whatever their order).
	ow, ok := appendWire(sg.wire[:0], first.owner)
	if !ok {
		sg.err = true
		return
	}
	for i, c := range ow {
		ow[i] = fold(c)
	}
	sg.rdata, sg.segs = sg.rdata[:0], sg.segs[:0]
	for i := range recs {
		r := &recs[i]
		start := len(sg.rdata)
		switch r.kind {
		case recA:
			if r.addr.Is4() {
				a := r.addr.As4()
				sg.rdata = append(sg.rdata, a[:]...)
			} else {
				a := r.addr.As16()
				sg.rdata = append(sg.rdata, a[:]...)
			}
		case recCNAME:
			if sg.rdata, ok = appendWire(sg.rdata, r.target); !ok {
				sg.err = true
				return
			}
		default:
			sg.rdata = append(sg.rdata, r.rdata...)
			if r.serial && len(r.rdata) >= 20 {
				binary.BigEndian.PutUint32(sg.rdata[len(sg.rdata)-20:], r.soaSer)
			}
		}
		sg.segs = append(sg.segs, seg{start, len(sg.rdata) - start})
	}
	segs := sg.segs
	for i := 1; i < len(segs); i++ { // insertion sort: a few records
		for j := i; j > 0 && bytes.Compare(sg.rdata[segs[j].off:segs[j].off+segs[j].n], sg.rdata[segs[j-1].off:segs[j-1].off+segs[j-1].n]) < 0; j-- {
			segs[j], segs[j-1] = segs[j-1], segs[j]
		}
	}
	k := append(sg.key[:0], ow...)
	k = binary.BigEndian.AppendUint16(k, first.typ)
	k = binary.BigEndian.AppendUint32(k, first.ttl)
	for _, s := range segs {
		k = binary.BigEndian.AppendUint16(k, uint16(s.n))
		k = append(k, sg.rdata[s.off:s.off+s.n]...)
	}
	sg.key = k
	if sigs, ok := sg.zone.Cached(k, sg.now); ok {
		w.addSigs(n, sigs)
		return
	}
	w.signMiss(n, first)
}

// signMiss signs the RRset recs[n:] whose key and rdata are in w.sg: the
// cost of one signature per key, and allocations.
func (w *worker) signMiss(n int, first rec) {
	sg := &w.sg
	rrs := make([]dns.RR, 0, len(sg.segs))
	for _, s := range sg.segs {
		rd := sg.rdata[s.off : s.off+s.n]
		h := dns.RR_Header{Name: first.owner, Rrtype: first.typ, Class: dns.ClassINET, Ttl: first.ttl, Rdlength: uint16(len(rd))}
		rr, _, err := dns.UnpackRRWithHeader(h, rd, 0)
		if err != nil {
			sg.err = true
			return
		}
		rrs = append(rrs, rr)
	}
	sigs, err := sg.zone.SignDynamic(sg.key, rrs, time.Unix(sg.now, 0))
	if err != nil {
		w.log.Error("DNSSEC: signing failed: answered SERVFAIL", "owner", first.owner, "type", dns.Type(first.typ).String(), "err", err)
		sg.err = true
		return
	}
	w.addSigs(n, sigs)
}

// denial adds the compact-denial NSEC at name (RFC 9824 3), signed:
// for a name that exists (NODATA) its types but absent (the qtype, or DS
// at an insecure delegation), from owner's node (the wildcard's when one
// matched); for one that does not (nx), NXNAME.
func (w *worker) denial(z *zones.Zone, name, owner string, nx bool, absent uint16) {
	sg := &w.sg
	if sg.zone == nil {
		return
	}
	sg.types = sg.types[:0]
	if nx {
		sg.types = append(sg.types, dnssec.TypeNXNAME)
	} else {
		if owner == "" {
			owner = name
		}
		sg.types, _ = z.AppendTypes(sg.types, owner)
		sg.types = dnssec.NegativeTypes(sg.types, absent)
	}
	ow, ok := appendWire(sg.wire[:0], name)
	if !ok {
		sg.err = true
		return
	}
	for i, c := range ow {
		ow[i] = fold(c)
	}
	start := len(sg.arena)
	sg.arena = dnssec.AppendNSECRdata(sg.arena, ow, sg.types)
	n := len(w.resp.recs)
	w.resp.add(rec{sect: secAuthority, kind: recZone, typ: dns.TypeNSEC, class: dns.ClassINET,
		ttl: sg.zone.NegativeTTL(), owner: name, rdata: sg.arena[start:len(sg.arena):len(sg.arena)]})
	w.signDynamic(n)
}

// delegationDS adds, to a signed referral, the child's DS RRset signed,
// or the NSEC that proves there is none (an insecure delegation).
func (w *worker) delegationDS(z *zones.Zone, ns zones.RRset) {
	if w.sg.zone == nil || ns.Zone() == nil {
		return
	}
	ds := ns.Sibling(dns.TypeDS)
	if ds.Len() > 0 {
		n := len(w.resp.recs)
		w.addSet(secAuthority, ds, "", false)
		w.signSet(n, ds)
		return
	}
	w.denial(z, ns.Owner(), "", false, dns.TypeDS)
}

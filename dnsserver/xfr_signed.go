package dnsserver

import (
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/dnssec"
	"github.com/ternlb/tern/zones"
)

// signedTransfer is the body of a signed zone's transfer: the static view
// (transferRecords) with soa, every authoritative RRset signed, and a
// full NSEC chain (RFC 4034 4, RFC 4035 2.3) over the authoritative names
// and delegation points, so that a secondary that knows nothing of Tern
// serves a zone that validates (the answers it gives for pool names are
// the static view's, every address, as with an unsigned zone). A
// delegation's NS RRset and glue go unsigned, and glue names are not in
// the chain. Signatures are made for the transfer, valid for the signer's
// period: a secondary keeps serving them until the next transfer, which a
// NOTIFY on every serial change brings.
func signedTransfer(sz *dnssec.Zone, soa *dns.SOA, body iter.Seq[zones.Record], now time.Time) ([]dns.RR, error) {
	z := sz.Zone
	type name struct {
		owner string
		sets  [][]dns.RR
		cut   bool // a delegation point
		glue  bool // below a cut
	}
	var names []*name
	apexSOA := *soa
	apexSOA.Hdr.Name = z.Origin
	add := func(rr dns.RR) {
		h := rr.Header()
		owner := strings.ToLower(h.Name)
		if len(names) == 0 || names[len(names)-1].owner != owner {
			n := &name{owner: owner}
			if r := z.Lookup(owner, dns.TypeA); r.Kind == zones.Delegation {
				n.cut, n.glue = r.Owner == owner, r.Owner != owner
			}
			names = append(names, n)
		}
		n := names[len(names)-1]
		for i, set := range n.sets {
			if set[0].Header().Rrtype == h.Rrtype {
				n.sets[i] = append(set, rr)
				return
			}
		}
		n.sets = append(n.sets, []dns.RR{rr})
	}
	add(&apexSOA)
	for r := range body {
		add(r.RR())
	}
	// The chain's names: every name but glue, in canonical order (the
	// body's order).
	var chain []*name
	for _, n := range names {
		if !n.glue {
			chain = append(chain, n)
		}
	}
	ttl := sz.NegativeTTL()
	var out []dns.RR
	var types []uint16
	for i, n := range names {
		if n.glue {
			for _, set := range n.sets {
				out = append(out, set...)
			}
			continue
		}
		types = types[:0]
		for _, set := range n.sets {
			types = append(types, set[0].Header().Rrtype)
		}
		for _, set := range n.sets {
			if set[0].Header().Rrtype == dns.TypeSOA && i == 0 {
				// The SOA opens and closes the transfer; its RRSIG is in
				// the body.
			} else {
				out = append(out, set...)
			}
			if n.cut && set[0].Header().Rrtype != dns.TypeDS {
				continue
			}
			sigs := staticSigs(sz, n.owner, set)
			if sigs == nil {
				var err error
				if sigs, err = sz.Signer.Sign(nil, set, now); err != nil {
					return nil, err
				}
			}
			out = appendRRSIGs(out, n.owner, set[0].Header().Ttl, sigs)
		}
		j := slices.Index(chain, n)
		next := chain[(j+1)%len(chain)].owner
		bm := append(slices.Clone(types), dns.TypeNSEC, dns.TypeRRSIG)
		slices.Sort(bm)
		bm = slices.Compact(bm)
		nsec := &dns.NSEC{Hdr: dns.RR_Header{Name: n.owner, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: ttl}, NextDomain: next, TypeBitMap: bm}
		sigs, err := sz.Signer.Sign(nil, []dns.RR{nsec}, now)
		if err != nil {
			return nil, err
		}
		out = append(out, nsec)
		out = appendRRSIGs(out, n.owner, ttl, sigs)
	}
	return out, nil
}

// staticSigs returns the compiled signatures of set when it is one of
// the zone's static RRsets as it stands (not a pool's static view, not
// the SOA), else nil: a transfer signs only what the zone does not hold
// signed already.
func staticSigs(sz *dnssec.Zone, owner string, set []dns.RR) []byte {
	t := set[0].Header().Rrtype
	r := sz.Zone.Lookup(owner, t)
	if r.Kind != zones.Success || r.Wildcard || r.Owner != owner || r.Answer.Type() != t || r.Answer.Len() != len(set) || !dnssec.Signed(r.Answer) {
		return nil
	}
	return sz.Static(r.Answer)
}

func appendRRSIGs(out []dns.RR, owner string, ttl uint32, sigs []byte) []dns.RR {
	for rd := range dnssec.Sigs(sigs) {
		rr, _, err := dns.UnpackRRWithHeader(dns.RR_Header{Name: owner, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: ttl, Rdlength: uint16(len(rd))}, rd, 0)
		if err == nil {
			out = append(out, rr)
		}
	}
	return out
}

// records is rrs as a Record sequence for streamTransfer.
func records(rrs []dns.RR) iter.Seq[zones.Record] {
	return func(yield func(zones.Record) bool) {
		buf := make([]byte, 65536)
		for _, rr := range rrs {
			h := rr.Header()
			n, err := dns.PackRR(rr, buf, 0, nil, false)
			if err != nil {
				continue
			}
			hdr := 0
			for hdr < n && buf[hdr] != 0 {
				hdr += int(buf[hdr]) + 1
			}
			hdr += 11
			if !yield(zones.Record{Owner: h.Name, Type: h.Rrtype, TTL: h.Ttl, Rdata: buf[hdr:n]}) {
				return
			}
		}
	}
}

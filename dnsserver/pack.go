package dnsserver

import (
	"encoding/binary"
	"hash"
	"net/netip"

	"github.com/miekg/dns"
)

// Sections of a response.
const (
	secAnswer = iota
	secAuthority
	secAdditional
)

// Kinds of record a response carries.
const (
	recZone   = iota // a record of a zone, packed from rr
	recA             // synthesized A or AAAA from addr
	recCNAME         // synthesized CNAME to target
	recNegSOA        // rr (a SOA) with ttl as the negative TTL
	recTXT           // synthesized TXT (CHAOS), text in target
)

// rec is one record of a response before packing. Records of one RRset
// are adjacent.
type rec struct {
	sect uint8
	kind uint8
	// optional: the RRset may be left out when it does not fit, without
	// setting TC (additional data other than in-domain glue).
	optional bool
	class    uint16
	owner    string // the owner name to write; "" means rr's own owner
	rr       dns.RR
	ttl      uint32
	addr     netip.Addr
	target   string
}

func (r *rec) rrtype() uint16 {
	switch r.kind {
	case recA:
		if r.addr.Is4() {
			return dns.TypeA
		}
		return dns.TypeAAAA
	case recCNAME:
		return dns.TypeCNAME
	case recTXT:
		return dns.TypeTXT
	}
	return r.rr.Header().Rrtype
}

func (r *rec) ownerName() string {
	if r.owner != "" {
		return r.owner
	}
	return r.rr.Header().Name
}

// response is what the handler decided, before packing.
type response struct {
	rcode int // may be extended (BADVERS)
	aa    bool
	recs  []rec
	// scope is the ECS scope to echo; only meaningful when the query
	// carried ECS.
	scope uint8
	// nsid is the NSID option's payload when the query asked for it.
	nsid string
	// tc sets TC=1 (a response RRL lets slip out empty).
	tc bool
	// tsig, when set, is the TSIG record to end the response with.
	tsig *tsigState
	// cookie is the server cookie to answer a query's COOKIE option
	// with.
	cookie [cookieServerLen]byte
}

func (r *response) reset() {
	*r = response{recs: r.recs[:0]}
}

func (r *response) add(x rec) { r.recs = append(r.recs, x) }

// packer writes responses. It belongs to one worker.
type packer struct {
	comp map[string]int // compression: name -> offset
	// buf holds a 2-byte length prefix (for TCP) and the response under
	// construction.
	buf []byte
	// tmp packs one record of a type Tern does not write itself.
	tmp    dns.Msg
	tmpRR  [1]dns.RR
	tmpBuf []byte
	// q is the query being answered; seeded says comp holds its name.
	q      *query
	seeded bool
	// serials are the SOA serials served in place of the zone files'
	// (see Snapshot.Serials); nil when none differ.
	serials map[*dns.SOA]uint32

	// TSIG: the HMAC of the last key used, kept for the next signed
	// query, and scratch space for what is hashed and the MAC.
	hmacKey  *tsigKey
	hmac     hash.Hash
	hdr      [headerLen]byte
	tsigVars [2*(maxNameWire+1) + 32]byte
	macBuf   [64]byte
}

const maxMsg = 65535

func newPacker() *packer {
	p := &packer{
		comp: make(map[string]int, 16),
		buf:  make([]byte, 2+maxMsg),
	}
	p.tmp.Answer = p.tmpRR[:]
	return p
}

// boundary is the state after a complete RRset.
type boundary struct {
	off        int
	an, ns, ar int
}

// pack writes the response to q with resp's records, cutting whole RRsets
// so that the message fits limit bytes, and returns it.
func (p *packer) pack(q *query, resp *response, limit int, udpSize int) []byte {
	if p.seeded {
		clear(p.comp)
		p.seeded = false
	}
	p.q = q
	b := p.buf[2 : 2+maxMsg]
	flags := uint16(flagQR) | q.flags&(0xF<<11|flagRD|flagCD) | uint16(resp.rcode&0xF)
	if resp.aa {
		flags |= flagAA
	}
	binary.BigEndian.PutUint16(b[0:], q.id)
	off := headerLen
	qd := 0
	if q.hasQuestion {
		qd = 1
		copy(b[off:], q.qwire)
		off += len(q.qwire)
		binary.BigEndian.PutUint16(b[off:], q.qtype)
		binary.BigEndian.PutUint16(b[off+2:], q.qclass)
		off += 4
	}
	// Room kept at the end for the OPT and TSIG records.
	reserve := 0
	if q.edns {
		reserve = optLen(q, resp)
	}
	if resp.tsig != nil {
		reserve += tsigLen(resp.tsig)
	}
	// Whole RRsets only: a set that does not fit is left out with the
	// rest of the response and TC set, unless it is optional; then it
	// alone is left out, without TC (RFC 2181 9, RFC 9471).
	last := boundary{off: off}
	truncated := false
	for i := 0; i < len(resp.recs); {
		j := i + 1
		for j < len(resp.recs) && sameSet(&resp.recs[i], &resp.recs[j]) {
			j++
		}
		cur := last
		fits := true
		for k := i; k < j; k++ {
			r := &resp.recs[k]
			end, ok := p.packRec(b, cur.off, r)
			if !ok || end+reserve > limit {
				fits = false
				break
			}
			cur.off = end
			switch r.sect {
			case secAnswer:
				cur.an++
			case secAuthority:
				cur.ns++
			default:
				cur.ar++
			}
		}
		if fits {
			last = cur
		} else {
			p.forget(last.off)
			if !resp.recs[i].optional {
				truncated = true
				break
			}
		}
		i = j
	}
	if truncated || resp.tc {
		flags |= flagTC
	}
	cur := last
	off = cur.off
	if q.edns {
		off = p.writeOPT(b, off, q, resp, udpSize)
		cur.ar++
	}
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], uint16(qd))
	binary.BigEndian.PutUint16(b[6:], uint16(cur.an))
	binary.BigEndian.PutUint16(b[8:], uint16(cur.ns))
	binary.BigEndian.PutUint16(b[10:], uint16(cur.ar))
	if resp.tsig != nil {
		off = p.writeTSIG(b, off, resp.tsig, q.id)
		binary.BigEndian.PutUint16(b[10:], uint16(cur.ar+1))
	}
	return b[:off]
}

// forget drops the compression entries of names written at or after
// off, where a record that did not fit was cut off: later names must not
// point there.
func (p *packer) forget(off int) {
	if !p.seeded {
		return
	}
	for name, at := range p.comp {
		if at >= off {
			delete(p.comp, name)
		}
	}
}

// framed returns msg, the last packed response, with its TCP length
// prefix (RFC 1035 4.2.2).
func (p *packer) framed(msg []byte) []byte {
	binary.BigEndian.PutUint16(p.buf, uint16(len(msg)))
	return p.buf[:2+len(msg)]
}

func sameSet(a, b *rec) bool {
	return a.sect == b.sect && a.rrtype() == b.rrtype() && a.ownerName() == b.ownerName()
}

// packRec writes r at off and returns the end, or false when it does not
// fit the buffer or cannot be packed.
func (p *packer) packRec(b []byte, off int, r *rec) (int, bool) {
	off, ok := p.name(b, off, r.ownerName())
	if !ok || off+10 > len(b) {
		return 0, false
	}
	typ := r.rrtype()
	class := r.class
	ttl := r.ttl
	if r.kind == recZone || r.kind == recNegSOA {
		h := r.rr.Header()
		class = h.Class
		if r.kind == recZone {
			ttl = h.Ttl
		}
	}
	binary.BigEndian.PutUint16(b[off:], typ)
	binary.BigEndian.PutUint16(b[off+2:], class)
	binary.BigEndian.PutUint32(b[off+4:], ttl)
	rd := off + 10
	end, ok := p.packRdata(b, rd, r)
	if !ok || end-rd > 0xFFFF {
		return 0, false
	}
	binary.BigEndian.PutUint16(b[off+8:], uint16(end-rd))
	return end, true
}

func (p *packer) packRdata(b []byte, off int, r *rec) (int, bool) {
	switch r.kind {
	case recA:
		return putAddr(b, off, r.addr)
	case recCNAME:
		return p.name(b, off, r.target)
	case recTXT:
		s := r.target
		if len(s) > 255 {
			s = s[:255]
		}
		if off+1+len(s) > len(b) {
			return 0, false
		}
		b[off] = byte(len(s))
		copy(b[off+1:], s)
		return off + 1 + len(s), true
	}
	switch rr := r.rr.(type) {
	case *dns.A:
		a, _ := netip.AddrFromSlice(rr.A.To4())
		return putAddr(b, off, a)
	case *dns.AAAA:
		a, _ := netip.AddrFromSlice(rr.AAAA.To16())
		return putAddr(b, off, a)
	case *dns.CNAME:
		return p.name(b, off, rr.Target)
	case *dns.NS:
		return p.name(b, off, rr.Ns)
	case *dns.PTR:
		return p.name(b, off, rr.Ptr)
	case *dns.MX:
		if off+2 > len(b) {
			return 0, false
		}
		binary.BigEndian.PutUint16(b[off:], rr.Preference)
		return p.name(b, off+2, rr.Mx)
	case *dns.SRV:
		if off+6 > len(b) {
			return 0, false
		}
		binary.BigEndian.PutUint16(b[off:], rr.Priority)
		binary.BigEndian.PutUint16(b[off+2:], rr.Weight)
		binary.BigEndian.PutUint16(b[off+4:], rr.Port)
		// RFC 2782: the target is not compressed, but later names
		// (its addresses' owners) may point into it.
		p.seed()
		end, err := dns.PackDomainName(rr.Target, b, off+6, p.comp, false)
		return end, err == nil
	case *dns.SOA:
		off, ok := p.name(b, off, rr.Ns)
		if !ok {
			return 0, false
		}
		if off, ok = p.name(b, off, rr.Mbox); !ok || off+20 > len(b) {
			return 0, false
		}
		serial := rr.Serial
		if v, ok := p.serials[rr]; ok {
			serial = v
		}
		for i, v := range [5]uint32{serial, rr.Refresh, rr.Retry, rr.Expire, rr.Minttl} {
			binary.BigEndian.PutUint32(b[off+4*i:], v)
		}
		return off + 20, true
	}
	return p.generic(b, off, r.rr)
}

// generic packs the RDATA of any other type through miekg/dns: the record
// alone in a message without compression (RFC 3597 forbids compressing
// names in the RDATA of newer types), then copies the RDATA out. Packing a
// Msg does not write to the record, so records shared between workers are
// safe.
func (p *packer) generic(b []byte, off int, rr dns.RR) (int, bool) {
	p.tmpRR[0] = rr
	p.tmp.Answer = p.tmpRR[:]
	if p.tmpBuf == nil {
		p.tmpBuf = make([]byte, maxMsg)
	}
	m, err := p.tmp.PackBuffer(p.tmpBuf)
	p.tmpRR[0] = nil
	if err != nil {
		return 0, false
	}
	o, err := skipName(m, headerLen)
	if err != nil || o+10 > len(m) {
		return 0, false
	}
	rdlen := int(binary.BigEndian.Uint16(m[o+8:]))
	rd := m[o+10:]
	if rdlen > len(rd) || off+rdlen > len(b) {
		return 0, false
	}
	copy(b[off:], rd[:rdlen])
	return off + rdlen, true
}

// name writes a domain name, compressed. The query's name and its
// parents, the most common names in an answer, become a pointer into the
// question without a table lookup; other names go through miekg/dns's
// packer and the compression table.
func (p *packer) name(b []byte, off int, name string) (int, bool) {
	if q := p.q; q.hasQuestion && off+2 <= len(b) {
		for i, lt := range q.labelTexts {
			if name == q.name[lt:] {
				ptr := headerLen + q.labelOffs[i]
				b[off], b[off+1] = 0xC0|byte(ptr>>8), byte(ptr)
				return off + 2, true
			}
		}
	}
	p.seed()
	end, err := dns.PackDomainName(name, b, off, p.comp, true)
	return end, err == nil
}

// seed fills the compression table with the question's name: lower case
// text to the original-case labels, so that a name ending in it points
// into the question.
func (p *packer) seed() {
	if p.seeded {
		return
	}
	p.seeded = true
	q := p.q
	if !q.hasQuestion {
		return
	}
	for i, lo := range q.labelOffs {
		p.comp[q.name[q.labelTexts[i]:]] = headerLen + lo
	}
}

func putAddr(b []byte, off int, a netip.Addr) (int, bool) {
	if a.Is4() {
		if off+4 > len(b) {
			return 0, false
		}
		v := a.As4()
		copy(b[off:], v[:])
		return off + 4, true
	}
	if off+16 > len(b) {
		return 0, false
	}
	v := a.As16()
	copy(b[off:], v[:])
	return off + 16, true
}

// optLen is the size of the OPT RR writeOPT will write for q.
func optLen(q *query, resp *response) int {
	n := 11
	if q.ecs && q.ecsFamily != 0 {
		n += 4 + 4 + (int(q.ecsSource)+7)/8
	}
	if q.nsid {
		n += 4 + len(resp.nsid)
	}
	if q.cookie {
		n += 4 + cookieClientLen + cookieServerLen
	}
	return n
}

// writeOPT appends the response's OPT RR (RFC 6891 6.1): our UDP size, the
// extended rcode, version 0, DO copied from the query, the ECS option
// with its scope, NSID, and the client's cookie with our server cookie.
func (p *packer) writeOPT(b []byte, off int, q *query, resp *response, udpSize int) int {
	b[off] = 0 // root
	binary.BigEndian.PutUint16(b[off+1:], dns.TypeOPT)
	binary.BigEndian.PutUint16(b[off+3:], uint16(udpSize))
	ttl := uint32(resp.rcode>>4) << 24
	if q.ednsDO {
		ttl |= ednsDO
	}
	binary.BigEndian.PutUint32(b[off+5:], ttl)
	rdStart := off + 11
	o := rdStart
	if q.ecs && q.ecsFamily != 0 {
		n := (int(q.ecsSource) + 7) / 8
		binary.BigEndian.PutUint16(b[o:], optSubnet)
		binary.BigEndian.PutUint16(b[o+2:], uint16(4+n))
		binary.BigEndian.PutUint16(b[o+4:], q.ecsFamily)
		b[o+6] = q.ecsSource
		b[o+7] = resp.scope
		if q.ecsFamily == 1 {
			a := q.ecsAddr.As4()
			copy(b[o+8:], a[:n])
		} else {
			a := q.ecsAddr.As16()
			copy(b[o+8:], a[:n])
		}
		o += 8 + n
	}
	if q.nsid {
		id := resp.nsid
		binary.BigEndian.PutUint16(b[o:], optNSID)
		binary.BigEndian.PutUint16(b[o+2:], uint16(len(id)))
		copy(b[o+4:], id)
		o += 4 + len(id)
	}
	if q.cookie {
		binary.BigEndian.PutUint16(b[o:], optCookie)
		binary.BigEndian.PutUint16(b[o+2:], cookieClientLen+cookieServerLen)
		copy(b[o+4:], q.cookieClient[:])
		copy(b[o+4+cookieClientLen:], resp.cookie[:])
		o += 4 + cookieClientLen + cookieServerLen
	}
	binary.BigEndian.PutUint16(b[off+9:], uint16(o-rdStart))
	return o
}

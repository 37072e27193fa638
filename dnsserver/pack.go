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
	recZone  = iota // a record of a zone: wire rdata
	recA            // synthesized A or AAAA from addr
	recCNAME        // synthesized CNAME to target
	recTXT          // synthesized TXT (CHAOS), text in target
)

// rec is one record of a response before packing. Records of one RRset
// are adjacent.
type rec struct {
	sect uint8
	kind uint8
	// optional: the RRset may be left out when it does not fit, without
	// setting TC (additional data other than in-domain glue).
	optional bool
	// serial: rdata is a SOA's, to be written with serial in place of its
	// own (see Snapshot.Serials).
	serial bool
	typ    uint16
	class  uint16
	ttl    uint32
	soaSer uint32
	owner  string // the owner name to write, presentation form
	rdata  []byte // recZone: the zone's wire rdata, names uncompressed
	addr   netip.Addr
	target string
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

// add appends x. Not inlined: each inlined copy of append brings its
// growth path's code along, and the query path runs several call sites;
// one copy keeps its instructions in fewer cache lines (a geo query's
// code is about the size of the first-level instruction cache,
// BENCHMARKS.md).
//
//go:noinline
func (r *response) add(x rec) { r.recs = append(r.recs, x) }

// next appends a zero record and returns it, for the caller to fill at
// once (a later add or next may move it): the hot paths set a record's
// fields in place instead of building it on the stack and copying it.
//
//go:noinline
func (r *response) next() *rec {
	n := len(r.recs)
	if n < cap(r.recs) {
		r.recs = r.recs[:n+1]
		r.recs[n] = rec{}
	} else {
		r.recs = append(r.recs, rec{})
	}
	return &r.recs[n]
}

// packer writes responses. It belongs to one worker.
type packer struct {
	// buf holds a 2-byte length prefix (for TCP) and the response under
	// construction.
	buf []byte
	// names are the names written so far that later ones may point to
	// (RFC 1035 4.1.4), the question's first: for each label, where it
	// starts and how long the name is from there, uncompressed.
	names  [maxCompress]nameAt
	nnames int
	// qlabels: the question's labels are still to be put in names.
	// name points at the question's own suffixes without the table, so
	// most responses never need it; wireName puts them first when it
	// does.
	qlabels bool
	wire    [maxNameWire + 1]byte // a name being written, in wire form
	// q is the query being answered.
	q *query

	// TSIG: the HMAC of the last key used, kept for the next signed
	// query, and scratch space for what is hashed and the MAC.
	hmacKey  *tsigKey
	hmac     hash.Hash
	hdr      [headerLen]byte
	tsigVars [2*(maxNameWire+1) + 32]byte
	macBuf   [64]byte
}

const maxMsg = 65535

// maxCompress bounds the labels a response remembers for compression:
// a longer response is compressed less, never wrongly.
const maxCompress = 256

// nameAt is a label of the response that names may point to.
type nameAt struct {
	off uint16 // where the label starts, under 0x4000
	rem uint16 // the length of the name from there, uncompressed
}

func newPacker() *packer {
	return &packer{buf: make([]byte, 2+maxMsg)}
}

// boundary is the state after a complete RRset.
type boundary struct {
	off        int
	an, ns, ar int
}

// pack writes the response to q with resp's records, cutting whole RRsets
// so that the message fits limit bytes, and returns it.
func (p *packer) pack(q *query, resp *response, limit int, udpSize int) []byte {
	p.q = q
	p.nnames = 0
	p.qlabels = q.hasQuestion
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
	for p.nnames > 0 && int(p.names[p.nnames-1].off) >= off {
		p.nnames--
	}
}

// framed returns msg, the last packed response, with its TCP length
// prefix (RFC 1035 4.2.2).
func (p *packer) framed(msg []byte) []byte {
	binary.BigEndian.PutUint16(p.buf, uint16(len(msg)))
	return p.buf[:2+len(msg)]
}

// sameSet reports whether b belongs with the RRset a starts: one of its
// records, or an RRSIG over it (kept or cut with it).
func sameSet(a, b *rec) bool {
	return a.sect == b.sect && a.owner == b.owner && (a.typ == b.typ || b.typ == dns.TypeRRSIG)
}

// packRec writes r at off and returns the end, or false when it does not
// fit the buffer or cannot be packed.
func (p *packer) packRec(b []byte, off int, r *rec) (int, bool) {
	off, ok := p.name(b, off, r.owner)
	if !ok || off+10 > len(b) {
		return 0, false
	}
	binary.BigEndian.PutUint16(b[off:], r.typ)
	binary.BigEndian.PutUint16(b[off+2:], r.class)
	binary.BigEndian.PutUint32(b[off+4:], r.ttl)
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
	return p.zoneRdata(b, off, r)
}

// zoneRdata writes a zone record's wire rdata. Names in the rdata of
// the types RFC 1035 defines (CNAME, MB, MD, MF, MG, MINFO, MR, MX, NS,
// PTR, SOA) are compressed, as RFC 3597 section 4 allows for those and
// only those: they are the bulk of what an answer repeats (a name
// server's or exchange's name is its address record's owner). SRV's
// target is written whole (RFC 2782) but later names may point into
// it; every other type's rdata is copied as it is.
func (p *packer) zoneRdata(b []byte, off int, r *rec) (int, bool) {
	rd := r.rdata
	var fixed, names int // bytes before the names; names to compress
	compress := true
	switch r.typ {
	case dns.TypeCNAME, dns.TypeNS, dns.TypePTR, dns.TypeMB, dns.TypeMD, dns.TypeMF, dns.TypeMG, dns.TypeMR:
		names = 1
	case dns.TypeMINFO, dns.TypeSOA:
		names = 2
	case dns.TypeMX:
		fixed, names = 2, 1
	case dns.TypeSRV:
		fixed, names, compress = 6, 1, false
	}
	if off+fixed > len(b) || fixed > len(rd) {
		return 0, false
	}
	off += copy(b[off:], rd[:fixed])
	rd = rd[fixed:]
	for range names {
		l := wireNameLen(rd)
		if l < 0 {
			return 0, false
		}
		var ok bool
		if off, ok = p.wireName(b, off, rd[:l], compress); !ok {
			return 0, false
		}
		rd = rd[l:]
	}
	if off+len(rd) > len(b) {
		return 0, false
	}
	if r.serial && len(rd) == 20 {
		binary.BigEndian.PutUint32(b[off:], r.soaSer)
		copy(b[off+4:], rd[4:])
		return off + 20, true
	}
	return off + copy(b[off:], rd), true
}

// name writes a domain name given in presentation form, compressed. The
// query's name and its parents, the most common names in an answer,
// become a pointer into the question at once.
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
	w, ok := appendWire(p.wire[:0], name)
	if !ok {
		return 0, false
	}
	return p.wireName(b, off, w, true)
}

// wireName writes w, an uncompressed wire-format name, at off: when
// compress is set, its longest tail that the response already holds
// becomes a pointer to it. Its labels are remembered either way.
// Names compare without regard to case (RFC 4343), so a name in the
// question's case points into the question.
func (p *packer) wireName(b []byte, off int, w []byte, compress bool) (int, bool) {
	if p.qlabels {
		p.qlabels = false
		for _, lo := range p.q.labelOffs {
			p.remember(headerLen+lo, len(p.q.qwire)-lo)
		}
	}
	cut, ptr := len(w), -1
	if compress {
		for i := 0; i < len(w) && w[i] != 0; i += int(w[i]) + 1 {
			if at := p.holds(b, w[i:]); at >= 0 {
				cut, ptr = i, at
				break
			}
		}
	}
	end := off + cut
	if ptr >= 0 {
		end += 2
	}
	if end > len(b) {
		return 0, false
	}
	copy(b[off:], w[:cut])
	for i := 0; i < cut && w[i] != 0; i += int(w[i]) + 1 {
		p.remember(off+i, len(w)-i)
	}
	if ptr >= 0 {
		b[off+cut], b[off+cut+1] = 0xC0|byte(ptr>>8), byte(ptr)
	}
	return end, true
}

// remember notes a label at off that later names may point to.
func (p *packer) remember(off, rem int) {
	if off < 0x4000 && p.nnames < maxCompress {
		p.names[p.nnames] = nameAt{off: uint16(off), rem: uint16(rem)}
		p.nnames++
	}
}

// holds returns where the response holds the name w (uncompressed wire
// form), or -1.
func (p *packer) holds(b []byte, w []byte) int {
	for _, n := range p.names[:p.nnames] {
		if int(n.rem) == len(w) && sameName(b, int(n.off), w) {
			return int(n.off)
		}
	}
	return -1
}

// sameName reports whether the name at off in b (compressed perhaps) is
// w, in any case.
func sameName(b []byte, off int, w []byte) bool {
	for hops := 0; off < len(b); {
		c := int(b[off])
		if c&0xC0 == 0xC0 {
			if hops++; hops > 64 || off+1 >= len(b) {
				return false
			}
			off = (c&0x3F)<<8 | int(b[off+1])
			continue
		}
		if len(w) == 0 || c != int(w[0]) || off+1+c > len(b) || len(w) < 1+c {
			return false
		}
		if c == 0 {
			return true
		}
		for k := 1; k <= c; k++ {
			if fold(b[off+k]) != fold(w[k]) {
				return false
			}
		}
		off, w = off+1+c, w[1+c:]
	}
	return false
}

func fold(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// wireNameLen returns the length of the uncompressed wire-format name at
// the start of b, or -1 when b does not start with one.
func wireNameLen(b []byte) int {
	for i := 0; i < len(b); {
		l := int(b[i])
		switch {
		case l == 0:
			return i + 1
		case l&0xC0 != 0:
			return -1
		}
		i += 1 + l
	}
	return -1
}

// appendWire appends name, absolute and in presentation form (\X and
// \DDD escapes), in uncompressed wire form.
func appendWire(dst []byte, name string) ([]byte, bool) {
	if name == "." {
		return append(dst, 0), true
	}
	start := len(dst)
	lab := len(dst)
	dst = append(dst, 0)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.':
			if l := len(dst) - lab - 1; l == 0 || l > 63 {
				return dst, false
			}
			dst[lab] = byte(len(dst) - lab - 1)
			lab = len(dst)
			dst = append(dst, 0)
			continue
		case c == '\\' && i+3 < len(name) && isDigit(name[i+1]) && isDigit(name[i+2]) && isDigit(name[i+3]):
			v := int(name[i+1]-'0')*100 + int(name[i+2]-'0')*10 + int(name[i+3]-'0')
			if v > 255 {
				return dst, false
			}
			c = byte(v)
			i += 3
		case c == '\\' && i+1 < len(name):
			i++
			c = name[i]
		}
		dst = append(dst, c)
	}
	// An absolute name ends in a dot, whose placeholder is the root.
	return dst, len(dst)-lab == 1 && len(dst)-start <= maxNameWire
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

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
	// The record's fixed part, through an array: one bounds check.
	h := (*[11]byte)(b[off : off+11])
	ttl := uint32(resp.rcode>>4) << 24
	if q.ednsDO {
		ttl |= ednsDO
	}
	h[0] = 0 // root
	binary.BigEndian.PutUint16(h[1:3], dns.TypeOPT)
	binary.BigEndian.PutUint16(h[3:5], uint16(udpSize))
	binary.BigEndian.PutUint32(h[5:9], ttl)
	rdStart := off + 11
	o := rdStart
	if q.ecs && q.ecsFamily != 0 {
		n := (int(q.ecsSource) + 7) / 8
		e := b[o : o+8+n]
		_ = e[7] // one bounds check for the option's fixed part
		binary.BigEndian.PutUint16(e[0:2], optSubnet)
		binary.BigEndian.PutUint16(e[2:4], uint16(4+n))
		binary.BigEndian.PutUint16(e[4:6], q.ecsFamily)
		e[6] = q.ecsSource
		e[7] = resp.scope
		a := q.ecsAddr.As16()
		if q.ecsFamily == 1 {
			a4 := q.ecsAddr.As4()
			copy(a[:], a4[:])
		}
		copy(e[8:8+n], a[:n])
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
	binary.BigEndian.PutUint16(h[9:11], uint16(o-rdStart))
	return o
}

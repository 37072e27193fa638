package dnsserver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"unsafe"

	"github.com/miekg/dns"
)

// DNS header flag bits (RFC 1035 4.1.1).
const (
	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagCD = 1 << 4

	headerLen   = 12
	maxNameWire = 255
	// ednsDO is the DNSSEC OK bit in the OPT TTL's low 16 bits.
	ednsDO = 1 << 15
	// ednsCO is the Compact Answers OK bit (RFC 9824 4): the querier
	// wants NXDOMAIN kept in compact-denial answers.
	ednsCO = 1 << 14
)

// EDNS0 option codes Tern reads.
const (
	optNSID   = 3
	optSubnet = 8
	optCookie = 10
)

// errFormat marks a query that is not well formed: answered FORMERR.
var errFormat = errors.New("malformed query")

// query is one parsed request. It lives in a worker and is reused; its
// byte slices point into the worker's buffers or the request itself.
type query struct {
	id     uint16
	flags  uint16 // the request's header flags
	opcode int

	// question
	hasQuestion bool
	qwire       []byte // the question's name as on the wire, original case
	qname       []byte // presentation form, lower case, fully qualified
	// name is qname as a string sharing its bytes: valid until the next
	// parse, never kept beyond the query.
	name       string
	labelOffs  []int // per label: start offset in qwire
	labelTexts []int // per label: start offset in qname
	qtype      uint16
	qclass     uint16

	// EDNS0
	edns        bool
	ednsVersion uint8
	ednsDO      bool
	ednsCO      bool
	udpSize     uint16
	nsid        bool
	// optOK: the OPT RR itself was well formed, so even an error answer
	// carries one (RFC 6891 6.1.1).
	optOK bool

	// ECS (RFC 7871)
	ecs       bool
	ecsFamily uint16
	ecsSource uint8
	ecsAddr   netip.Addr

	// COOKIE (RFC 7873): cookie says a well-formed option came, with
	// the client cookie and the server cookie (none, or 8 to 32 bytes
	// pointing into the request).
	cookie       bool
	cookieClient [cookieClientLen]byte
	cookieServer []byte

	// tsigOff is the offset of the request's TSIG record (RFC 8945), the
	// last of its additional section; 0 when it has none.
	tsigOff int
}

// reset clears what the last request left, keeping the buffers. Field
// by field: assigning a whole new query built it on the stack and
// copied its 200 bytes, pointers under the write barrier's check (95
// instructions a query, more than this takes). TestQueryReset fails when
// a field is added and not cleared here.
func (q *query) reset() {
	q.id, q.flags, q.opcode = 0, 0, 0
	q.hasQuestion = false
	q.qwire, q.qname, q.name = q.qwire[:0], q.qname[:0], ""
	q.labelOffs, q.labelTexts = q.labelOffs[:0], q.labelTexts[:0]
	q.qtype, q.qclass = 0, 0
	q.edns, q.ednsVersion, q.ednsDO, q.ednsCO, q.udpSize, q.nsid, q.optOK = false, 0, false, false, 0, false, false
	q.ecs, q.ecsFamily, q.ecsSource, q.ecsAddr = false, 0, 0, netip.Addr{}
	q.cookie, q.cookieClient, q.cookieServer = false, [cookieClientLen]byte{}, nil
	q.tsigOff = 0
}

// noOptions leaves the EDNS options out of the response to q (an error's
// OPT carries none): no client subnet, NSID or cookie.
func (q *query) noOptions() {
	q.ecsFamily = 0
	q.nsid = false
	q.cookie = false
}

// parseResult says what to do with a request.
type parseResult uint8

const (
	parseOK        parseResult = iota
	parseDrop                  // no response at all
	parseFormErr               // FORMERR (header, and question when parsed)
	parseNotImp                // NOTIMP: opcode other than QUERY
	parseBadOption             // FORMERR with OPT: a malformed client subnet or cookie
)

// parse reads msg into q. It is strict: anything not well formed is
// parseFormErr, a response (QR=1) or a message shorter than a header is
// parseDrop.
func (q *query) parse(msg []byte) parseResult {
	q.reset()
	if len(msg) < headerLen {
		return parseDrop
	}
	q.id = binary.BigEndian.Uint16(msg)
	q.flags = binary.BigEndian.Uint16(msg[2:])
	if q.flags&flagQR != 0 {
		return parseDrop
	}
	q.opcode = int(q.flags>>11) & 0xF
	qd := binary.BigEndian.Uint16(msg[4:])
	an := binary.BigEndian.Uint16(msg[6:])
	ns := binary.BigEndian.Uint16(msg[8:])
	ar := binary.BigEndian.Uint16(msg[10:])
	// A message of another opcode is answered NOTIMP however it is
	// formed; what could be read of it (question, OPT, TSIG) is used.
	fail := parseFormErr
	if q.opcode != 0 {
		fail = parseNotImp
	}
	if qd != 1 {
		return fail
	}
	off, err := q.parseQuestion(msg, headerLen)
	if err != nil {
		return fail
	}
	q.hasQuestion = true
	for i := 0; i < int(an)+int(ns); i++ {
		if off, err = skipRR(msg, off); err != nil {
			return fail
		}
	}
	res := parseOK
	tsigOff := 0
	for i := 0; i < int(ar); i++ {
		start := off
		var typ uint16
		if off, typ, err = rrType(msg, off); err != nil {
			return fail
		}
		switch {
		case typ == dns.TypeTSIG:
			// RFC 8945 5.1: only as the last record.
			if i != int(ar)-1 {
				return fail
			}
			tsigOff = start
			fallthrough
		case typ != dns.TypeOPT:
			// Other additional records (SIG(0)) are not used.
			if off, err = skipRR(msg, start); err != nil {
				return fail
			}
			continue
		}
		if q.edns || off != start+1 { // a second OPT, or one not owned by the root
			q.optOK = false
			return fail
		}
		var r parseResult
		if off, r = q.parseOPT(msg, off); r == parseFormErr {
			return fail
		} else if r != parseOK {
			res = r
		}
		q.optOK = true
	}
	if off != len(msg) {
		return fail
	}
	q.tsigOff = tsigOff
	if q.opcode != 0 {
		return parseNotImp
	}
	return res
}

// Room for the longest question name: its wire form, its text (each
// octet at most four characters, \DDD, and a dot per label) and its
// labels (at least two wire octets each).
const (
	maxNameText = 4 * maxNameWire
	maxLabels   = maxNameWire/2 + 1
)

// parseQuestion reads the question at off. Compression pointers are not
// accepted: nothing before the question can be pointed at. It writes
// into buffers sized for the longest name (newWorker's, or made here
// once), by index.
//
// The text of a name of usual octets is its wire form shifted by one:
// each length octet becomes the dot that ends the label before it. So
// after the labels are checked, one loop maps every octet through
// labelText and the dots are put in place; a label text starts where its
// length octet does. Only a name with an octet that takes an escape is
// written label by label (putLabel).
func (q *query) parseQuestion(msg []byte, off int) (int, error) {
	if cap(q.qwire) < maxNameWire || cap(q.qname) < maxNameText || cap(q.labelOffs) < maxLabels || cap(q.labelTexts) < maxLabels {
		q.qwire, q.qname = make([]byte, 0, maxNameWire), make([]byte, 0, maxNameText)
		q.labelOffs, q.labelTexts = make([]int, 0, maxLabels), make([]int, 0, maxLabels)
	}
	offs := q.labelOffs[:maxLabels]
	start := off
	nl := 0
	for {
		if off >= len(msg) {
			return 0, errFormat
		}
		l := int(msg[off])
		if l&0xC0 != 0 {
			return 0, errFormat
		}
		if l == 0 {
			off++
			break
		}
		if off+1+l > len(msg) || off+1+l-start >= maxNameWire {
			return 0, errFormat
		}
		offs[nl] = off - start
		nl++
		off += 1 + l
	}
	wire := msg[start:off]
	q.qwire = append(q.qwire[:0], wire...)
	q.labelOffs = offs[:nl]
	text := q.qname[:maxNameText]
	n := len(wire) - 1 // the text's length: a character per octet but the root's
	if n == 0 {
		text[0], n = '.', 1
		q.labelTexts = q.labelTexts[:0]
	} else {
		src := wire[1:]
		dst := text[:len(src)] // the same length: no bounds check in the loop
		for j := range src {
			dst[j] = labelText[src[j]]
		}
		for _, o := range offs[1:nl] {
			text[o-1] = '.'
		}
		text[n-1] = '.'
		if bytes.IndexByte(text[:n], 0) < 0 {
			// Each label's text starts where its length octet does.
			q.labelTexts = append(q.labelTexts[:0], q.labelOffs...)
		} else {
			texts := q.labelTexts[:nl]
			n = 0
			for k, o := range offs[:nl] {
				texts[k] = n
				n = putLabel(text, n, wire[o+1:o+1+int(wire[o])])
				text[n] = '.'
				n++
			}
			q.labelTexts = texts
		}
	}
	q.qname = text[:n]
	q.name = unsafe.String(unsafe.SliceData(q.qname), len(q.qname))
	if off+4 > len(msg) {
		return 0, errFormat
	}
	q.qtype = binary.BigEndian.Uint16(msg[off:])
	q.qclass = binary.BigEndian.Uint16(msg[off+2:])
	return off + 4, nil
}

// labelText maps a label octet to itself in the presentation form of a
// name, lowercased; 0 marks one that takes an escape (the separators and
// quotes of a zone file, and octets outside printable ASCII).
var labelText = func() (t [256]byte) {
	for b := ' ' + 1; b <= '~'; b++ {
		t[b] = byte(b)
	}
	for b := 'A'; b <= 'Z'; b++ {
		t[b] = byte(b) + ('a' - 'A')
	}
	for _, b := range ".'@;()\"\\" {
		t[b] = 0
	}
	return t
}()

// putLabel writes one label in presentation form, lowercased, into dst
// at t and returns the offset after it, with escapes (\. or \DDD) for
// the octets that take one; dst has room for four characters an octet.
// parseQuestion calls it only for a name with such an octet.
func putLabel(dst []byte, t int, label []byte) int {
	for _, b := range label {
		switch c := labelText[b]; {
		case c != 0:
			dst[t] = c
			t++
		case b >= ' ' && b <= '~':
			dst[t], dst[t+1] = '\\', b
			t += 2
		default:
			dst[t], dst[t+1], dst[t+2], dst[t+3] = '\\', '0'+b/100, '0'+b/10%10, '0'+b%10
			t += 4
		}
	}
	return t
}

// skipName steps over a possibly compressed name.
func skipName(msg []byte, off int) (int, error) {
	for n := 0; ; n++ {
		if off >= len(msg) || n > 128 {
			return 0, errFormat
		}
		l := int(msg[off])
		switch l & 0xC0 {
		case 0x00:
			if l == 0 {
				return off + 1, nil
			}
			off += 1 + l
		case 0xC0:
			if off+2 > len(msg) {
				return 0, errFormat
			}
			return off + 2, nil
		default:
			return 0, errFormat
		}
	}
}

// rrType steps over an RR's owner and returns the offset of its type
// field and the type.
func rrType(msg []byte, off int) (int, uint16, error) {
	off, err := skipName(msg, off)
	if err != nil || off+10 > len(msg) {
		return 0, 0, errFormat
	}
	return off, binary.BigEndian.Uint16(msg[off:]), nil
}

func skipRR(msg []byte, off int) (int, error) {
	off, _, err := rrType(msg, off)
	if err != nil {
		return 0, err
	}
	rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
	off += 10 + rdlen
	if off > len(msg) {
		return 0, errFormat
	}
	return off, nil
}

// parseOPT reads an OPT RR whose type field is at off (RFC 6891 6.1.2).
func (q *query) parseOPT(msg []byte, off int) (int, parseResult) {
	q.edns = true
	q.udpSize = binary.BigEndian.Uint16(msg[off+2:])
	ttl := binary.BigEndian.Uint32(msg[off+4:])
	q.ednsVersion = uint8(ttl >> 16)
	q.ednsDO = ttl&ednsDO != 0
	q.ednsCO = ttl&ednsCO != 0
	rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
	off += 10
	end := off + rdlen
	if end > len(msg) {
		return 0, parseFormErr
	}
	res := parseOK
	for off < end {
		if off+4 > end {
			return 0, parseFormErr
		}
		code := binary.BigEndian.Uint16(msg[off:])
		l := int(binary.BigEndian.Uint16(msg[off+2:]))
		off += 4
		if off+l > end {
			return 0, parseFormErr
		}
		data := msg[off : off+l]
		off += l
		switch code {
		case optNSID:
			q.nsid = true
		case optSubnet:
			if q.ecs || !q.parseECS(data) {
				res = parseBadOption
			}
		case optCookie:
			// RFC 7873 5.2.2: a client cookie alone, or with a server
			// cookie of 8 to 32 bytes; anything else (or a second
			// COOKIE) is FORMERR.
			if q.cookie || !(l == cookieClientLen || l >= cookieClientLen+8 && l <= cookieClientLen+32) {
				q.cookie = false
				res = parseBadOption
				break
			}
			q.cookie = true
			copy(q.cookieClient[:], data)
			q.cookieServer = data[cookieClientLen:]
		}
	}
	return end, res
}

// parseECS reads an EDNS Client Subnet option (RFC 7871 6) and reports
// whether it is well formed: a known family, a source prefix that fits it,
// exactly enough address bytes, no address bits beyond the prefix, and
// SCOPE 0 as a query must carry.
func (q *query) parseECS(b []byte) bool {
	q.ecs = true
	if len(b) < 4 {
		return false
	}
	fam := binary.BigEndian.Uint16(b)
	src, scope := b[2], b[3]
	addr := b[4:]
	var bits int
	switch fam {
	case 1:
		bits = 32
	case 2:
		bits = 128
	default:
		return false
	}
	if int(src) > bits || scope != 0 || len(addr) != (int(src)+7)/8 {
		return false
	}
	if src%8 != 0 && len(addr) > 0 && addr[len(addr)-1]&(0xFF>>(src%8)) != 0 {
		return false
	}
	var a16 [16]byte
	copy(a16[:], addr)
	if fam == 1 {
		q.ecsAddr = netip.AddrFrom4([4]byte(a16[:4]))
	} else {
		q.ecsAddr = netip.AddrFrom16(a16)
	}
	q.ecsFamily = fam
	q.ecsSource = src
	return true
}

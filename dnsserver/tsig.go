package dnsserver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"reflect"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// TSIGKey is a shared secret (RFC 8945).
type TSIGKey struct {
	// Name is the key's name as on the wire: "xfr.".
	Name string
	// Algorithm is miekg/dns's name for it: dns.HmacSHA256.
	Algorithm string
	// Secret is the base64 secret.
	Secret string
}

// tsigKey is a TSIGKey made ready for the query path: names in
// canonical wire form, the secret decoded, the hash chosen.
type tsigKey struct {
	TSIGKey
	name   []byte // canonical wire form
	alg    []byte
	secret []byte
	hash   func() hash.Hash
	size   int // full MAC length
}

// tsigHashes are the algorithms Tern signs and verifies with.
var tsigHashes = map[string]func() hash.Hash{
	dns.HmacSHA1:   sha1.New,
	dns.HmacSHA224: sha256.New224,
	dns.HmacSHA256: sha256.New,
	dns.HmacSHA384: sha512.New384,
	dns.HmacSHA512: sha512.New,
}

var (
	errTSIGAlgorithm = errors.New("algorithm not supported: use hmac-sha256 (or hmac-sha1, hmac-sha224, hmac-sha384, hmac-sha512)")
	errTSIGSecret    = errors.New("secret is empty")
)

func newTSIGKey(k TSIGKey) (*tsigKey, error) {
	k.Name = dns.CanonicalName(k.Name)
	if k.Algorithm == "" {
		k.Algorithm = dns.HmacSHA256
	}
	k.Algorithm = dns.CanonicalName(k.Algorithm)
	h := tsigHashes[k.Algorithm]
	if h == nil {
		return nil, errTSIGAlgorithm
	}
	secret, err := base64.StdEncoding.DecodeString(k.Secret)
	if err != nil {
		return nil, fmt.Errorf("secret: %w", err)
	}
	if len(secret) == 0 {
		return nil, errTSIGSecret
	}
	name, err := wireName(k.Name)
	if err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}
	alg, err := wireName(k.Algorithm)
	if err != nil {
		return nil, fmt.Errorf("algorithm: %w", err)
	}
	return &tsigKey{TSIGKey: k, name: name, alg: alg, secret: secret, hash: h, size: h().Size()}, nil
}

// wireName packs a canonical name uncompressed.
func wireName(name string) ([]byte, error) {
	buf := make([]byte, maxNameWire+1)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

// policy is what Reconfigure can change while the server runs. It is
// immutable; the server swaps it whole.
type policy struct {
	rrl    *limiter            // nil: off
	keys   map[string]*tsigKey // by canonical name
	byWire map[string]*tsigKey // by canonical wire name, for the query path
	allow  []TransferACL
	notify []NotifyTarget
	cookie cookieKey
	qlog   *queryLog // nil: no query log
}

// buildPolicy checks o's RRL, TSIG, transfer, NOTIFY and cookie settings
// and builds the policy they make. The rate limiter of prev is kept when
// its settings are unchanged (so are its accounts), and so is its cookie
// secret when o gives none.
func (s *Server) buildPolicy(o Options, prev *policy) (*policy, error) {
	if !(o.QueryLogSample >= 0 && o.QueryLogSample <= 1) {
		return nil, fmt.Errorf("dnsserver: query log sample %g: give 0 (off) to 1 (every query)", o.QueryLogSample)
	}
	p := &policy{keys: map[string]*tsigKey{}, byWire: map[string]*tsigKey{}, allow: slices.Clone(o.TransferAllow), notify: slices.Clone(o.Notify),
		qlog: newQueryLog(o.QueryLogSample)}
	for _, k := range o.TSIGKeys {
		tk, err := newTSIGKey(k)
		if err != nil {
			return nil, fmt.Errorf("dnsserver: TSIG key %q: %w", k.Name, err)
		}
		p.keys[tk.Name] = tk
		p.byWire[string(tk.name)] = tk
	}
	for _, a := range o.TransferAllow {
		if a.Key != "" && p.keys[dns.CanonicalName(a.Key)] == nil {
			return nil, fmt.Errorf("dnsserver: transfer allow entry names TSIG key %q, which is not among the keys", a.Key)
		}
	}
	for _, n := range o.Notify {
		if !n.Addr.IsValid() {
			return nil, errors.New("dnsserver: NOTIFY target without an address")
		}
		if n.Key != "" && p.keys[dns.CanonicalName(n.Key)] == nil {
			return nil, fmt.Errorf("dnsserver: NOTIFY target %s names TSIG key %q, which is not among the keys", n.Addr, n.Key)
		}
	}
	switch {
	case o.CookieSecret != [16]byte{}:
		p.cookie = newCookieKey(o.CookieSecret)
	case prev != nil:
		p.cookie = prev.cookie
	default:
		p.cookie = randomCookieKey()
	}
	if o.RRL != nil && o.RRL.ResponsesPerSecond > 0 {
		if prev != nil && prev.rrl != nil && reflect.DeepEqual(prev.rrl.opts, *o.RRL) {
			p.rrl = prev.rrl
		} else {
			p.rrl = newLimiter(*o.RRL)
			p.rrl.dropped, p.rrl.slipped = &s.stats.rrlDropped, &s.stats.rrlSlipped
		}
	}
	return p, nil
}

// Reconfigure applies o's RRL, TSIG keys, transfer allow list, NOTIFY
// targets and cookie secret to the running server (its listener settings
// are ignored: those need a new server; a zero CookieSecret keeps the
// current secret). Queries and transfers that start afterwards see the
// new settings; NOTIFYs already under way keep their targets. On error
// nothing changes.
func (s *Server) Reconfigure(o Options) error {
	s.storeMu.Lock()
	defer s.storeMu.Unlock()
	p, err := s.buildPolicy(o, s.pol.Load())
	if err != nil {
		return err
	}
	s.pol.Store(p)
	return nil
}

// TSIG on the query path (RFC 8945). A request's TSIG record is checked
// in the order of section 5.2: key (BADKEY), MAC (BADSIG, BADTRUNC), time
// (BADTIME). The answer to a good request is signed; so is BADTIME's,
// with our time in Other Data; BADKEY, BADSIG and BADTRUNC go out with an
// unsigned TSIG record carrying the error.

// TSIG errors (RFC 8945 section 3) and fields.
const (
	tsigBadSig   = dns.RcodeBadSig
	tsigBadKey   = dns.RcodeBadKey
	tsigBadTime  = dns.RcodeBadTime
	tsigBadTrunc = dns.RcodeBadTrunc
	tsigFudge    = 300
	classANY     = 255
)

// tsigState is a request's TSIG and what the response's will be. It lives
// in the worker; its slices point into the request or the worker's
// buffers.
type tsigState struct {
	key    *tsigKey // the verified key; nil: the response is unsigned
	name   []byte   // key name, canonical wire form
	alg    []byte   // algorithm name, canonical wire form
	reqMAC []byte   // the request's MAC
	err    uint16   // TSIG error to answer with
	time   uint64   // the response's Time Signed
	now    uint64   // our time, in Other Data for BADTIME
	// buffers for name and alg
	nameBuf, algBuf [maxNameWire + 1]byte
}

// tsigVerdict is what verifyTSIG decided.
type tsigVerdict uint8

const (
	tsigGood    tsigVerdict = iota // answer, signed
	tsigFormErr                    // FORMERR, unsigned
	tsigReject                     // NOTAUTH with the TSIG error in ts.err
)

// verifyTSIG checks the TSIG record at q.tsigOff of msg against keys and
// fills w.ts. It allocates nothing once the worker has hashed with the
// key before.
func (w *worker) verifyTSIG(msg []byte, keys map[string]*tsigKey) tsigVerdict {
	ts := &w.ts
	ts.key, ts.err, ts.reqMAC = nil, 0, nil
	off := w.q.tsigOff
	name, off, ok := readName(msg, off, ts.nameBuf[:0])
	if !ok || off+10 > len(msg) {
		return tsigFormErr
	}
	ts.name = name
	ttlField := msg[off+4 : off+8]
	class := binary.BigEndian.Uint16(msg[off+2:])
	rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
	rd := off + 10
	end := rd + rdlen
	if class != classANY || end != len(msg) {
		return tsigFormErr
	}
	alg, o, ok := readName(msg, rd, ts.algBuf[:0])
	if !ok || o+10 > end {
		return tsigFormErr
	}
	ts.alg = alg
	timers := msg[o : o+8] // time signed (48 bits) and fudge
	signed := uint64(binary.BigEndian.Uint16(msg[o:]))<<32 | uint64(binary.BigEndian.Uint32(msg[o+2:]))
	fudge := uint64(binary.BigEndian.Uint16(msg[o+6:]))
	macLen := int(binary.BigEndian.Uint16(msg[o+8:]))
	o += 10
	if o+macLen+6 > end {
		return tsigFormErr
	}
	mac := msg[o : o+macLen]
	o += macLen
	origID := msg[o : o+2]
	errOther := msg[o+2 : end] // error, other len, other data
	if o+6+int(binary.BigEndian.Uint16(msg[o+4:])) != end {
		return tsigFormErr
	}
	ts.now = uint64(time.Now().Unix())
	ts.time = ts.now
	k := keys[string(name)]
	if k == nil || !bytes.Equal(k.alg, alg) {
		ts.err = tsigBadKey
		return tsigReject
	}
	// RFC 8945 5.2.2.1: a MAC longer than the hash, or shorter than
	// half of it or 10 octets, is malformed; a truncated one Tern's
	// policy does not accept.
	switch {
	case macLen > k.size || macLen < max(10, k.size/2):
		return tsigFormErr
	case macLen < k.size:
		ts.err = tsigBadTrunc
		return tsigReject
	}
	// The MAC covers the request without its TSIG record (ARCOUNT one
	// less, the original ID) and the TSIG variables. Everything hashed
	// is in buffers the worker owns: nothing escapes to the heap.
	p := w.pk
	h := p.hmacFor(k)
	copy(p.hdr[:], msg[:headerLen])
	copy(p.hdr[0:2], origID)
	binary.BigEndian.PutUint16(p.hdr[10:], binary.BigEndian.Uint16(msg[10:])-1)
	h.Write(p.hdr[:])
	h.Write(msg[headerLen:w.q.tsigOff])
	v := append(p.tsigVars[:0], name...)
	v = append(v, classANY>>8, classANY&0xFF)
	v = append(v, ttlField...)
	v = append(v, alg...)
	v = append(v, timers...)
	h.Write(v)
	h.Write(errOther)
	if !hmac.Equal(h.Sum(w.pk.macBuf[:0]), mac) {
		ts.err = tsigBadSig
		return tsigReject
	}
	ts.key, ts.reqMAC = k, mac
	if ts.now > signed+fudge || signed > ts.now+fudge {
		// RFC 8945 5.2.3: signed, the client's time in Time Signed.
		ts.err, ts.time = tsigBadTime, signed
		return tsigReject
	}
	return tsigGood
}

// readName appends the name at off of msg (compressed or not) to dst in
// canonical (lower case) wire form and returns it and the offset after
// the name as it stands at off.
func readName(msg []byte, off int, dst []byte) ([]byte, int, bool) {
	end := -1
	for hops := 0; ; {
		if off >= len(msg) {
			return nil, 0, false
		}
		l := int(msg[off])
		switch l & 0xC0 {
		case 0x00:
			if l == 0 {
				dst = append(dst, 0)
				if end < 0 {
					end = off + 1
				}
				return dst, end, true
			}
			if off+1+l > len(msg) || len(dst)+1+l+1 > maxNameWire {
				return nil, 0, false
			}
			dst = append(dst, byte(l))
			for _, c := range msg[off+1 : off+1+l] {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				dst = append(dst, c)
			}
			off += 1 + l
		case 0xC0:
			if off+2 > len(msg) || hops > 126 {
				return nil, 0, false
			}
			if end < 0 {
				end = off + 2
			}
			hops++
			off = int(binary.BigEndian.Uint16(msg[off:]) & 0x3FFF)
		default:
			return nil, 0, false
		}
	}
}

// tsigLen is the size of the TSIG record writeTSIG writes for ts.
func tsigLen(ts *tsigState) int {
	n := len(ts.name) + 10 + len(ts.alg) + 16
	if ts.key != nil {
		n += ts.key.size
	}
	if ts.err == tsigBadTime {
		n += 6
	}
	return n
}

// hmacFor returns an HMAC keyed with k, reset; the packer keeps the last
// one, so that a worker answering one client's signed queries hashes
// without allocating.
func (p *packer) hmacFor(k *tsigKey) hash.Hash {
	if p.hmacKey != k {
		p.hmacKey, p.hmac = k, hmac.New(k.hash, k.secret)
	} else {
		p.hmac.Reset()
	}
	return p.hmac
}

// writeTSIG appends the response's TSIG record at off of b, b[:off]
// being the whole response (its ARCOUNT not counting the TSIG record),
// and returns the end. A response to a verified request is signed over
// the request's MAC, the response and the TSIG variables (RFC 8945
// 4.3.1); an error response to a bad key or MAC is not.
func (p *packer) writeTSIG(b []byte, off int, ts *tsigState, id uint16) int {
	// The TSIG variables, as hashed: name, class, TTL, algorithm, time
	// signed, fudge, error, other length, other data.
	v := p.tsigVars[:0]
	v = append(v, ts.name...)
	v = append(v, classANY>>8, classANY&0xFF, 0, 0, 0, 0)
	v = append(v, ts.alg...)
	timers := len(v)
	v = append(v, byte(ts.time>>40), byte(ts.time>>32), byte(ts.time>>24), byte(ts.time>>16), byte(ts.time>>8), byte(ts.time))
	v = append(v, tsigFudge>>8, tsigFudge&0xFF)
	errAt := len(v)
	v = append(v, byte(ts.err>>8), byte(ts.err))
	if ts.err == tsigBadTime {
		n := ts.now
		v = append(v, 0, 6, byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	} else {
		v = append(v, 0, 0)
	}
	var mac []byte
	if k := ts.key; k != nil {
		h := p.hmacFor(k)
		binary.BigEndian.PutUint16(p.hdr[:], uint16(len(ts.reqMAC)))
		h.Write(p.hdr[:2])
		h.Write(ts.reqMAC)
		h.Write(b[:off])
		h.Write(v)
		mac = h.Sum(p.macBuf[:0])
	}
	// The record: owner, type, class, TTL, rdlength, then the rdata.
	o := off + copy(b[off:], ts.name)
	binary.BigEndian.PutUint16(b[o:], dns.TypeTSIG)
	binary.BigEndian.PutUint16(b[o+2:], classANY)
	binary.BigEndian.PutUint32(b[o+4:], 0)
	rd := o + 10
	o = rd + copy(b[rd:], ts.alg)
	o += copy(b[o:], v[timers:errAt]) // time signed, fudge
	binary.BigEndian.PutUint16(b[o:], uint16(len(mac)))
	o += 2
	o += copy(b[o:], mac)
	binary.BigEndian.PutUint16(b[o:], id)
	o += 2
	o += copy(b[o:], v[errAt:]) // error, other
	binary.BigEndian.PutUint16(b[rd-2:], uint16(o-rd))
	return o
}

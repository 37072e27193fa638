package dnssec

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// Signer makes the RRSIGs of one zone's RRsets with its keys.
type Signer struct {
	// Origin is the zone's apex, canonical.
	Origin string
	keys   []*Key
	// published are in the DNSKEY RRset but sign nothing (a roll).
	published []*Key
	// ksk signs the apex key RRsets and zsk the rest; both are every
	// key when the keys are all of one kind (CSKs).
	ksk, zsk []*Key
	validity time.Duration
}

// NewSigner makes a signer for origin with keys, whose signatures are
// valid for validity from their making. Every key must be of origin and
// of alg. published, keys of origin too, are published without signing.
func NewSigner(origin string, alg uint8, keys []*Key, validity time.Duration, published ...*Key) (*Signer, error) {
	origin = canonicalZone(origin)
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	s := &Signer{Origin: origin, keys: keys, validity: validity, published: published}
	for _, k := range published {
		if k.DNSKEY.Hdr.Name != origin {
			return nil, fmt.Errorf("%s is for %s, not %s: %w", k.File, k.DNSKEY.Hdr.Name, origin, ErrKeyZone)
		}
	}
	for _, k := range keys {
		if k.DNSKEY.Hdr.Name != origin {
			return nil, fmt.Errorf("%s is for %s, not %s: %w", k.File, k.DNSKEY.Hdr.Name, origin, ErrKeyZone)
		}
		if k.DNSKEY.Algorithm != alg {
			return nil, fmt.Errorf("%s is of algorithm %d, the zone's is %d: %w", k.File, k.DNSKEY.Algorithm, alg, ErrMixedAlg)
		}
		if k.SEP() {
			s.ksk = append(s.ksk, k)
		} else {
			s.zsk = append(s.zsk, k)
		}
	}
	// Keys of one kind sign everything: a CSK (or, unusually, ZSKs alone).
	if len(s.ksk) == 0 {
		s.ksk = s.zsk
	}
	if len(s.zsk) == 0 {
		s.zsk = s.ksk
	}
	return s, nil
}

// Keys returns the signer's keys.
func (s *Signer) Keys() []*Key { return s.keys }

// Published returns the keys published that do not sign (see
// NewSigner).
func (s *Signer) Published() []*Key { return s.published }

// Validity is how long a signature is valid from its making.
func (s *Signer) Validity() time.Duration { return s.validity }

// refreshAfter is when signatures made at t are made again: with a
// quarter of their validity left.
func (s *Signer) refreshAfter(t time.Time) time.Time { return t.Add(s.validity * 3 / 4) }

func (s *Signer) keysFor(t uint16) []*Key {
	switch t {
	case dns.TypeDNSKEY, dns.TypeCDS, dns.TypeCDNSKEY:
		return s.ksk
	}
	return s.zsk
}

// Sign signs rrs, one RRset (same owner, type and class), with every key
// that signs its type, and appends the RRSIGs' rdata to dst, each as a
// 2-byte length and the rdata (see Sigs). The RRSIGs' TTL is the RRset's
// (its first record's: an RRset has one TTL).
func (s *Signer) Sign(dst []byte, rrs []dns.RR, now time.Time) ([]byte, error) {
	if len(rrs) == 0 {
		return dst, nil
	}
	h := rrs[0].Header()
	for _, k := range s.keysFor(h.Rrtype) {
		sig := k.rrsig(h.Rrtype, h.Ttl, now, s.validity)
		if err := sig.Sign(k.signer, rrs); err != nil {
			return dst, fmt.Errorf("sign %s %s: %w", h.Name, dns.Type(h.Rrtype), err)
		}
		var err error
		if dst, err = appendRdata(dst, sig); err != nil {
			return dst, err
		}
	}
	return dst, nil
}

// appendRdata appends rr's rdata in wire form (names uncompressed, as
// RFC 4034 3.1.7 requires of an RRSIG's signer name), length first.
func appendRdata(dst []byte, rr dns.RR) ([]byte, error) {
	buf := make([]byte, dns.Len(rr)+32)
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return dst, fmt.Errorf("pack %s: %w", dns.Type(rr.Header().Rrtype), err)
	}
	// The header ends 10 bytes after the owner name.
	hdr := nameLen(buf) + 10
	rd := buf[hdr:n]
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(rd)))
	return append(dst, rd...), nil
}

// nameLen is the length of the uncompressed wire name at the start of b.
func nameLen(b []byte) int {
	i := 0
	for i < len(b) && b[i] != 0 {
		i += int(b[i]) + 1
	}
	return i + 1
}

// Sigs yields the RRSIG rdatas of a list Sign made.
func Sigs(b []byte) func(yield func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) >= 2 {
			l := int(binary.BigEndian.Uint16(b))
			if len(b) < 2+l {
				return
			}
			if !yield(b[2 : 2+l : 2+l]) {
				return
			}
			b = b[2+l:]
		}
	}
}

// TypeNXNAME is the meta-type RFC 9824 puts in the NSEC bitmap of a name
// that does not exist.
const TypeNXNAME = 128

// AppendNSECRdata appends the rdata of the compact-denial NSEC record at
// owner (wire form, uncompressed; RFC 9824 3): the next name is owner's
// immediate successor, "\000.owner", and the bitmap has types (any
// order, duplicates allowed) with RRSIG and NSEC. It does not allocate
// when dst has room.
func AppendNSECRdata(dst []byte, owner []byte, types []uint16) []byte {
	dst = append(dst, 1, 0)
	dst = append(dst, owner...)
	return appendBitmap(dst, types)
}

// appendBitmap appends the type bitmap of RFC 4034 4.1.2 for types and
// RRSIG and NSEC: a window per 256 types present, in order, each as
// long as its last set bit needs.
func appendBitmap(dst []byte, types []uint16) []byte {
	for w := -1; ; {
		// The next window with a type.
		next := 256
		for _, t := range [2]uint16{dns.TypeRRSIG, dns.TypeNSEC} {
			if int(t>>8) > w {
				next = min(next, int(t>>8))
			}
		}
		for _, t := range types {
			if int(t>>8) > w {
				next = min(next, int(t>>8))
			}
		}
		if next == 256 {
			return dst
		}
		w = next
		var bits [32]byte
		n := 0
		set := func(t uint16) {
			if int(t>>8) == w {
				b := t & 0xFF
				bits[b>>3] |= 0x80 >> (b & 7)
				n = max(n, int(b>>3)+1)
			}
		}
		set(dns.TypeRRSIG)
		set(dns.TypeNSEC)
		for _, t := range types {
			set(t)
		}
		dst = append(dst, byte(w), byte(n))
		dst = append(dst, bits[:n]...)
	}
}

// NegativeTypes returns types without qtype and the types a server
// never lists (POOL's own, RRSIG and NSEC are added by the bitmap),
// sorted, in place.
func NegativeTypes(types []uint16, qtype uint16) []uint16 {
	out := types[:0]
	for _, t := range types {
		if t != qtype {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

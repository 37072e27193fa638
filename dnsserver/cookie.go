package dnsserver

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"
)

// DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018):
// a server cookie is version 1, three reserved bytes, a 32-bit
// timestamp and the SipHash-2-4 of client cookie | version | reserved |
// timestamp | client address under a 16-byte secret. Every node of a
// cluster given the same secret accepts the cookies the others make.
//
// Tern never enforces cookies: a query without a valid server cookie is
// answered as usual, with a fresh server cookie (RFC 7873 5.2.3 and
// 5.2.4 allow BADCOOKIE there; BIND's require-server-cookie and Knot's
// cookies module both leave it off by default, and a resolver that
// cannot keep cookies must still get answers).

// Cookie lengths (RFC 7873 4): client cookie 8 bytes, server cookie 8
// to 32; Tern's own are 16 (RFC 9018).
const (
	cookieClientLen = 8
	cookieServerLen = 16
	cookieVersion   = 1
	// RFC 9018 4.3: a server cookie is valid from 5 minutes in the future
	// to 1 hour in the past, and renewed after half an hour.
	cookieMaxAge   = 3600
	cookieMaxAhead = 300
	cookieRenew    = 1800
)

// cookieKey is a cookie secret as SipHash's two key words.
type cookieKey struct{ k0, k1 uint64 }

func newCookieKey(secret [16]byte) cookieKey {
	return cookieKey{binary.LittleEndian.Uint64(secret[:8]), binary.LittleEndian.Uint64(secret[8:])}
}

// randomCookieKey is the secret of a server given none: its cookies are
// its own, accepted by no other node.
func randomCookieKey() cookieKey {
	var s [16]byte
	rand.Read(s[:]) // never fails (crypto/rand panics rather)
	return newCookieKey(s)
}

// serverCookie sets w.resp's server cookie for the query's client cookie
// from src: the one the client sent when it is valid and younger than
// half an hour, else a fresh one. It allocates nothing.
func (w *worker) serverCookie(src netip.Addr) {
	q, resp := &w.q, &w.resp
	now := uint32(time.Now().Unix())
	var in [cookieClientLen + 8 + 16]byte
	copy(in[:], q.cookieClient[:])
	n := cookieClientLen + 8
	src = src.Unmap()
	if src.Is4() {
		a := src.As4()
		n += copy(in[n:], a[:])
	} else {
		a := src.As16()
		n += copy(in[n:], a[:])
	}
	if s := q.cookieServer; len(s) == cookieServerLen && s[0] == cookieVersion {
		age := int32(now - binary.BigEndian.Uint32(s[4:8])) // RFC 1982 arithmetic
		if age >= -cookieMaxAhead && age <= cookieMaxAge {
			copy(in[cookieClientLen:], s[:8])
			var mac [8]byte
			binary.LittleEndian.PutUint64(mac[:], siphash(w.cookieKey, in[:n]))
			if subtle.ConstantTimeCompare(mac[:], s[8:]) == 1 && age <= cookieRenew {
				copy(resp.cookie[:], s) // valid and fresh: sent back as it is
				return
			}
		}
	}
	c := &resp.cookie
	c[0], c[1], c[2], c[3] = cookieVersion, 0, 0, 0
	binary.BigEndian.PutUint32(c[4:8], now)
	copy(in[cookieClientLen:], c[:8])
	binary.LittleEndian.PutUint64(c[8:], siphash(w.cookieKey, in[:n]))
}

// siphash is SipHash-2-4 (Aumasson and Bernstein) of p under k.
func siphash(k cookieKey, p []byte) uint64 {
	v0 := k.k0 ^ 0x736f6d6570736575
	v1 := k.k1 ^ 0x646f72616e646f6d
	v2 := k.k0 ^ 0x6c7967656e657261
	v3 := k.k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(p)
	for len(p) >= 8 {
		m := binary.LittleEndian.Uint64(p)
		v3 ^= m
		round()
		round()
		v0 ^= m
		p = p[8:]
	}
	var last [8]byte
	copy(last[:], p)
	last[7] = byte(n)
	m := binary.LittleEndian.Uint64(last[:])
	v3 ^= m
	round()
	round()
	v0 ^= m
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}

package geo

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
)

// netSlots is the size of the network cache: a direct-mapped table of
// the database networks clients fell in, indexed by a hash of the
// client's /24 (IPv4) or /48 (IPv6). A network as wide as that or wider
// is found again by every address in it (one slot per /24 or /48 it
// holds); a narrower one shares its slot with its neighbours of the same
// /24 and only costs a tree walk when they alternate.
const netSlots = 1 << 12

// netSlot is one cached network and its record. Workers read and write
// it concurrently without a lock, as a sequence lock whose writers never
// wait: a writer that finds another writing leaves the slot alone, and a
// reader that sees a write begin or end under it treats the slot as a
// miss. Every field is atomic, so a reader never sees a torn value.
type netSlot struct {
	seq    atomic.Uint32 // odd while a write is under way
	meta   atomic.Uint32 // 0: empty; else 1<<8 | prefix length, 1<<9 for IPv6
	hi, lo atomic.Uint64 // the network's address (IPv4: lo's high 32 bits)
	rec    atomic.Pointer[cached]
}

// netKey is an address as two words, IPv4 in lo's high 32 bits.
type netKey struct {
	hi, lo uint64
	v6     bool
}

func keyOf(a netip.Addr) netKey {
	if a.Is4() {
		b := a.As4()
		return netKey{lo: uint64(binary.BigEndian.Uint32(b[:])) << 32}
	}
	b := a.As16()
	return netKey{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:]), v6: true}
}

// slot is the index of k's /24 or /48.
func (k netKey) slot() uint64 {
	x := k.lo >> 40 // the /24
	if k.v6 {
		x = k.hi>>16 | 1<<48
	}
	x *= 0x9e3779b97f4a7c15
	return x >> (64 - 12)
}

// masked returns k's first bits bits (of its family), the rest zero.
func (k netKey) masked(bits int) (hi, lo uint64) {
	if !k.v6 {
		return 0, k.lo & ^(^uint64(0) >> bits) // bits 0..32 of lo's high half
	}
	if bits <= 64 {
		return k.hi & ^(^uint64(0) >> bits), 0
	}
	return k.hi, k.lo & ^(^uint64(0) >> (bits - 64))
}

func (k netKey) meta(bits int) uint32 {
	m := uint32(1<<8 | bits)
	if k.v6 {
		m |= 1 << 9
	}
	return m
}

// load returns the cached Location of k when the slot holds the network
// k lies in.
func (s *netSlot) load(k netKey) (Location, bool) {
	q := s.seq.Load()
	if q&1 != 0 {
		return Location{}, false
	}
	meta, hi, lo, c := s.meta.Load(), s.hi.Load(), s.lo.Load(), s.rec.Load()
	if s.seq.Load() != q || meta == 0 || meta&(1<<9) != 0 != k.v6 {
		return Location{}, false
	}
	bits := int(meta & 0xff)
	if h, l := k.masked(bits); h != hi || l != lo {
		return Location{}, false
	}
	return c.in(bits), true
}

// store caches the network of bits around k and its record (nil: none),
// unless another worker is writing the slot.
func (s *netSlot) store(k netKey, bits int, c *cached) {
	q := s.seq.Load()
	if q&1 != 0 || !s.seq.CompareAndSwap(q, q+1) {
		return
	}
	hi, lo := k.masked(bits)
	s.meta.Store(k.meta(bits))
	s.hi.Store(hi)
	s.lo.Store(lo)
	s.rec.Store(c)
	s.seq.Store(q + 2)
}

package dnssec

import (
	"bytes"
	"hash/maphash"
	"sync/atomic"
)

// Cache holds the signatures of RRsets signed on the fly, keyed by the
// exact RRset (see Zone.Cached): a pool's few distinct answers are signed
// once per signature period, not per query. It is a direct-mapped table
// of atomic pointers: a lookup takes no lock and does not allocate; a
// store replaces whatever held its slot, so the cache never holds more
// than its size.
type Cache struct {
	seed  maphash.Seed
	slots []atomic.Pointer[entry]
	mask  uint64
	// Hits and Misses count lookups.
	Hits, Misses atomic.Uint64
}

type entry struct {
	key  []byte
	sigs []byte
	// refresh is when the signatures are to be made again (Unix
	// seconds): with a quarter of their validity left.
	refresh int64
}

// NewCache makes a cache of at least size entries (a power of two).
func NewCache(size int) *Cache {
	n := 1
	for n < size {
		n <<= 1
	}
	return &Cache{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[entry], n), mask: uint64(n - 1)}
}

// Len returns the cache's size in entries.
func (c *Cache) Len() int { return len(c.slots) }

// get returns the signatures cached for key, unless they are due to be
// made again at now (Unix seconds).
func (c *Cache) get(key []byte, now int64) ([]byte, bool) {
	e := c.slots[maphash.Bytes(c.seed, key)&c.mask].Load()
	if e == nil || now >= e.refresh || !bytes.Equal(e.key, key) {
		c.Misses.Add(1)
		return nil, false
	}
	c.Hits.Add(1)
	return e.sigs, true
}

func (c *Cache) put(key, sigs []byte, refresh int64) {
	e := &entry{key: bytes.Clone(key), sigs: sigs, refresh: refresh}
	c.slots[maphash.Bytes(c.seed, key)&c.mask].Store(e)
}

package dnssec

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/ternlb/tern/zones"
)

// Zone is one signed zone: its static RRsets' signatures, made when the
// snapshot is compiled and made again before they expire (Refresh), and
// the cache of the signatures made on the fly. Safe for concurrent use.
type Zone struct {
	Signer *Signer
	// Zone is the compiled zone the signatures are of.
	Zone  *zones.Zone
	Cache *Cache
	// negTTL is the TTL of the zone's NSEC records (RFC 9077: the
	// negative TTL).
	negTTL uint32
	static atomic.Pointer[table]
	mu     sync.Mutex // serializes Refresh
}

// table holds the signatures of a zone's static RRsets, by RRset ID:
// RRset i's are data[off[i]:off[i+1]] (see Sigs). Pointer-free but for
// its two slices, like the zone.
type table struct {
	off     []uint32
	data    []byte
	refresh time.Time
}

// Signed reports whether the RRset's signatures are made when the zone
// is compiled: every authoritative RRset but the SOA (served with the
// cluster's serial, signed on first use) and POOL (not served as such).
func Signed(set zones.RRset) bool {
	t := set.Type()
	return t != 0 && t != zones.TypePOOL && t != dns.TypeSOA && !set.Delegated()
}

// NewZone signs z's static RRsets with s at now, with a cache of
// cacheSize signatures for answers signed on the fly.
func NewZone(z *zones.Zone, s *Signer, cacheSize int, now time.Time) (*Zone, error) {
	if z.Origin != s.Origin {
		return nil, fmt.Errorf("zone %s, keys for %s: %w", z.Origin, s.Origin, ErrKeyZone)
	}
	sz := &Zone{Signer: s, Zone: z, Cache: NewCache(cacheSize)}
	if z.SOA != nil {
		sz.negTTL = min(z.SOA.Hdr.Ttl, z.SOA.Minttl)
	}
	t, err := sz.sign(now)
	if err != nil {
		return nil, err
	}
	sz.static.Store(t)
	return sz, nil
}

// NegativeTTL is the TTL of the zone's NSEC records.
func (z *Zone) NegativeTTL() uint32 { return z.negTTL }

// sign signs every static RRset, on every CPU.
func (z *Zone) sign(now time.Time) (*table, error) {
	n := z.Zone.NumRRsets()
	sets := make([]zones.RRset, n)
	for set := range z.Zone.RRsets() {
		sets[set.ID()] = set
	}
	parts := make([][]byte, n)
	workers := min(runtime.GOMAXPROCS(0), max(1, n/64))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if !Signed(sets[i]) {
					continue
				}
				var err error
				if parts[i], err = z.Signer.Sign(nil, sets[i].RRs(), now); err != nil {
					errs[w] = err
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	t := &table{off: make([]uint32, n+1), refresh: z.Signer.refreshAfter(now)}
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	t.data = make([]byte, 0, size)
	for i, p := range parts {
		t.off[i] = uint32(len(t.data))
		t.data = append(t.data, p...)
	}
	t.off[n] = uint32(len(t.data))
	return t, nil
}

// Static returns the signatures (see Sigs) of a static RRset of the
// zone, nil for one that is not signed at compile (see Signed).
func (z *Zone) Static(set zones.RRset) []byte {
	if set.Zone() != z.Zone {
		return nil
	}
	t := z.static.Load()
	i := set.ID()
	return t.data[t.off[i]:t.off[i+1]]
}

// RefreshDue returns when the static signatures are to be made again.
func (z *Zone) RefreshDue() time.Time { return z.static.Load().refresh }

// Refresh makes the static signatures again when they are due at now,
// and reports whether it did. The query path goes on reading the old
// ones until the new are in.
func (z *Zone) Refresh(now time.Time) (bool, error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if now.Before(z.static.Load().refresh) {
		return false, nil
	}
	t, err := z.sign(now)
	if err != nil {
		return false, err
	}
	z.static.Store(t)
	return true, nil
}

// Cached returns the signatures of the RRset whose key is key (see
// AppendKey) from the cache, unless they are missing or due to be made
// again at now (Unix seconds). It takes no lock and does not allocate.
func (z *Zone) Cached(key []byte, now int64) ([]byte, bool) { return z.Cache.get(key, now) }

// SignDynamic signs rrs, the RRset of key, at now, caches the
// signatures and returns them.
func (z *Zone) SignDynamic(key []byte, rrs []dns.RR, now time.Time) ([]byte, error) {
	sigs, err := z.Signer.Sign(nil, rrs, now)
	if err != nil {
		return nil, err
	}
	z.Cache.put(key, sigs, z.Signer.refreshAfter(now).Unix())
	return sigs, nil
}

package geo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// ErrNotLocationDB is returned for a MaxMind database that holds no
// locations (an ASN or ISP database, say).
var ErrNotLocationDB = errors.New("not a City or Country database")

// Options tune a DB.
type Options struct {
	// Interval is how often Run looks at the file for a change (size or
	// modification time). Default 30s.
	Interval time.Duration
	// Logger receives reloads and reload failures; nil discards them.
	Logger *slog.Logger
}

// DB is a MaxMind City or Country database that Run reloads when its file
// changes. Locate is safe for concurrent use, takes no lock and, for a
// record seen before, allocates nothing.
type DB struct {
	path string
	opts Options
	cur  atomic.Pointer[state]

	mu      sync.Mutex // serializes Reload; never held by Locate
	failed  stamp      // the file version that last failed to load
	lastErr atomic.Pointer[error]
}

// stamp identifies a version of the file.
type stamp struct {
	size int64
	mod  time.Time
}

// state is one loaded version of the database, immutable but for its
// record cache.
type state struct {
	reader *maxminddb.Reader
	typ    string
	built  time.Time
	stamp  stamp
	cache  [cacheSlots]atomic.Pointer[cached]
	nets   [netSlots]netSlot
}

// cacheSlots is the size of the decoded-record cache: a direct-mapped
// table indexed by a hash of the record's offset. A full City database has
// some hundred thousand distinct records, but the clients of one server
// hit far fewer; a collision only costs a decode.
const cacheSlots = 1 << 14

type cached struct {
	off uintptr
	loc Location
}

// in is the Location of an address in the network of bits that c's
// record (nil: none) was found for.
func (c *cached) in(bits int) Location {
	if c == nil {
		return Location{Bits: bits}
	}
	l := c.loc
	l.Bits = bits
	return l
}

// record is the part of a City or Country record Tern reads; the
// reflection decoder skips every other field (names, subdivisions...).
type record struct {
	Continent struct {
		Code string `maxminddb:"code"`
	} `maxminddb:"continent"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	RegisteredCountry struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"registered_country"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

// Open loads the database at path. The file must be a valid City or
// Country database.
func Open(path string, opts Options) (*DB, error) {
	if opts.Interval <= 0 {
		opts.Interval = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d := &DB{path: path, opts: opts}
	st, err := load(path)
	if err != nil {
		return nil, err
	}
	d.cur.Store(st)
	return d, nil
}

// load reads and validates one version of the file.
func load(path string) (*state, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geo database %q: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("geo database %q: %w", path, err)
	}
	// Read, not memory-mapped: an old version then lives as long as a
	// lookup still holds it, and a file rewritten in place cannot change
	// under a reader.
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("geo database %q: %w", path, err)
	}
	st, err := loadBytes(b, path)
	if err != nil {
		return nil, err
	}
	st.stamp = stamp{fi.Size(), fi.ModTime()}
	return st, nil
}

// loadBytes opens and validates a database held in b; path names it in
// errors.
func loadBytes(b []byte, path string) (*state, error) {
	g, err := geoip2.OpenBytes(b)
	if err != nil {
		return nil, fmt.Errorf("geo database %q: %w", path, err)
	}
	if _, err := g.Country(netip.IPv6Unspecified()); err != nil {
		var im geoip2.InvalidMethodError
		if errors.As(err, &im) {
			return nil, fmt.Errorf("geo database %q is a %s database: %w", path, im.DatabaseType, ErrNotLocationDB)
		}
	}
	r, err := maxminddb.OpenBytes(b)
	if err != nil {
		return nil, fmt.Errorf("geo database %q: %w", path, err)
	}
	if err := r.Verify(); err != nil {
		return nil, fmt.Errorf("geo database %q is corrupt: %w", path, err)
	}
	return &state{
		reader: r,
		typ:    r.Metadata.DatabaseType,
		built:  time.Unix(int64(r.Metadata.BuildEpoch), 0).UTC(),
	}, nil
}

// Locate returns what the database says of a. An address the database
// has no record for gets a Location with Found false and the Bits of the
// empty network around it. A nil *DB knows nothing.
//
// The network an address fell in is cached (netSlot): a later address of
// the same network is answered without walking the database's tree.
func (d *DB) Locate(a netip.Addr) Location {
	if d == nil { // a nil *DB in a Locator interface: no database
		return Location{}
	}
	st := d.cur.Load()
	a = a.Unmap()
	if !a.IsValid() {
		return Location{}
	}
	k := keyOf(a)
	ns := &st.nets[k.slot()]
	if l, ok := ns.load(k); ok {
		return l
	}
	c, bits, ok := st.lookup(a)
	if ok {
		ns.store(k, bits, c)
	}
	return c.in(bits)
}

// lookup walks the database for a: the decoded record (nil when the
// database has none for a, or it failed to decode), the prefix length
// of the network a fell in, and whether that network may be cached (the
// database named it in a's own family and nothing failed).
func (st *state) lookup(a netip.Addr) (c *cached, bits int, cacheable bool) {
	res := st.reader.Lookup(a)
	bits = a.BitLen()
	if p := res.Prefix(); p.IsValid() && p.Addr().Is4() == a.Is4() {
		bits, cacheable = p.Bits(), true
	}
	if res.Err() != nil {
		return nil, bits, false
	}
	if !res.Found() {
		return nil, bits, cacheable
	}
	off := res.Offset()
	slot := &st.cache[slotOf(off)]
	if c := slot.Load(); c != nil && c.off == off {
		return c, bits, cacheable
	}
	var rec record
	if err := res.Decode(&rec); err != nil {
		return nil, bits, false
	}
	l := Location{Continent: rec.Continent.Code, Country: rec.Country.ISOCode, Found: true}
	if l.Country == "" {
		l.Country = rec.RegisteredCountry.ISOCode
	}
	if rec.Location.Latitude != nil && rec.Location.Longitude != nil {
		l.Lat, l.Lon, l.HasCoords = *rec.Location.Latitude, *rec.Location.Longitude, true
	}
	c = &cached{off: off, loc: l}
	slot.Store(c)
	return c, bits, cacheable
}

func slotOf(off uintptr) uint64 {
	x := uint64(off) * 0x9e3779b97f4a7c15
	return x >> (64 - 14)
}

// Reload loads the file again if its size or modification time changed
// since the version in use, and swaps it in. It reports whether it
// swapped. When the file fails to load, the version in use stays and the
// error is returned (and kept for Info) until the file changes again.
func (d *DB) Reload() (bool, error) {
	swapped, _, err := d.reload()
	return swapped, err
}

// reload is Reload that also reports whether a failure is new (not the
// same file version failing again), so Run logs each bad version once.
func (d *DB) reload() (swapped, newFailure bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var now stamp
	fi, err := os.Stat(d.path)
	if err != nil {
		err = fmt.Errorf("geo database %q: %w", d.path, err)
		now = stamp{size: -1}
	} else {
		now = stamp{fi.Size(), fi.ModTime()}
		if now == d.cur.Load().stamp {
			return false, false, nil
		}
		if now == d.failed {
			return false, false, *d.lastErr.Load()
		}
		var st *state
		if st, err = load(d.path); err == nil {
			d.cur.Store(st)
			d.failed = stamp{}
			d.lastErr.Store(nil)
			return true, false, nil
		}
	}
	newFailure = now != d.failed
	d.failed = now
	d.lastErr.Store(&err)
	return false, newFailure, err
}

// Run checks the file every Options.Interval and reloads it when it
// changed, until ctx ends. A version that fails to load is logged once and
// the previous version keeps answering.
func (d *DB) Run(ctx context.Context) error {
	t := time.NewTicker(d.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		swapped, newFailure, err := d.reload()
		switch {
		case swapped:
			info := d.Info()
			d.opts.Logger.Info("geo database reloaded", "path", d.path, "type", info.Type, "built", info.Built)
		case newFailure:
			d.opts.Logger.Error("geo database reload failed; the previous version stays in use", "path", d.path, "err", err)
		}
	}
}

// Info describes the version in use.
type Info struct {
	Path  string
	Type  string    // the database type, like GeoIP2-City
	Built time.Time // the build time the database declares
	// Err is the last reload's failure, nil once a reload succeeds.
	Err error
}

// Info returns what is loaded and the last reload error.
func (d *DB) Info() Info {
	st := d.cur.Load()
	in := Info{Path: d.path, Type: st.typ, Built: st.built}
	if e := d.lastErr.Load(); e != nil {
		in.Err = *e
	}
	return in
}

package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dnsserver"
	"github.com/ternlb/tern/geo"
	"github.com/ternlb/tern/raftstore"
	"github.com/ternlb/tern/selector"
	"github.com/ternlb/tern/zones"
)

// Compile turns a loaded configuration into a serving snapshot, reading
// its zone files and opening its geo database. It returns every problem
// found; a snapshot is returned only when there are none.
func Compile(cfg *config.Config) (*dnsserver.Snapshot, config.Problems) {
	db, ps := openGeo(cfg, cfg.HostPath(cfg.Geo.Database), nil, nil)
	if len(ps) > 0 {
		_, zps := zones.Load(cfg)
		ps = append(ps, zps...)
		ps.Sort()
		return nil, ps
	}
	return compileWith(cfg, db, nil)
}

// openGeo opens cfg's MaxMind database, found on this host at path, or
// returns reuse when it is the same file (a reload does not re-read an
// unchanged path: the database's own watcher reloads its content).
func openGeo(cfg *config.Config, path string, reuse *geo.DB, log *slog.Logger) (*geo.DB, config.Problems) {
	if cfg.Geo.Database == "" {
		return nil, nil
	}
	problem := func(msg string) config.Problems {
		return config.Problems{{File: cfg.Name, Line: cfg.Line("geo.database"), Msg: msg}}
	}
	if path == "" {
		return nil, problem("geo.database: an embedded configuration cannot name a database file")
	}
	if reuse != nil && reuse.Info().Path == path {
		return reuse, nil
	}
	db, err := geo.Open(path, geo.Options{Logger: log})
	if err != nil {
		return nil, problem(fmt.Sprintf("geo.database %q: %v", cfg.Geo.Database, err))
	}
	return db, nil
}

// compileWith compiles cfg with db (nil: no database) as the geo stage's
// locator, taking unchanged zones from cache (nil: none, parse them all).
func compileWith(cfg *config.Config, db *geo.DB, cache *zoneCache) (*dnsserver.Snapshot, config.Problems) {
	return compileKeyed(cfg, db, cache, cfg.HostPath)
}

// compileKeyed is compileWith with DNSSEC key files found on this host by
// keyPath (a path as the configuration writes it -> the host's path, ""
// for none).
func compileKeyed(cfg *config.Config, db *geo.DB, cache *zoneCache, keyPath func(string) string) (*dnsserver.Snapshot, config.Problems) {
	set, _, ps := cache.load(cfg)
	if len(ps) > 0 {
		ps.Sort()
		return nil, ps
	}
	var sc *signCache
	if cache != nil {
		sc = &cache.signed
	}
	set, signed, ps := signZones(cfg, set, keyPath, sc, time.Now())
	if len(ps) > 0 {
		ps.Sort()
		return nil, ps
	}
	var loc selector.Locator
	if db != nil {
		loc = db // a nil *geo.DB must not become a non-nil interface
	}
	pools, err := selector.CompileLocated(cfg, loc)
	if err != nil {
		return nil, config.Problems{{File: cfg.Name, Msg: err.Error()}}
	}
	return &dnsserver.Snapshot{
		Zones:    set,
		Pools:    selector.NewTable(pools),
		NodeName: cfg.Node.Name,
		Version:  version(cfg),
		DNSSEC:   signed,
	}, nil
}

// Check validates the configuration at path and its zone files offline,
// returning every problem found.
func Check(path string) config.Problems {
	ps, _ := CheckWarn(path)
	return ps
}

// CheckWarn is Check that also returns warnings: what is legal but likely
// a mistake (zones.Set.Warnings), found when there is no problem.
func CheckWarn(path string) (problems, warnings config.Problems) {
	cfg, err := config.Load(path)
	return checkLoaded(cfg, err)
}

func checkLoaded(cfg *config.Config, err error) (config.Problems, config.Problems) {
	var ps config.Problems
	if err != nil {
		p, ok := err.(config.Problems)
		if !ok {
			return config.Problems{{File: "config", Msg: err.Error()}}, nil
		}
		ps = append(ps, p...)
	}
	if cfg == nil {
		return ps, nil
	}
	if len(ps) > 0 {
		// Zones and the geo database can still be checked against what was
		// read, so one run shows every file's problems.
		_, gps := openGeo(cfg, cfg.HostPath(cfg.Geo.Database), nil, nil)
		_, zps := zones.Load(cfg)
		ps = append(append(ps, gps...), zps...)
		ps.Sort()
		return ps, nil
	}
	snap, zps := Compile(cfg)
	if len(zps) > 0 || snap == nil {
		return zps, nil
	}
	return nil, append(snap.Zones.Warnings(), rollWarnings(cfg, snap, time.Now())...)
}

// version is a short hash of the configuration file and its zone files:
// two nodes serving the same version serve the same data. A file system
// that knows its files' hashes (a replicated version's) is not read.
func version(cfg *config.Config) string {
	h := sha256.New()
	if cfg.FS != nil {
		src := newSourceFS(cfg.FS)
		for _, p := range append([]string{cfg.File}, zonePaths(cfg)...) {
			if fh, err := src.FileHash(p); err == nil {
				h.Write(fh[:])
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func zonePaths(cfg *config.Config) []string {
	var out []string
	for _, z := range cfg.Zones {
		out = append(out, cfg.Resolve(z.File))
	}
	return out
}

// zoneCache keeps the zones a node compiled last, by what each was
// compiled from: the zone file's path and display name, its origin and
// the content hash of every file the zone read, $INCLUDEs too. A compile
// takes a zone whose key and files' hashes match instead of parsing it,
// so that a change to one zone among many re-parses that zone alone;
// it resolves the taken zone's POOL records against the new pool list
// (zones.Zone.Repool: a pool added before another moves its index), so
// a change of the pools re-parses no zone, unless a zone names a pool
// that is gone (parsing it again reports that). The
// cache keeps what the last two compiles used (the served generation's
// and a validation's, which alternate): zones the node holds anyway; and
// the zones a compile that failed did parse, until the next failure
// (the operator fixes one zone, the others are good).
type zoneCache struct {
	mu                sync.Mutex
	cur, prev, failed map[zoneKey][]*cachedZone
	// signed keeps the signed zones of the last two compiles (see
	// signZones), so that an apply that leaves a zone and its keys as
	// they were does not sign it again.
	signed signCache
	// parsed counts the zones parsed, walked the zones whose stamps were
	// computed from their records (zones the cache did not compile):
	// what a reload that changes nothing should not add to. repooled
	// counts the cached zones taken with their POOL records resolved
	// anew, for a pool list that moved their pools' indexes.
	parsed, walked, repooled atomic.Int64
}

type zoneKey struct {
	file, display, origin string
}

type cachedZone struct {
	key  zoneKey
	deps []fileDep
	zone *zones.Zone
	// refs are the pools the zone's POOL records name, sorted, once each:
	// with deps, all that its transferred content depends on.
	refs []string
}

// fileDep is a file a zone read and the hash of what it read.
type fileDep struct {
	path string
	hash raftstore.Hash
}

func newZoneCache() *zoneCache { return &zoneCache{} }

// load parses and validates cfg's zones as zones.Load does, taking the
// unchanged ones from c, and returns them with what each read. When a
// zone has a problem it is zones.Load's word, whole, that is returned, so
// that messages are the same with or without the cache. A nil c parses
// everything.
func (c *zoneCache) load(cfg *config.Config) (*zones.Set, []*cachedZone, config.Problems) {
	if c == nil || cfg.FS == nil {
		set, ps := zones.Load(cfg)
		return set, nil, ps
	}
	src := newSourceFS(cfg.FS)
	names := cfg.PoolNames()
	pools := make(map[string]int, len(names))
	for i, name := range names {
		pools[name] = i
	}
	var (
		used    []*cachedZone
		fresh   []*cachedZone
		origins = map[string]bool{}
	)
	for _, zc := range cfg.Zones {
		if zc.File == "" {
			continue // config reports it
		}
		key := zoneKey{file: cfg.Resolve(zc.File), display: cfg.DisplayPath(zc.File), origin: zc.Origin}
		e := c.lookup(key, src)
		if e != nil {
			z, ok := e.zone.Repool(pools)
			switch {
			case !ok:
				e = nil // it names a pool that is gone: parse it, for the problem
			case z != e.zone:
				e = &cachedZone{key: key, deps: e.deps, zone: z, refs: e.refs}
				c.repooled.Add(1)
			}
		}
		if e == nil {
			rec := &recordFS{src: src}
			z, ps := zones.Parse(rec, key.file, key.display, key.origin, pools)
			c.parsed.Add(1)
			if len(ps) > 0 {
				return c.reload(cfg, src, fresh)
			}
			e = &cachedZone{key: key, deps: rec.deps, zone: z, refs: poolRefs(z)}
			fresh = append(fresh, e)
		}
		if origins[e.zone.Origin] {
			return c.reload(cfg, src, fresh)
		}
		origins[e.zone.Origin] = true
		used = append(used, e)
	}
	zs := make([]*zones.Zone, len(used))
	for i, e := range used {
		zs[i] = e.zone
	}
	set, err := zones.NewSet(zs...)
	if err != nil {
		return c.reload(cfg, src, fresh)
	}
	c.mu.Lock()
	c.prev, c.cur, c.failed = c.cur, byKey(used), nil
	c.mu.Unlock()
	return set, used, nil
}

func byKey(es []*cachedZone) map[zoneKey][]*cachedZone {
	m := make(map[zoneKey][]*cachedZone, len(es))
	for _, e := range es {
		m[e.key] = append(m[e.key], e)
	}
	return m
}

// reload is load's answer when a zone has a problem: zones.Load's, read
// through the same files. The zones that did parse are kept for the next
// try, in place of those of the last failure.
func (c *zoneCache) reload(cfg *config.Config, src *sourceFS, fresh []*cachedZone) (*zones.Set, []*cachedZone, config.Problems) {
	c.mu.Lock()
	c.failed = byKey(fresh)
	c.mu.Unlock()
	rc := *cfg
	rc.FS = src
	set, ps := zones.Load(&rc)
	c.parsed.Add(int64(len(cfg.Zones)))
	if len(ps) == 0 {
		ps = config.Problems{{File: cfg.Name, Msg: "the zones parse one by one but not together: report this as a bug"}}
		set = nil
	}
	return set, nil, ps
}

// lookup returns a cached zone for key whose files all have the hashes
// they had, or nil.
func (c *zoneCache) lookup(key zoneKey, src *sourceFS) *cachedZone {
	c.mu.Lock()
	cands := slices.Concat(c.cur[key], c.prev[key], c.failed[key])
	c.mu.Unlock()
next:
	for _, e := range cands {
		for _, d := range e.deps {
			if h, err := src.FileHash(d.path); err != nil || h != d.hash {
				continue next
			}
		}
		return e
	}
	return nil
}

// sourceFS reads each file of fsys once and knows its content hash:
// fsys's own when it has them (a replicated version's files are named by
// hash, and a bundle's are computed once), else the SHA-256 of what it
// read. Everything read stays in memory for the sourceFS's life (one
// compile).
type sourceFS struct {
	fsys fs.FS
	mu   sync.Mutex
	data map[string][]byte
	hash map[string]raftstore.Hash
}

// fileHasher is a file system that names its files' content hashes.
type fileHasher interface {
	FileHash(name string) (raftstore.Hash, error)
}

func newSourceFS(fsys fs.FS) *sourceFS {
	if s, ok := fsys.(*sourceFS); ok {
		return s
	}
	return &sourceFS{fsys: fsys, data: map[string][]byte{}, hash: map[string]raftstore.Hash{}}
}

func (s *sourceFS) Open(name string) (fs.File, error) { return s.fsys.Open(name) }

// ReadFile returns a copy of the file (the zone parser may keep it).
func (s *sourceFS) ReadFile(name string) ([]byte, error) {
	data, err := s.read(name)
	return bytes.Clone(data), err
}

func (s *sourceFS) read(name string) ([]byte, error) {
	s.mu.Lock()
	data, ok := s.data[name]
	s.mu.Unlock()
	if ok {
		return data, nil
	}
	data, err := fs.ReadFile(s.fsys, name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.data[name] = data
	s.mu.Unlock()
	return data, nil
}

// FileHash returns the SHA-256 of the file at name.
func (s *sourceFS) FileHash(name string) (raftstore.Hash, error) {
	s.mu.Lock()
	h, ok := s.hash[name]
	s.mu.Unlock()
	if ok {
		return h, nil
	}
	if fh, isHasher := s.fsys.(fileHasher); isHasher {
		var err error
		if h, err = fh.FileHash(name); err != nil {
			return raftstore.Hash{}, err
		}
	} else {
		data, err := s.read(name)
		if err != nil {
			return raftstore.Hash{}, err
		}
		h = sha256.Sum256(data)
	}
	s.mu.Lock()
	s.hash[name] = h
	s.mu.Unlock()
	return h, nil
}

// recordFS is the file system one zone is parsed through: it notes each
// file the parser reads, with its hash.
type recordFS struct {
	src  *sourceFS
	deps []fileDep
}

func (r *recordFS) Open(name string) (fs.File, error) {
	if _, err := r.ReadFile(name); err != nil {
		return nil, err
	}
	return r.src.Open(name)
}

func (r *recordFS) ReadFile(name string) ([]byte, error) {
	data, err := r.src.ReadFile(name)
	if err != nil {
		return nil, err
	}
	h, err := r.src.FileHash(name)
	if err != nil {
		return nil, err
	}
	r.deps = append(r.deps, fileDep{path: name, hash: h})
	return data, nil
}

// poolRefs returns the pools z's POOL records name, sorted, once each.
func poolRefs(z *zones.Zone) []string {
	out := z.PoolNames()
	slices.Sort(out)
	return out
}

// fingerprint is a cached zone's stamp content: the SHA-256 of the
// content hashes of the files it was parsed from (which the
// configuration carries: a replicated version names its files by hash)
// and of the members of the pools its POOL records name. Those are all
// that its transferred content depends on, so it changes whenever that
// does, and costs nothing like hashing every record of a big zone: a
// pool edit, or an edit of another zone, leaves it as it was. (It also
// changes for an edit that leaves the records as they were, a comment
// say: the served serial then moves once more than it needed to.)
func (e *cachedZone) fingerprint(pools map[string]config.Pool) raftstore.Hash {
	h := sha256.New()
	h.Write([]byte("tern zone stamp 2\x00files\x00"))
	for _, d := range e.deps {
		h.Write([]byte(d.path))
		h.Write([]byte{0})
		h.Write(d.hash[:])
	}
	h.Write([]byte("pools\x00"))
	for _, name := range e.refs {
		h.Write([]byte(name))
		h.Write([]byte{0})
		p, ok := pools[name]
		if !ok {
			h.Write([]byte{2})
			continue
		}
		for _, m := range p.Members {
			h.Write([]byte(m.Address))
			h.Write([]byte{0})
		}
		h.Write([]byte{1})
	}
	return raftstore.Hash(h.Sum(nil))
}

// stamps returns the stamps of snap's zones: for each zone the cache
// compiled, its file's serial and its fingerprint, which no record of the
// zone goes into; for any other (a configuration read without the
// cache), zoneStamps', which hashes the zone's transferred records.
func (c *zoneCache) stamps(cfg *config.Config, snap *dnsserver.Snapshot) map[string]raftstore.ZoneStamp {
	if c == nil || snap.Zones == nil {
		return zoneStamps(snap)
	}
	byZone := map[*zones.Zone]*cachedZone{}
	c.mu.Lock()
	for _, m := range []map[zoneKey][]*cachedZone{c.failed, c.prev, c.cur} {
		for _, es := range m {
			for _, e := range es {
				byZone[e.zone] = e
			}
		}
	}
	c.mu.Unlock()
	out := map[string]raftstore.ZoneStamp{}
	var todo []*zones.Zone
	for _, z := range snap.Zones.Zones() {
		if z.SOA == nil {
			continue
		}
		if e := byZone[z]; e != nil {
			out[z.Origin] = raftstore.ZoneStamp{Serial: z.SOA.Serial, Content: e.fingerprint(cfg.Pools)}
		} else {
			todo = append(todo, z)
		}
	}
	if len(todo) > 0 {
		c.walked.Add(int64(len(todo)))
		set, err := zones.NewSet(todo...)
		if err != nil { // the zones came from one set: cannot happen
			return zoneStamps(snap)
		}
		sub := *snap
		sub.Zones = set
		maps.Copy(out, zoneStamps(&sub))
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

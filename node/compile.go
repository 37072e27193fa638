package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
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
		Pools:    pools,
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
// compiled from: the zone file's path and display name, its origin, the
// pool names its POOL records resolve against, in order (a pool added
// before another changes the indexes the zone's POOL records hold), and
// the content hash of every file the zone read, $INCLUDEs too. A compile
// takes a zone whose key and files' hashes match instead of parsing it,
// so that a change to one zone among many re-parses that zone alone. The
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
}

type zoneKey struct {
	file, display, origin, pools string
}

type cachedZone struct {
	key  zoneKey
	deps []fileDep
	zone *zones.Zone
	// stamp is the zone's stamp (zoneStamps) against the pools whose
	// configuration hashes to stampPools; guarded by the cache's mu.
	stamp      raftstore.ZoneStamp
	stampPools raftstore.Hash
	stamped    bool
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
	poolsKey := strings.Join(names, "\x00")
	var (
		used    []*cachedZone
		fresh   []*cachedZone
		origins = map[string]bool{}
	)
	for _, zc := range cfg.Zones {
		if zc.File == "" {
			continue // config reports it
		}
		key := zoneKey{file: cfg.Resolve(zc.File), display: cfg.DisplayPath(zc.File), origin: zc.Origin, pools: poolsKey}
		e := c.lookup(key, src)
		if e == nil {
			rec := &recordFS{src: src}
			z, ps := zones.Parse(rec, key.file, key.display, key.origin, pools)
			if len(ps) > 0 {
				return c.reload(cfg, src, fresh)
			}
			e = &cachedZone{key: key, deps: rec.deps, zone: z}
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

// stamps returns the stamps of snap's zones (zoneStamps), computing only
// those of zones the cache has no stamp for against cfg's pools: a zone
// file that did not change is not hashed again.
func (c *zoneCache) stamps(cfg *config.Config, snap *dnsserver.Snapshot) map[string]raftstore.ZoneStamp {
	if c == nil || snap.Zones == nil {
		return zoneStamps(snap)
	}
	pj, err := json.Marshal(cfg.Pools)
	if err != nil {
		return zoneStamps(snap)
	}
	pools := raftstore.Hash(sha256.Sum256(pj))
	byZone := map[*zones.Zone]*cachedZone{}
	c.mu.Lock()
	for _, m := range []map[zoneKey][]*cachedZone{c.failed, c.prev, c.cur} {
		for _, es := range m {
			for _, e := range es {
				byZone[e.zone] = e
			}
		}
	}
	out := map[string]raftstore.ZoneStamp{}
	var todo []*zones.Zone
	for _, z := range snap.Zones.Zones() {
		if e := byZone[z]; e != nil && e.stamped && e.stampPools == pools {
			out[z.Origin] = e.stamp
		} else {
			todo = append(todo, z)
		}
	}
	c.mu.Unlock()
	if len(todo) > 0 {
		set, err := zones.NewSet(todo...)
		if err != nil { // the zones came from one set: cannot happen
			return zoneStamps(snap)
		}
		sub := *snap
		sub.Zones = set
		fresh := zoneStamps(&sub)
		c.mu.Lock()
		for _, z := range todo {
			st, ok := fresh[z.Origin]
			if !ok {
				continue
			}
			out[z.Origin] = st
			if e := byZone[z]; e != nil {
				e.stamp, e.stampPools, e.stamped = st, pools, true
			}
		}
		c.mu.Unlock()
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

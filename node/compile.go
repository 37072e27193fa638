package node

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dnsserver"
	"github.com/ternlb/tern/geo"
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
	return compileWith(cfg, db)
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
// locator.
func compileWith(cfg *config.Config, db *geo.DB) (*dnsserver.Snapshot, config.Problems) {
	set, ps := zones.Load(cfg)
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
	return nil, snap.Zones.Warnings()
}

// version is a short hash of the configuration file and its zone files:
// two nodes serving the same version serve the same data.
func version(cfg *config.Config) string {
	h := sha256.New()
	if cfg.FS != nil {
		if b, err := fs.ReadFile(cfg.FS, cfg.File); err == nil {
			h.Write(b)
		}
		for _, z := range cfg.Zones {
			if b, err := fs.ReadFile(cfg.FS, cfg.Resolve(z.File)); err == nil {
				h.Write(b)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

package node

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dnsserver"
	"github.com/ternlb/tern/selector"
	"github.com/ternlb/tern/zones"
)

// Compile turns a loaded configuration into a serving snapshot, reading
// its zone files. It returns every problem found in the zone files; a
// snapshot is returned only when there are none.
func Compile(cfg *config.Config) (*dnsserver.Snapshot, config.Problems) {
	set, ps := zones.Load(cfg)
	if len(ps) > 0 {
		ps.Sort()
		return nil, ps
	}
	pools, err := selector.Compile(cfg)
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
	cfg, err := config.Load(path)
	return checkLoaded(cfg, err)
}

func checkLoaded(cfg *config.Config, err error) config.Problems {
	var ps config.Problems
	if err != nil {
		p, ok := err.(config.Problems)
		if !ok {
			return config.Problems{{File: "config", Msg: err.Error()}}
		}
		ps = append(ps, p...)
	}
	if cfg == nil {
		return ps
	}
	if len(ps) > 0 {
		// Zones can still be checked against the pools that were read, so
		// one run shows the zone files' problems too.
		if _, zps := zones.Load(cfg); len(zps) > 0 {
			ps = append(ps, zps...)
		}
		ps.Sort()
		return ps
	}
	_, zps := Compile(cfg)
	return zps
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

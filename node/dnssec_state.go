package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/miekg/dns"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dnssec"
	"github.com/ternlb/tern/dnsserver"
)

// keysFile, in node.data, records when this node saw each DNSSEC key
// published and signing (dnssec.KeyHistory), so that `tern check` can
// warn of a roll step taken before resolvers' caches allow it.
const keysFile = "dnssec-keys.json"

type keyStateJSON struct {
	Zones map[string]dnssec.KeyHistory `json:"zones"`
}

// keyStatePath is cfg's key history file on this host, "" for none.
func keyStatePath(cfg *config.Config) string {
	dir := cfg.HostPath(cfg.Node.Data)
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, keysFile)
}

func readKeyState(path string) (map[string]dnssec.KeyHistory, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]dnssec.KeyHistory{}, nil
	}
	if err != nil {
		return nil, err
	}
	var f keyStateJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if f.Zones == nil {
		f.Zones = map[string]dnssec.KeyHistory{}
	}
	return f.Zones, nil
}

// observeKeys records at now the keys snap's signed zones publish and
// sign into the history file at path.
func observeKeys(path string, snap *dnsserver.Snapshot, now time.Time) error {
	if path == "" || snap == nil || len(snap.DNSSEC) == 0 {
		return nil
	}
	zs, err := readKeyState(path)
	if err != nil {
		zs = map[string]dnssec.KeyHistory{} // damaged: start afresh rather than stop
	}
	for _, sz := range snap.DNSSEC {
		zs[sz.Zone.Origin] = zs[sz.Zone.Origin].Observe(now, sz.Signer.Keys(), sz.Signer.Published())
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return writeFileAtomic(path, keyStateJSON{Zones: zs})
}

// rollWarnings are the key roll warnings (dnssec.RollWarnings) for snap,
// compiled from cfg, against this host's key history.
func rollWarnings(cfg *config.Config, snap *dnsserver.Snapshot, now time.Time) config.Problems {
	path := keyStatePath(cfg)
	if path == "" || len(snap.DNSSEC) == 0 {
		return nil
	}
	zs, err := readKeyState(path)
	if err != nil {
		return config.Problems{{File: cfg.Name, Msg: fmt.Sprintf("DNSSEC key history not read, key rolls not checked: %v", err)}}
	}
	var ws config.Problems
	for i, zc := range cfg.Zones {
		if zc.DNSSEC == nil {
			continue
		}
		for _, sz := range snap.DNSSEC {
			if sz.Zone.File != cfg.DisplayPath(zc.File) {
				continue
			}
			maxTTL := time.Duration(sz.NegativeTTL()) * time.Second
			for set := range sz.Zone.RRsets() {
				if dnssec.Signed(set) || set.Type() == dns.TypeSOA {
					for r := range set.All() {
						maxTTL = max(maxTTL, time.Duration(r.TTL)*time.Second)
						break
					}
				}
			}
			for _, msg := range dnssec.RollWarnings(zs[sz.Zone.Origin], sz.Signer.Keys(), sz.Signer.Published(), now, zc.DNSSEC.KeyTTL(), maxTTL) {
				ws = append(ws, config.Problem{File: cfg.Name, Line: cfg.Line(fmt.Sprintf("zones.%d.dnssec", i)), Msg: "zone " + sz.Zone.Origin + ": " + msg})
			}
		}
	}
	return ws
}

package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dnsserver"
	"github.com/ternlb/tern/raftstore"
	"github.com/ternlb/tern/zones"
)

// A zone's served SOA serial never goes backwards, across reloads,
// rollbacks and restarts. It is derived by raftstore.NextSerials from each
// zone's stamp (its file's serial and the fingerprint of its transferred
// content: zoneCache.stamps, from its files' content hashes and its
// pools' members) and the last serial served. In a
// cluster the FSM derives it as it makes each version, from the stamps
// the proposer computed, so every node serves the same serial for the
// same version; standalone the node derives it and keeps the last served
// serials in its data directory (serialsFile).

// serialsFile is where a standalone node keeps its zones' last served
// serials, in node.data.
const serialsFile = "serials.json"

// zoneStamps returns the stamps of snap's zones, what a proposal carries.
func zoneStamps(snap *dnsserver.Snapshot) map[string]raftstore.ZoneStamp {
	serials, content := dnsserver.VersionSerials(snap)
	if len(serials) == 0 {
		return nil
	}
	out := make(map[string]raftstore.ZoneStamp, len(serials))
	for name, s := range serials {
		out[name] = raftstore.ZoneStamp{Serial: s, Content: content[name]}
	}
	return out
}

// versionSerials returns the serials to serve for set's zones at version
// cv: the ones the FSM derived, or for a version made before it did (and
// for a zone it has none for) the file's serial plus the version number,
// the scheme such versions were served with.
func versionSerials(cv raftstore.ConfigVersion, set *zones.Set) map[string]uint32 {
	out := map[string]uint32{}
	if set == nil {
		return out
	}
	for _, z := range set.Zones() {
		if z.SOA == nil {
			continue
		}
		if zs, ok := cv.Zones[z.Origin]; ok {
			out[z.Origin] = zs.Served
		} else {
			out[z.Origin] = z.SOA.Serial + uint32(cv.Version)
		}
	}
	return out
}

// servedSerials maps zones to the serials they serve.
func servedSerials(zs map[string]raftstore.ZoneSerial) map[string]uint32 {
	out := make(map[string]uint32, len(zs))
	for name, z := range zs {
		out[name] = z.Served
	}
	return out
}

// serialStore is a standalone node's record of its zones' last served
// serials. Without a path (an embedded configuration, or a data
// directory this node cannot write) it lives in memory only, and a
// restart serves the files' serials again.
type serialStore struct {
	path string // "" in memory only
	last map[string]raftstore.ZoneSerial
}

// openSerials reads the serials kept in cfg's data directory, creating the
// directory. A directory that cannot be created or written is not fatal:
// the returned error says why the store lives in memory only.
func openSerials(cfg *config.Config) (*serialStore, error) {
	dir := cfg.HostPath(cfg.Node.Data)
	if dir == "" {
		return &serialStore{}, nil // not loaded from this host (tern serve --dev)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &serialStore{}, fmt.Errorf("node.data %s: %w", dir, err)
	}
	s := &serialStore{path: filepath.Join(dir, serialsFile)}
	data, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err != nil:
		return &serialStore{}, fmt.Errorf("read %s: %w", s.path, err)
	}
	var f serialsJSON
	if err := json.Unmarshal(data, &f); err != nil {
		// Refusing to start over a damaged file would stop DNS for a
		// number a secondary can recover from; say so and start afresh.
		return s, fmt.Errorf("%s does not decode (%v): starting from the zone files' serials", s.path, err)
	}
	s.last = f.Zones
	return s, nil
}

type serialsJSON struct {
	Zones map[string]raftstore.ZoneSerial `json:"zones"`
}

// next derives the serials for stamps and records them (on disk first
// when the store has a path). It returns the serials to serve and, when
// they could not be written, why (they are served anyway).
func (s *serialStore) next(stamps map[string]raftstore.ZoneStamp) (map[string]uint32, error) {
	zs := raftstore.NextSerials(s.last, stamps)
	last := raftstore.WithSerials(s.last, zs)
	var err error
	if s.path != "" {
		err = writeFileAtomic(s.path, serialsJSON{Zones: last})
	}
	s.last = last
	return servedSerials(zs), err
}

// writeFileAtomic writes v as JSON to path so that a crash leaves the old
// file or the new one, never a part: a temporary file in the same
// directory, synced, renamed over path, and the directory synced.
func writeFileAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing there
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

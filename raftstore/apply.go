package raftstore

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Result is what an applied command did.
type Result struct {
	// Index is the command's log index.
	Index uint64 `json:"index"`
	// Changed is false when the command was valid but changed nothing (the
	// same bundle again, an observation older than the one held).
	Changed bool `json:"changed"`
	// Version is the current configuration version after the command.
	Version uint64 `json:"version"`
}

// apply returns the state after b at index and the members whose
// observations or admin state b changed (see FSM.ChangedSince), or an
// error and no state. It never modifies s: every map it changes is copied
// first. It reads no clock and no randomness, and iterates maps only where
// the order cannot matter (deletions), so every node computes the same
// state.
func (s *State) apply(index uint64, b Body) (*State, Result, []MemberKey, error) {
	res := Result{Index: index, Version: s.lastVersion}
	if cur, ok := s.Config(); ok {
		res.Version = cur.Version
	}
	n := s.clone()
	var changed bool
	var keys []MemberKey
	var err error
	switch c := b.(type) {
	case ApplyConfig:
		changed, err = n.applyConfig(index, c)
	case Rollback:
		changed, err = n.rollback(index, c)
	case SetAdmin:
		keys = n.setAdmin(index, c)
	case Observations:
		keys = n.observe(index, c)
	case RegisterNode:
		changed = n.register(index, c)
	case ForgetNode:
		changed, keys = n.forgetNode(index, c)
	case ForgetMembers:
		keys = n.forgetMembers(index, c)
	case PutBlobs:
		changed, err = true, n.putBlobs(index, c, true)
		if err == nil {
			n.sweep(index)
		}
	default:
		err = fmt.Errorf("%w: %T", ErrUnknownCommand, b)
	}
	if err != nil {
		return nil, Result{}, nil, err
	}
	if !changed && len(keys) == 0 {
		return s, res, nil, nil
	}
	n.index = index
	res.Changed = true
	if cur, ok := n.Config(); ok {
		res.Version = cur.Version
	}
	return n, res, keys, nil
}

// checkBase refuses a change based on another version than the current
// one, unless forced.
func (s *State) checkBase(base uint64, force bool) error {
	if cur, _ := s.Config(); base != cur.Version && !force {
		return fmt.Errorf("%w: based on version %d, the current version is %d", ErrStale, base, cur.Version)
	}
	return nil
}

func (s *State) applyConfig(index uint64, c ApplyConfig) (bool, error) {
	h := c.Manifest.Hash()
	if cur, ok := s.Config(); ok && cur.Hash == h {
		return false, nil
	}
	if err := s.checkBase(c.Base, c.Force); err != nil {
		return false, err
	}
	if !c.Blobs.empty() {
		if err := s.putBlobs(index, c.Blobs, false); err != nil {
			return false, err
		}
	}
	var size int64
	var missing []string
	for _, p := range slices.Sorted(maps.Keys(c.Files)) {
		f, ok := s.blobs.files[c.Files[p]]
		if !ok {
			missing = append(missing, p)
			continue
		}
		size += f.size
	}
	if len(missing) > 0 {
		return false, fmt.Errorf("%w: %d of its files: %s: upload them (PutBlobs), then propose again", ErrMissingBlob, len(missing), strings.Join(missing, ", "))
	}
	if size > MaxConfigSize {
		return false, fmt.Errorf("files: %d bytes, more than %d", size, MaxConfigSize)
	}
	s.addVersion(index, c.Keep, c.Zones, &ConfigVersion{
		Hash:     h,
		At:       normTime(c.At),
		Comment:  c.Comment,
		Origin:   c.Origin,
		Manifest: Manifest{Main: c.Main, Files: maps.Clone(c.Files)},
	})
	return true, nil
}

func (s *State) rollback(index uint64, c Rollback) (bool, error) {
	old, ok := s.ConfigVersion(c.Version)
	if !ok {
		kept := make([]uint64, len(s.versions))
		for i, v := range s.versions {
			kept[i] = v.Version
		}
		return false, fmt.Errorf("%w: %d (kept: %v)", ErrNoSuchVersion, c.Version, kept)
	}
	if cur, _ := s.Config(); cur.Hash == old.Hash {
		return false, nil
	}
	if err := s.checkBase(c.Base, c.Force); err != nil {
		return false, err
	}
	stamps := c.Zones
	if stamps == nil && old.Zones != nil {
		stamps = make(map[string]ZoneStamp, len(old.Zones))
		for name, z := range old.Zones {
			stamps[name] = z.ZoneStamp
		}
	}
	s.addVersion(index, c.Keep, stamps, &ConfigVersion{
		Hash:       old.Hash,
		At:         normTime(c.At),
		Comment:    c.Comment,
		Origin:     c.Origin,
		RollbackOf: old.Version,
		Manifest:   old.Manifest, // immutable, shared
	})
	return true, nil
}

// addVersion appends v as the next version, with the serials its zones
// serve derived from stamps (none without stamps).
func (s *State) addVersion(index uint64, keep int, stamps map[string]ZoneStamp, v *ConfigVersion) {
	if keep == 0 {
		keep = DefaultKeep
	}
	if len(stamps) > 0 {
		last := s.zones
		if cur, ok := s.Config(); ok && cur.Zones == nil && cur.Origin.Kind == "" {
			// The current version predates kept serials (and origins): its
			// nodes serve the file's serial plus its number; start there.
			last = maps.Clone(last)
			if last == nil {
				last = map[string]ZoneSerial{}
			}
			for name, st := range stamps {
				if _, ok := last[name]; !ok {
					last[name] = ZoneSerial{Served: st.Serial + uint32(cur.Version)}
				}
			}
		}
		v.Zones = NextSerials(last, stamps)
		s.zones = WithSerials(s.zones, v.Zones)
	}
	s.lastVersion++
	v.Version = s.lastVersion
	v.Index = index
	vs := append(slices.Clip(s.versions), v) // never writes into the shared array
	if len(vs) > keep {
		vs = slices.Clone(vs[len(vs)-keep:])
	}
	s.versions = vs
	s.keep = keep
	s.indexes.Config = index
	s.sweep(index) // a trimmed version's files may be named by no other
}

func (s *State) setAdmin(index uint64, c SetAdmin) []MemberKey {
	var m map[MemberKey]AdminState
	var changed []MemberKey
	for _, a := range c.States {
		k := MemberKey{a.Pool, a.Member}
		if s.Admin(k.Pool, k.Member) == a.State {
			continue
		}
		if m == nil {
			m = copyMap(s.admin)
			s.admin = m
		}
		if a.State == AdminAuto {
			delete(m, k)
		} else {
			m[k] = a.State
		}
		changed = append(changed, k)
	}
	if m == nil {
		return nil
	}
	s.indexes.Admin = index
	return changed
}

func (s *State) observe(index uint64, c Observations) []MemberKey {
	changed := s.merge(c.Node, c.Reports)
	if len(changed) > 0 {
		s.indexes.Observations = index
	}
	return changed
}

func (s *State) register(index uint64, c RegisterNode) bool {
	n := NodeInfo(c)
	if old, ok := s.nodes[c.ID]; ok && old == n {
		return false
	}
	s.nodes = copyMap(s.nodes)
	s.nodes[c.ID] = n
	s.indexes.Nodes = index
	return true
}

func (s *State) forgetNode(index uint64, c ForgetNode) (bool, []MemberKey) {
	changed := false
	if _, ok := s.nodes[c.ID]; ok {
		s.nodes = copyMap(s.nodes)
		delete(s.nodes, c.ID)
		s.indexes.Nodes = index
		changed = true
	}
	gone := s.dropNode(c.ID)
	if len(gone) > 0 {
		s.indexes.Observations = index
	}
	return changed, gone
}

func (s *State) forgetMembers(index uint64, c ForgetMembers) []MemberKey {
	var admin map[MemberKey]AdminState
	var adminGone []MemberKey
	for _, k := range c.Members {
		if _, ok := s.admin[k]; ok {
			if admin == nil {
				admin = copyMap(s.admin)
				s.admin = admin
			}
			delete(admin, k)
			adminGone = append(adminGone, k)
		}
	}
	if admin != nil {
		s.indexes.Admin = index
	}
	gone := s.dropMembers(c.Members)
	if len(gone) > 0 {
		s.indexes.Observations = index
	}
	return append(gone, adminGone...) // a member may be in both: listed twice
}

package raftstore

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Result is what an applied command did.
type Result struct {
	// Index is the command's log index.
	Index uint64 `json:"index"`
	// Changed is false when the command was valid but changed nothing (the
	// same bundle again, a verdict older than the one held).
	Changed bool `json:"changed"`
	// Version is the current configuration version after the command.
	Version uint64 `json:"version"`
}

// apply returns the state after b at index, or an error and no state. It
// never modifies s: every map it changes is copied first. It reads no
// clock and no randomness, and iterates maps only where the order cannot
// matter (deletions), so every node computes the same state.
func (s *State) apply(index uint64, b Body) (*State, Result, error) {
	res := Result{Index: index, Version: s.lastVersion}
	if cur, ok := s.Config(); ok {
		res.Version = cur.Version
	}
	n := s.clone()
	var changed bool
	var err error
	switch c := b.(type) {
	case ApplyConfig:
		changed, err = n.applyConfig(index, c)
	case Rollback:
		changed, err = n.rollback(index, c)
	case SetAdmin:
		changed = n.setAdmin(index, c)
	case Verdicts:
		changed = n.setVerdicts(index, c)
	case Loads:
		changed = n.setLoads(index, c)
	case RegisterNode:
		changed = n.register(index, c)
	case ForgetNode:
		changed = n.forgetNode(index, c)
	case ForgetMembers:
		changed = n.forgetMembers(index, c)
	case PutBlobs:
		changed, err = true, n.putBlobs(index, c, true)
		if err == nil {
			n.sweep(index)
		}
	default:
		err = fmt.Errorf("%w: %T", ErrUnknownCommand, b)
	}
	if err != nil {
		return nil, Result{}, err
	}
	if !changed {
		return s, res, nil
	}
	n.index = index
	res.Changed = true
	if cur, ok := n.Config(); ok {
		res.Version = cur.Version
	}
	return n, res, nil
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

func (s *State) setAdmin(index uint64, c SetAdmin) bool {
	var m map[MemberKey]AdminState
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
	}
	if m == nil {
		return false
	}
	s.indexes.Admin = index
	return true
}

func (s *State) setVerdicts(index uint64, c Verdicts) bool {
	m, changed := mergeReports(s.verdicts, c.Node, len(c.Verdicts), func(i int) (string, string, Verdict) {
		r := c.Verdicts[i]
		return r.Pool, r.Member, Verdict{Node: c.Node, Up: r.Health == HealthUp, At: normTime(r.At)}
	})
	if !changed {
		return false
	}
	s.verdicts, s.indexes.Health = m, index
	return true
}

func (s *State) setLoads(index uint64, c Loads) bool {
	m, changed := mergeReports(s.loads, c.Node, len(c.Loads), func(i int) (string, string, Load) {
		r := c.Loads[i]
		return r.Pool, r.Member, Load{Node: c.Node, Load: r.Load, Capacity: r.Capacity, At: normTime(r.At)}
	})
	if !changed {
		return false
	}
	s.loads, s.indexes.Load = m, index
	return true
}

// report is a node's observation of a member: a verdict or a load.
type report interface {
	comparable
	observed() time.Time
}

func (v Verdict) observed() time.Time { return v.At }
func (l Load) observed() time.Time    { return l.At }

// mergeReports takes node's n reports (item i gives pool, member and the
// report) into orig copy-on-write. A report older than, or the same as,
// the one held changes nothing, so reports arriving out of order never
// move a member back. It returns the map to keep and whether it changed.
func mergeReports[V report](orig map[string]map[string]map[NodeID]V, node NodeID, n int, item func(i int) (pool, member string, v V)) (map[string]map[string]map[NodeID]V, bool) {
	t := newCow3(orig)
	for i := range n {
		pool, member, v := item(i)
		old, ok := t.get(pool, member, node)
		if ok && (v.observed().Before(old.observed()) || v == old) {
			continue
		}
		t.set(pool, member, node, v)
	}
	return t.cur, t.dirty()
}

func (s *State) register(index uint64, c RegisterNode) bool {
	n := NodeInfo{ID: c.ID, Raft: c.Raft, API: c.API}
	if old, ok := s.nodes[c.ID]; ok && old == n {
		return false
	}
	s.nodes = copyMap(s.nodes)
	s.nodes[c.ID] = n
	s.indexes.Nodes = index
	return true
}

func (s *State) forgetNode(index uint64, c ForgetNode) bool {
	changed := false
	if _, ok := s.nodes[c.ID]; ok {
		s.nodes = copyMap(s.nodes)
		delete(s.nodes, c.ID)
		s.indexes.Nodes = index
		changed = true
	}
	// Deleting is the same whatever order the maps are walked in.
	v := newCow3(s.verdicts)
	for p, ms := range s.verdicts {
		for m := range ms {
			v.del(p, m, c.ID)
		}
	}
	if v.dirty() {
		s.verdicts = v.cur
		s.indexes.Health = index
		changed = true
	}
	l := newCow3(s.loads)
	for p, ms := range s.loads {
		for m := range ms {
			l.del(p, m, c.ID)
		}
	}
	if l.dirty() {
		s.loads = l.cur
		s.indexes.Load = index
		changed = true
	}
	return changed
}

func (s *State) forgetMembers(index uint64, c ForgetMembers) bool {
	changed := false
	v, l := newCow3(s.verdicts), newCow3(s.loads)
	var admin map[MemberKey]AdminState
	for _, k := range c.Members {
		v.delMember(k.Pool, k.Member)
		l.delMember(k.Pool, k.Member)
		if _, ok := s.admin[k]; ok {
			if admin == nil {
				admin = copyMap(s.admin)
				s.admin = admin
			}
			delete(admin, k)
		}
	}
	if admin != nil {
		s.indexes.Admin = index
		changed = true
	}
	if v.dirty() {
		s.verdicts = v.cur
		s.indexes.Health = index
		changed = true
	}
	if l.dirty() {
		s.loads = l.cur
		s.indexes.Load = index
		changed = true
	}
	return changed
}

// cow3 edits a pool -> member -> node map copy-on-write: the first write
// under a pool or member copies that level once; the maps of the original
// are never written. Empty inner maps are removed so that equal states
// have equal maps.
type cow3[V any] struct {
	cur     map[string]map[string]map[NodeID]V
	copied  bool
	pools   map[string]bool
	members map[MemberKey]bool
}

func newCow3[V any](orig map[string]map[string]map[NodeID]V) *cow3[V] {
	return &cow3[V]{cur: orig}
}

func (c *cow3[V]) dirty() bool { return c.copied }

func (c *cow3[V]) get(pool, member string, node NodeID) (V, bool) {
	v, ok := c.cur[pool][member][node]
	return v, ok
}

func (c *cow3[V]) own(pool, member string) map[NodeID]V {
	if !c.copied {
		c.cur = copyMap(c.cur)
		c.copied = true
		c.pools = map[string]bool{}
		c.members = map[MemberKey]bool{}
	}
	pm := c.cur[pool]
	if !c.pools[pool] || pm == nil {
		pm = copyMap(pm)
		c.cur[pool] = pm
		c.pools[pool] = true
	}
	k := MemberKey{pool, member}
	mm := pm[member]
	if !c.members[k] || mm == nil {
		mm = copyMap(mm)
		pm[member] = mm
		c.members[k] = true
	}
	return mm
}

func (c *cow3[V]) set(pool, member string, node NodeID, v V) {
	c.own(pool, member)[node] = v
}

func (c *cow3[V]) del(pool, member string, node NodeID) {
	if _, ok := c.get(pool, member, node); !ok {
		return
	}
	mm := c.own(pool, member)
	delete(mm, node)
	if len(mm) == 0 {
		c.delMember(pool, member)
	}
}

func (c *cow3[V]) delMember(pool, member string) {
	if _, ok := c.cur[pool][member]; !ok {
		return
	}
	c.own(pool, member) // copies the levels above
	pm := c.cur[pool]
	delete(pm, member)
	if len(pm) == 0 {
		delete(c.cur, pool)
	}
}

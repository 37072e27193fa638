package raftstore

import (
	"cmp"
	"slices"
	"time"
)

// State is one immutable view of the replicated state, as of one applied
// log index. Nothing reachable from a *State changes after the FSM has
// published it: apply builds a new State that shares the parts it did not
// touch. Methods return copies of slices; a ConfigVersion's Bundle is
// shared and must not be modified.
type State struct {
	index   uint64
	indexes Indexes

	lastVersion uint64
	keep        int
	versions    []*ConfigVersion // oldest first; the last is current
	// zones holds the last served serial of every zone any version ever
	// had (NextSerials), trimmed versions' included.
	zones map[string]ZoneSerial
	// blobs holds the content of the kept versions' files and of uploads
	// in progress, each once (see blobs.go).
	blobs blobStore

	admin map[MemberKey]AdminState
	obs   obsTrie // every node's latest observation of every kind of every member
	nodes map[NodeID]NodeInfo
}

// Indexes are the log indexes at which each part of the state last changed
// (0: never), so that a reader can tell what it must recompute
// (FSM.ChangedSince tells which members).
type Indexes struct {
	Config uint64
	Admin  uint64
	// Observations: any node's observation of any kind of any member.
	Observations uint64
	Nodes        uint64
}

// ConfigVersion is one accepted configuration.
type ConfigVersion struct {
	Version uint64    `json:"version"`
	Hash    Hash      `json:"hash"`
	Index   uint64    `json:"index"` // log index that made it
	At      time.Time `json:"at"`    // proposer's clock
	Comment string    `json:"comment,omitempty"`
	// RollbackOf is the version this one re-applied (0: a fresh apply).
	RollbackOf uint64 `json:"rollback_of,omitempty"`
	// Manifest names its files by content; State.FS and State.Bundle read
	// them.
	Manifest
	// Origin is who made it; zero in versions made before it was kept.
	Origin Origin `json:"origin,omitzero"`
	// Zones are its zones' stamps and served serials, by zone name; nil in
	// versions made before serials were kept (nodes then serve the file's
	// serial plus the version number, as they did).
	Zones map[string]ZoneSerial `json:"zones,omitempty"`
}

// NodeInfo is a registered node.
type NodeInfo struct {
	ID   NodeID `json:"id"`
	Raft string `json:"raft"`
	API  string `json:"api,omitempty"`
}

// AdminEntry is one member's admin override.
type AdminEntry struct {
	MemberKey
	State AdminState
}

func emptyState() *State {
	return &State{
		keep:  DefaultKeep,
		blobs: blobStore{chunks: map[Hash]storedChunk{}, files: map[Hash]storedFile{}},
		admin: map[MemberKey]AdminState{},
		nodes: map[NodeID]NodeInfo{},
	}
}

// Index is the log index of the last command that changed the state.
func (s *State) Index() uint64 { return s.index }

// Indexes tells where each part of the state last changed.
func (s *State) Indexes() Indexes { return s.indexes }

// Config returns the current configuration version; ok is false before the
// first config.apply.
func (s *State) Config() (v ConfigVersion, ok bool) {
	if len(s.versions) == 0 {
		return ConfigVersion{}, false
	}
	return *s.versions[len(s.versions)-1], true
}

// ConfigVersions returns the kept versions, oldest first.
func (s *State) ConfigVersions() []ConfigVersion {
	out := make([]ConfigVersion, len(s.versions))
	for i, v := range s.versions {
		out[i] = *v
	}
	return out
}

// ConfigVersion returns kept version v.
func (s *State) ConfigVersion(v uint64) (ConfigVersion, bool) {
	for _, cv := range s.versions {
		if cv.Version == v {
			return *cv, true
		}
	}
	return ConfigVersion{}, false
}

// Keep is how many configuration versions are kept.
func (s *State) Keep() int { return s.keep }

// Admin returns a member's admin state (AdminAuto when none is set).
func (s *State) Admin(pool, member string) AdminState {
	if a, ok := s.admin[MemberKey{pool, member}]; ok {
		return a
	}
	return AdminAuto
}

// AdminStates returns every admin override, by pool then member.
func (s *State) AdminStates() []AdminEntry {
	out := make([]AdminEntry, 0, len(s.admin))
	for k, a := range s.admin {
		out = append(out, AdminEntry{k, a})
	}
	slices.SortFunc(out, func(a, b AdminEntry) int { return cmpKey(a.MemberKey, b.MemberKey) })
	return out
}

// Nodes returns the node registry, by ID.
func (s *State) Nodes() []NodeInfo {
	out := make([]NodeInfo, 0, len(s.nodes))
	for _, n := range s.nodes {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Node returns one registered node.
func (s *State) Node(id NodeID) (NodeInfo, bool) {
	n, ok := s.nodes[id]
	return n, ok
}

func cmpKey(a, b MemberKey) int {
	if c := cmp.Compare(a.Pool, b.Pool); c != 0 {
		return c
	}
	return cmp.Compare(a.Member, b.Member)
}

// clone returns a shallow copy of s: the top-level maps are shared until a
// with* method replaces them.
func (s *State) clone() *State {
	c := *s
	return &c
}

func copyMap[K comparable, V any](m map[K]V) map[K]V {
	c := make(map[K]V, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

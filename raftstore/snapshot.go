package raftstore

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Snapshot format: JSON values, one per line.
//
//	{"format":"tern-raftstore","v":1,"applied":1234}
//	{"state":{"index":..,"indexes":{..},"last_version":..,"keep":..}}
//	{"version":{..}}   kept configuration versions, oldest first
//	{"admin":{..}}     admin overrides, by pool, member
//	{"verdict":{..}}   verdicts, by pool, member, node
//	{"load":{..}}      load reports, by pool, member, node
//	{"node":{..}}      node registry, by ID
//	{"end":{"records":N,"applied":1234,"hash":"<sha256>"}}
//
// The lines from "state" to the last before "end" are the state's canonical
// form; "hash" is their SHA-256 (State.Hash). Restore decodes every line,
// checks order, content and hash, and only then swaps the state in.
const (
	snapshotFormat  = "tern-raftstore"
	snapshotVersion = 1
)

type snapHeader struct {
	Format  string `json:"format"`
	V       int    `json:"v"`
	Applied uint64 `json:"applied"`
}

type stateRec struct {
	Index       uint64  `json:"index"`
	Indexes     Indexes `json:"indexes"`
	LastVersion uint64  `json:"last_version"`
	Keep        int     `json:"keep"`
	// Zones: every zone's last served serial (absent in snapshots written
	// before serials were kept).
	Zones map[string]ZoneSerial `json:"zones,omitempty"`
}

type adminRec struct {
	Pool   string     `json:"pool"`
	Member string     `json:"member"`
	State  AdminState `json:"state"`
}

type verdictRec struct {
	Pool   string    `json:"pool"`
	Member string    `json:"member"`
	Node   NodeID    `json:"node"`
	Up     bool      `json:"up"`
	At     time.Time `json:"at"`
}

type loadRec struct {
	Pool     string    `json:"pool"`
	Member   string    `json:"member"`
	Node     NodeID    `json:"node"`
	Load     float64   `json:"load"`
	Capacity float64   `json:"capacity"`
	At       time.Time `json:"at"`
}

type endRec struct {
	Records int    `json:"records"`
	Applied uint64 `json:"applied"` // repeats the header's, so a flip there shows
	Hash    Hash   `json:"hash"`
}

// record is one line; exactly one field is set.
type record struct {
	State   *stateRec      `json:"state,omitempty"`
	Version *ConfigVersion `json:"version,omitempty"`
	Admin   *adminRec      `json:"admin,omitempty"`
	Verdict *verdictRec    `json:"verdict,omitempty"`
	Load    *loadRec       `json:"load,omitempty"`
	Node    *NodeInfo      `json:"node,omitempty"`
	End     *endRec        `json:"end,omitempty"`
}

// Hash returns the SHA-256 of the state's canonical form (its snapshot
// lines). Two nodes that applied the same log have the same hash.
func (s *State) Hash() Hash {
	h := sha256.New()
	if _, err := writeState(h, s); err != nil {
		panic(fmt.Sprintf("raftstore: hash state: %v", err)) // a hash.Hash never fails to write
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

// writeState writes the canonical records of s (without header and end)
// and returns how many it wrote.
func writeState(w io.Writer, s *State) (int, error) {
	enc := json.NewEncoder(w)
	n := 0
	put := func(r record) error { n++; return enc.Encode(r) }
	if err := put(record{State: &stateRec{s.index, s.indexes, s.lastVersion, s.keep, s.zones}}); err != nil {
		return n, err
	}
	for _, v := range s.versions {
		if err := put(record{Version: v}); err != nil {
			return n, err
		}
	}
	for _, a := range s.AdminStates() {
		if err := put(record{Admin: &adminRec{a.Pool, a.Member, a.State}}); err != nil {
			return n, err
		}
	}
	for _, k := range sortedKeys3(s.verdicts) {
		for _, v := range s.Verdicts(k.Pool, k.Member) {
			if err := put(record{Verdict: &verdictRec{k.Pool, k.Member, v.Node, v.Up, v.At}}); err != nil {
				return n, err
			}
		}
	}
	for _, k := range sortedKeys3(s.loads) {
		for _, l := range s.Loads(k.Pool, k.Member) {
			if err := put(record{Load: &loadRec{k.Pool, k.Member, l.Node, l.Load, l.Capacity, l.At}}); err != nil {
				return n, err
			}
		}
	}
	for _, nd := range s.Nodes() {
		if err := put(record{Node: &nd}); err != nil {
			return n, err
		}
	}
	return n, nil
}

func sortedKeys3[V any](m map[string]map[string]map[NodeID]V) []MemberKey {
	var out []MemberKey
	for p, ms := range m {
		for mem := range ms {
			out = append(out, MemberKey{p, mem})
		}
	}
	slices.SortFunc(out, cmpKey)
	return out
}

func writeSnapshot(w io.Writer, s *State, applied uint64) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(snapHeader{snapshotFormat, snapshotVersion, applied}); err != nil {
		return err
	}
	h := sha256.New()
	n, err := writeState(io.MultiWriter(bw, h), s)
	if err != nil {
		return err
	}
	var sum Hash
	h.Sum(sum[:0])
	if err := enc.Encode(record{End: &endRec{Records: n, Applied: applied, Hash: sum}}); err != nil {
		return err
	}
	return bw.Flush()
}

// readSnapshot decodes a whole snapshot into a new State and checks it.
func readSnapshot(r io.Reader) (*State, uint64, error) {
	s, applied, err := decodeSnapshot(r)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrCorruptSnapshot, err)
	}
	return s, applied, nil
}

// Record kinds in the order they must appear.
const (
	kState = iota
	kVersion
	kAdmin
	kVerdict
	kLoad
	kNode
	kEnd
)

func (r record) kind() (int, error) {
	k, n := -1, 0
	for i, set := range []bool{r.State != nil, r.Version != nil, r.Admin != nil, r.Verdict != nil, r.Load != nil, r.Node != nil, r.End != nil} {
		if set {
			k = i
			n++
		}
	}
	if n != 1 {
		return 0, fmt.Errorf("a record must hold exactly one kind, this one holds %d", n)
	}
	return k, nil
}

func decodeSnapshot(r io.Reader) (*State, uint64, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	dec.DisallowUnknownFields()
	var hdr snapHeader
	if err := dec.Decode(&hdr); err != nil {
		return nil, 0, fmt.Errorf("header: %w", err)
	}
	if hdr.Format != snapshotFormat || hdr.V != snapshotVersion {
		return nil, 0, fmt.Errorf("header: format %q version %d, want %q version %d", hdr.Format, hdr.V, snapshotFormat, snapshotVersion)
	}
	s := emptyState()
	last, count := -1, 0
	var lastAdmin MemberKey
	type nk struct {
		MemberKey
		node NodeID
	}
	var lastV, lastL nk
	var lastNode NodeID
	var end *endRec
	less := func(a, b nk) bool {
		if c := cmpKey(a.MemberKey, b.MemberKey); c != 0 {
			return c < 0
		}
		return a.node < b.node
	}
	for end == nil {
		var rec record
		if err := dec.Decode(&rec); err != nil {
			if errors.Is(err, io.EOF) {
				return nil, 0, fmt.Errorf("record %d: truncated (no end record)", count+1)
			}
			return nil, 0, fmt.Errorf("record %d: %w", count+1, err)
		}
		k, err := rec.kind()
		if err == nil && (k < last || (k == kState && last == kState) || (k != kState && last == -1)) {
			err = errors.New("record out of order")
		}
		if err == nil {
			err = s.restoreRecord(k, rec, &lastAdmin, &lastNode)
		}
		if err == nil && (k == kVerdict || k == kLoad) {
			var cur nk
			prev := &lastV
			if k == kVerdict {
				cur = nk{MemberKey{rec.Verdict.Pool, rec.Verdict.Member}, rec.Verdict.Node}
			} else {
				cur = nk{MemberKey{rec.Load.Pool, rec.Load.Member}, rec.Load.Node}
				prev = &lastL
			}
			if prev.Pool != "" && !less(*prev, cur) {
				err = errors.New("records out of order or duplicated")
			}
			*prev = cur
		}
		if err != nil {
			return nil, 0, fmt.Errorf("record %d: %w", count+1, err)
		}
		if k == kEnd {
			end = rec.End
			break
		}
		last = k
		count++
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, 0, errors.New("data after the end record")
	}
	if end.Applied != hdr.Applied {
		return nil, 0, fmt.Errorf("end: applied index %d, header says %d", end.Applied, hdr.Applied)
	}
	if end.Records != count {
		return nil, 0, fmt.Errorf("end: %d records announced, %d read", end.Records, count)
	}
	if s.lastVersion < uint64(len(s.versions)) {
		return nil, 0, fmt.Errorf("state: last version %d below %d kept versions", s.lastVersion, len(s.versions))
	}
	if n := len(s.versions); n > 0 && s.versions[n-1].Version != s.lastVersion {
		return nil, 0, fmt.Errorf("state: last version %d, newest kept is %d", s.lastVersion, s.versions[n-1].Version)
	}
	if h := s.Hash(); h != end.Hash {
		return nil, 0, fmt.Errorf("hash mismatch: content %s, recorded %s", h, end.Hash)
	}
	return s, hdr.Applied, nil
}

func (s *State) restoreRecord(k int, rec record, lastAdmin *MemberKey, lastNode *NodeID) error {
	switch k {
	case kState:
		r := rec.State
		if r.Keep < 1 || r.Keep > MaxKeep {
			return fmt.Errorf("state: keep %d out of range", r.Keep)
		}
		if err := checkZoneNames(r.Zones); err != nil {
			return fmt.Errorf("state: %w", err)
		}
		s.index, s.indexes, s.lastVersion, s.keep, s.zones = r.Index, r.Indexes, r.LastVersion, r.Keep, r.Zones
	case kVersion:
		v := rec.Version
		if err := v.Bundle.Validate(); err != nil {
			return fmt.Errorf("version %d: %w", v.Version, err)
		}
		if v.Bundle.Hash() != v.Hash {
			return fmt.Errorf("version %d: bundle does not match its hash", v.Version)
		}
		if n := len(s.versions); v.Version == 0 || v.Version > s.lastVersion || (n > 0 && v.Version <= s.versions[n-1].Version) {
			return fmt.Errorf("version %d: out of order or beyond last version %d", v.Version, s.lastVersion)
		}
		if len(s.versions) == s.keep {
			return fmt.Errorf("version %d: more versions than kept (%d)", v.Version, s.keep)
		}
		if err := checkTime("at", v.At); err != nil {
			return fmt.Errorf("version %d: %w", v.Version, err)
		}
		if err := v.Origin.validate(); err != nil {
			return fmt.Errorf("version %d: %w", v.Version, err)
		}
		if err := checkZoneNames(v.Zones); err != nil {
			return fmt.Errorf("version %d: %w", v.Version, err)
		}
		v.At = normTime(v.At)
		s.versions = append(s.versions, v)
	case kAdmin:
		a := rec.Admin
		key := MemberKey{a.Pool, a.Member}
		if err := key.validate(); err != nil {
			return fmt.Errorf("admin: %w", err)
		}
		if a.State != AdminUp && a.State != AdminDown && a.State != AdminDrain {
			return fmt.Errorf("admin: state %q", a.State)
		}
		if len(s.admin) > 0 && cmpKey(*lastAdmin, key) >= 0 {
			return errors.New("admin: out of order or duplicated")
		}
		*lastAdmin = key
		s.admin[key] = a.State
	case kVerdict:
		v := rec.Verdict
		if err := checkObs(v.Pool, v.Member, v.Node, v.At); err != nil {
			return fmt.Errorf("verdict: %w", err)
		}
		put3(s.verdicts, v.Pool, v.Member, v.Node, Verdict{Node: v.Node, Up: v.Up, At: normTime(v.At)})
	case kLoad:
		l := rec.Load
		if err := checkObs(l.Pool, l.Member, l.Node, l.At); err != nil {
			return fmt.Errorf("load: %w", err)
		}
		if !finite(l.Load) || l.Load < 0 || !finite(l.Capacity) || l.Capacity < 0 {
			return errors.New("load: not finite or negative")
		}
		put3(s.loads, l.Pool, l.Member, l.Node, Load{Node: l.Node, Load: l.Load, Capacity: l.Capacity, At: normTime(l.At)})
	case kNode:
		n := *rec.Node
		if err := (RegisterNode{n.ID, n.Raft, n.API}).validate(); err != nil {
			return fmt.Errorf("node: %w", err)
		}
		if len(s.nodes) > 0 && *lastNode >= n.ID {
			return errors.New("node: out of order or duplicated")
		}
		*lastNode = n.ID
		s.nodes[n.ID] = n
	}
	return nil
}

func checkZoneNames(zs map[string]ZoneSerial) error {
	for name := range zs {
		if err := checkName("zone", name); err != nil {
			return err
		}
	}
	return nil
}

func checkObs(pool, member string, node NodeID, at time.Time) error {
	if err := (MemberKey{pool, member}).validate(); err != nil {
		return err
	}
	if err := checkName("node", string(node)); err != nil {
		return err
	}
	return checkTime("at", at)
}

func put3[V any](m map[string]map[string]map[NodeID]V, pool, member string, node NodeID, v V) {
	pm := m[pool]
	if pm == nil {
		pm = map[string]map[NodeID]V{}
		m[pool] = pm
	}
	mm := pm[member]
	if mm == nil {
		mm = map[NodeID]V{}
		pm[member] = mm
	}
	mm[node] = v
}

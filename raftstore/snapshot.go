package raftstore

import (
	"bufio"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ternlb/tern/health"
)

// Snapshot format: JSON values, one per line.
//
//	{"format":"tern-raftstore","v":2,"applied":1234}
//	{"state":{"index":..,"indexes":{..},"last_version":..,"keep":..}}
//	{"version":{..}}   kept configuration versions, oldest first
//	{"admin":{..}}     admin overrides, by pool, member
//	{"obs":{..}}       observations, by pool, member, kind, node
//	{"node":{..}}      node registry, by ID
//	{"end":{"records":N,"applied":1234,"hash":"<sha256>"}}
//
// The lines from "state" to the last before "end" are the state's canonical
// form; "hash" is their SHA-256 (State.Hash). Restore decodes every line,
// checks order, content and hash, and only then swaps the state in.
//
// Format 1, written before every kind of observation was one, held
// "verdict" ({pool, member, node, up, at}) and then "load" ({pool,
// member, node, load, capacity, at}) records, each by pool, member, node,
// where format 2 has "obs"; Restore reads them as observations of kind
// health and load (capacity dropped), and checks the hash over the lines
// as written, since the state they make no longer writes them. In both,
// the indexes' "health" is the observations' index and "load" (format 1:
// the load reports') is 0, so that a state without observations keeps the
// hash it had.
const (
	snapshotFormat  = "tern-raftstore"
	snapshotVersion = 2
)

type snapHeader struct {
	Format  string `json:"format"`
	V       int    `json:"v"`
	Applied uint64 `json:"applied"`
}

type stateRec struct {
	Index       uint64     `json:"index"`
	Indexes     indexesRec `json:"indexes"`
	LastVersion uint64     `json:"last_version"`
	Keep        int        `json:"keep"`
	// Zones: every zone's last served serial (absent in snapshots written
	// before serials were kept).
	Zones map[string]ZoneSerial `json:"zones,omitempty"`
}

// indexesRec is Indexes as snapshots write them (see the format).
type indexesRec struct {
	Config uint64 `json:"config"`
	Admin  uint64 `json:"admin"`
	Health uint64 `json:"health"` // Indexes.Observations
	Load   uint64 `json:"load"`   // format 1 only
	Nodes  uint64 `json:"nodes"`
}

func (r indexesRec) indexes() Indexes {
	return Indexes{Config: r.Config, Admin: r.Admin, Observations: max(r.Health, r.Load), Nodes: r.Nodes}
}

type adminRec struct {
	Pool   string     `json:"pool"`
	Member string     `json:"member"`
	State  AdminState `json:"state"`
}

type obsRec struct {
	Pool   string        `json:"pool"`
	Member string        `json:"member"`
	Kind   health.Kind   `json:"kind"`
	Node   health.NodeID `json:"node"`
	Value  float64       `json:"value"`
	At     time.Time     `json:"at"`
}

// verdictRec and loadRec are format 1's observations.
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
	Verdict *verdictRec    `json:"verdict,omitempty"` // format 1
	Load    *loadRec       `json:"load,omitempty"`    // format 1
	Obs     *obsRec        `json:"obs,omitempty"`
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
	ix := indexesRec{Config: s.indexes.Config, Admin: s.indexes.Admin, Health: s.indexes.Observations, Nodes: s.indexes.Nodes}
	if err := put(record{State: &stateRec{s.index, ix, s.lastVersion, s.keep, s.zones}}); err != nil {
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
	for _, m := range s.obs.sorted() {
		for _, o := range m.obs {
			if err := put(record{Obs: &obsRec{m.key.Pool, m.key.Member, o.Kind, o.Node, o.Value, o.At}}); err != nil {
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
	kObs
	kNode
	kEnd
)

func (r record) kind() (int, error) {
	k, n := -1, 0
	for i, set := range []bool{r.State != nil, r.Version != nil, r.Admin != nil, r.Verdict != nil, r.Load != nil, r.Obs != nil, r.Node != nil, r.End != nil} {
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
	if hdr.Format != snapshotFormat || hdr.V < 1 || hdr.V > snapshotVersion {
		return nil, 0, fmt.Errorf("header: format %q version %d, want %q version 1 to %d", hdr.Format, hdr.V, snapshotFormat, snapshotVersion)
	}
	rs := restorer{s: emptyState(), format: hdr.V}
	rs.s.obs = rs.s.obs.edit()
	lines := sha256.New() // format 1: the hash is over the lines as written
	last, count := -1, 0
	var end *endRec
	for end == nil {
		var raw json.RawMessage
		var rec record
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("record %d: truncated (no end record)", count+1)
		}
		if err == nil {
			err = strictUnmarshal(raw, &rec)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("record %d: %w", count+1, err)
		}
		k, err := rec.kind()
		if err == nil && (k < last || (k == kState && last == kState) || (k != kState && last == -1)) {
			err = errors.New("record out of order")
		}
		if err == nil {
			err = rs.record(k, rec)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("record %d: %w", count+1, err)
		}
		if k == kEnd {
			end = rec.End
			break
		}
		lines.Write(raw)
		lines.Write([]byte{'\n'})
		last = k
		count++
	}
	s := rs.s
	s.obs = s.obs.done()
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
	var h Hash
	if hdr.V == 1 {
		lines.Sum(h[:0])
	} else {
		h = s.Hash()
	}
	if h != end.Hash {
		return nil, 0, fmt.Errorf("hash mismatch: content %s, recorded %s", h, end.Hash)
	}
	return s, hdr.Applied, nil
}

// restorer builds a State from snapshot records, checking their order.
type restorer struct {
	s        *State
	format   int
	lastKey  MemberKey // of the last admin record
	lastNode NodeID
	lastObs  obsRec // of the last observation record of the section under way
	obsKind  int
}

func (rs *restorer) record(k int, rec record) error {
	s := rs.s
	switch k {
	case kState:
		r := rec.State
		if r.Keep < 1 || r.Keep > MaxKeep {
			return fmt.Errorf("state: keep %d out of range", r.Keep)
		}
		if err := checkZoneNames(r.Zones); err != nil {
			return fmt.Errorf("state: %w", err)
		}
		if rs.format > 1 && r.Indexes.Load != 0 {
			return errors.New("state: indexes: load is 0 since format 2")
		}
		s.index, s.indexes, s.lastVersion, s.keep, s.zones = r.Index, r.Indexes.indexes(), r.LastVersion, r.Keep, r.Zones
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
		if len(s.admin) > 0 && cmpKey(rs.lastKey, key) >= 0 {
			return errors.New("admin: out of order or duplicated")
		}
		rs.lastKey = key
		s.admin[key] = a.State
	case kVerdict, kLoad, kObs:
		o, err := rs.observation(k, rec)
		if err != nil {
			return err
		}
		if rs.obsKind == k && cmpObsRec(rs.lastObs, o) >= 0 {
			return fmt.Errorf("%s: out of order or duplicated", o.Kind)
		}
		rs.lastObs, rs.obsKind = o, k
		key := MemberKey{o.Pool, o.Member}
		if err := key.validate(); err != nil {
			return fmt.Errorf("%s: %w", o.Kind, err)
		}
		if err := checkName("node", string(o.Node)); err != nil {
			return fmt.Errorf("%s: %w", o.Kind, err)
		}
		if err := checkObservation(o.Kind, o.Value); err != nil {
			return err
		}
		if err := checkTime("at", o.At); err != nil {
			return fmt.Errorf("%s: %w", o.Kind, err)
		}
		s.obs.restoreObs(key, health.Observation{Node: o.Node, Kind: o.Kind, Value: o.Value, At: normTime(o.At)})
	case kNode:
		n := *rec.Node
		if err := (RegisterNode{n.ID, n.Raft, n.API}).validate(); err != nil {
			return fmt.Errorf("node: %w", err)
		}
		if len(s.nodes) > 0 && rs.lastNode >= n.ID {
			return errors.New("node: out of order or duplicated")
		}
		rs.lastNode = n.ID
		s.nodes[n.ID] = n
	}
	return nil
}

// observation reads an observation record: obs in format 2, verdict or
// load in format 1.
func (rs *restorer) observation(k int, rec record) (obsRec, error) {
	if (k == kObs) != (rs.format > 1) {
		return obsRec{}, fmt.Errorf("a %s record in a format %d snapshot", [...]string{kVerdict: "verdict", kLoad: "load", kObs: "obs"}[k], rs.format)
	}
	switch k {
	case kVerdict:
		v := rec.Verdict
		return obsRec{Pool: v.Pool, Member: v.Member, Kind: health.KindHealth, Node: health.NodeID(v.Node), Value: health.HealthValue(v.Up), At: v.At}, nil
	case kLoad:
		l := rec.Load
		if !finite(l.Capacity) || l.Capacity < 0 {
			return obsRec{}, errors.New("load: capacity not finite or negative")
		}
		return obsRec{Pool: l.Pool, Member: l.Member, Kind: health.KindLoad, Node: health.NodeID(l.Node), Value: l.Load, At: l.At}, nil
	}
	return *rec.Obs, nil
}

// cmpObsRec orders observation records: by pool, member, kind, node.
func cmpObsRec(a, b obsRec) int {
	return cmp.Or(cmpKey(MemberKey{a.Pool, a.Member}, MemberKey{b.Pool, b.Member}), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Node, b.Node))
}

func checkZoneNames(zs map[string]ZoneSerial) error {
	for name := range zs {
		if err := checkName("zone", name); err != nil {
			return err
		}
	}
	return nil
}

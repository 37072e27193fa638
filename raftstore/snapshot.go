package raftstore

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"
	"time"
)

// Snapshot format 2: JSON values, one per line, each chunk's bytes raw
// right after its line.
//
//	{"format":"tern-raftstore","v":2,"applied":1234}
//	{"state":{"index":..,"indexes":{..},"last_version":..,"keep":..}}
//	{"version":{..}}   kept configuration versions, oldest first, files by hash
//	{"admin":{..}}     admin overrides, by pool, member
//	{"verdict":{..}}   verdicts, by pool, member, node
//	{"load":{..}}      load reports, by pool, member, node
//	{"node":{..}}      node registry, by ID
//	{"chunk":{"hash":..,"size":N,"touched":..}} and N bytes: chunks, by hash
//	{"file":{"hash":..,"size":..,"chunks":[..],"touched":..}}: files, by hash
//	{"end":{"records":N,"applied":1234,"hash":"<sha256>"}}
//
// The lines from "state" to the last before "end", without the chunks'
// bytes, are the state's canonical form; "hash" is their SHA-256
// (State.Hash), and each chunk's bytes are checked against its own hash.
// Restore reads every record, checks order, content and hashes, and only
// then swaps the state in.
//
// Format 1, written before file content was stored apart, has no chunk
// or file records and a version's files inline (its "bundle", base64);
// it is still read, its files becoming content without an upload lease,
// as a version 1 or 2 config.apply's do (inlineConfig), so that it
// restores to the state its log replays to.
const (
	snapshotFormat  = "tern-raftstore"
	snapshotVersion = 2
	// maxSnapshotLine bounds one record's line (a version naming
	// MaxBundleFiles files is far below it).
	maxSnapshotLine = 64 << 20
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

type chunkRec struct {
	Hash    Hash   `json:"hash"`
	Size    int    `json:"size"`
	Touched uint64 `json:"touched,omitempty"`
}

type fileRec struct {
	Hash    Hash   `json:"hash"`
	Size    int64  `json:"size"`
	Chunks  []Hash `json:"chunks"`
	Touched uint64 `json:"touched,omitempty"`
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
	Chunk   *chunkRec      `json:"chunk,omitempty"`
	File    *fileRec       `json:"file,omitempty"`
	End     *endRec        `json:"end,omitempty"`
}

// recordV1 is a line of format 1, whose versions carried their files.
type recordV1 struct {
	record
	Version *versionV1 `json:"version,omitempty"`
}

type versionV1 struct {
	ConfigVersion
	Bundle Bundle `json:"bundle"`
}

// Hash returns the SHA-256 of the state's canonical form (its snapshot
// lines, chunks by their hash). Two nodes that applied the same log have
// the same hash.
func (s *State) Hash() Hash {
	h := sha256.New()
	if _, err := writeState(h, nil, s); err != nil {
		panic(fmt.Sprintf("raftstore: hash state: %v", err)) // a hash.Hash never fails to write
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

// writeState writes the canonical records of s (without header and end)
// to w, each chunk's bytes after its record to raw (nil: not at all), and
// returns how many records it wrote.
func writeState(w, raw io.Writer, s *State) (int, error) {
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
	return n, writeBlobs(s.blobs, put, raw)
}

// writeBlobs writes the chunks, each followed by its bytes on raw, then
// the files.
func writeBlobs(b blobStore, put func(record) error, raw io.Writer) error {
	for _, h := range slices.SortedFunc(maps.Keys(b.chunks), cmpHash) {
		c := b.chunks[h]
		if err := put(record{Chunk: &chunkRec{Hash: h, Size: len(c.data), Touched: c.touched}}); err != nil {
			return err
		}
		if raw != nil {
			if _, err := raw.Write(c.data); err != nil {
				return err
			}
		}
	}
	for _, h := range slices.SortedFunc(maps.Keys(b.files), cmpHash) {
		f := b.files[h]
		if err := put(record{File: &fileRec{Hash: h, Size: f.size, Chunks: f.chunks, Touched: f.touched}}); err != nil {
			return err
		}
	}
	return nil
}

func cmpHash(a, b Hash) int { return bytes.Compare(a[:], b[:]) }

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
	n, err := writeState(io.MultiWriter(bw, h), bw, s)
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
	kChunk
	kFile
	kEnd
)

func (r record) kind() (int, error) {
	k, n := -1, 0
	for i, set := range []bool{r.State != nil, r.Version != nil, r.Admin != nil, r.Verdict != nil, r.Load != nil, r.Node != nil, r.Chunk != nil, r.File != nil, r.End != nil} {
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
	sr := &snapReader{r: bufio.NewReaderSize(r, 64<<10), h: sha256.New()}
	var hdr snapHeader
	line, err := sr.line()
	if err == nil {
		err = strictUnmarshal(line, &hdr)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("header: %w", err)
	}
	if hdr.Format != snapshotFormat || hdr.V < 1 || hdr.V > snapshotVersion {
		return nil, 0, fmt.Errorf("header: format %q version %d, want %q version 1 to %d", hdr.Format, hdr.V, snapshotFormat, snapshotVersion)
	}
	sr.v = hdr.V
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
	var lastBlob Hash
	for end == nil {
		rec, legacy, err := sr.record()
		if errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("record %d: truncated (no end record)", count+1)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("record %d: %w", count+1, err)
		}
		k, err := rec.kind()
		if err == nil && (k < last || (k == kState && last == kState) || (k != kState && last == -1)) {
			err = errors.New("record out of order")
		}
		if err == nil && k != last {
			lastBlob = Hash{}
		}
		switch {
		case err != nil:
		case k == kChunk || k == kFile:
			err = s.restoreBlob(sr, rec, &lastBlob)
		case k == kVersion && legacy != nil:
			err = s.restoreVersionV1(legacy)
		default:
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
	if _, err := sr.r.ReadByte(); !errors.Is(err, io.EOF) {
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
	if h := Hash(sr.h.Sum(nil)); h != end.Hash {
		return nil, 0, fmt.Errorf("hash mismatch: content %s, recorded %s", h, end.Hash)
	}
	if err := s.checkBlobs(); err != nil {
		return nil, 0, err
	}
	// Format 1 was hashed in its own canonical form; this one must also be
	// this code's, so that the state hashes as every node's does.
	if h := s.Hash(); hdr.V == snapshotVersion && h != end.Hash {
		return nil, 0, fmt.Errorf("hash mismatch: state %s, recorded %s (not the canonical form)", h, end.Hash)
	}
	return s, hdr.Applied, nil
}

// snapReader reads a snapshot's lines, hashing all but the header and the
// end record, and the chunks' bytes between them.
type snapReader struct {
	r   *bufio.Reader
	v   int // format
	h   hash.Hash
	buf []byte
}

// line returns the next line, its newline included; io.EOF at the end.
func (sr *snapReader) line() ([]byte, error) {
	sr.buf = sr.buf[:0]
	for {
		part, err := sr.r.ReadSlice('\n')
		sr.buf = append(sr.buf, part...)
		if len(sr.buf) > maxSnapshotLine {
			return nil, fmt.Errorf("a line longer than %d bytes", maxSnapshotLine)
		}
		switch {
		case err == nil:
			return sr.buf, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(sr.buf) > 0:
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
}

// record reads and decodes the next record; legacy is a format 1
// version's record, with its files.
func (sr *snapReader) record() (rec record, legacy *versionV1, err error) {
	line, err := sr.line()
	if err != nil {
		return record{}, nil, err
	}
	if sr.v == 1 {
		var r1 recordV1
		err = strictUnmarshal(line, &r1)
		rec, legacy = r1.record, r1.Version
		if legacy != nil {
			rec.Version = &legacy.ConfigVersion
		}
	} else {
		err = strictUnmarshal(line, &rec)
	}
	if err != nil {
		return record{}, nil, err
	}
	if rec.End == nil {
		sr.h.Write(line)
	}
	return rec, legacy, nil
}

// restoreVersionV1 takes in a format 1 version: its files become content
// without upload lease, and its hash the manifest's, as when a version 1
// or 2 config.apply is replayed.
func (s *State) restoreVersionV1(v *versionV1) error {
	if v.Main != "" || v.Files != nil {
		return fmt.Errorf("version %d: files by hash in a format 1 snapshot", v.Version)
	}
	if err := v.Bundle.Validate(); err != nil {
		return fmt.Errorf("version %d: %w", v.Version, err)
	}
	if v.Bundle.Hash() != v.Hash {
		return fmt.Errorf("version %d: bundle does not match its hash", v.Version)
	}
	ac := inlineConfig(v.Bundle, Change{})
	if err := s.putBlobs(0, ac.Blobs, false); err != nil {
		return fmt.Errorf("version %d: %w", v.Version, err)
	}
	v.Manifest, v.Hash = ac.Manifest, ac.Manifest.Hash()
	return s.restoreRecord(kVersion, record{Version: &v.ConfigVersion}, nil, nil)
}

// restoreBlob takes in a chunk (reading its bytes) or a file record, in
// hash order.
func (s *State) restoreBlob(sr *snapReader, rec record, last *Hash) error {
	if sr.v == 1 {
		return errors.New("a chunk or file record in a format 1 snapshot")
	}
	b := &s.blobs
	if c := rec.Chunk; c != nil {
		if cmpHash(*last, c.Hash) >= 0 {
			return errors.New("chunk: out of order or duplicated")
		}
		*last = c.Hash
		if c.Size < 1 || c.Size > MaxChunk || b.bytes+int64(c.Size) > MaxStoredBytes {
			return fmt.Errorf("chunk %s: size %d out of range", c.Hash, c.Size)
		}
		data := make([]byte, c.Size)
		if _, err := io.ReadFull(sr.r, data); err != nil {
			return fmt.Errorf("chunk %s: %w", c.Hash, err)
		}
		if Hash(sha256.Sum256(data)) != c.Hash {
			return fmt.Errorf("chunk %s: %w", c.Hash, ErrBlobMismatch)
		}
		b.chunks[c.Hash] = storedChunk{data: data, touched: c.Touched}
		b.bytes += int64(c.Size)
		return nil
	}
	f := rec.File
	if cmpHash(*last, f.Hash) >= 0 {
		return errors.New("file: out of order or duplicated")
	}
	*last = f.Hash
	spec := FileSpec{Hash: f.Hash, Size: f.Size, Chunks: f.Chunks}
	if err := (PutBlobs{Files: []FileSpec{spec}}).validate(); err != nil {
		return fmt.Errorf("file %s: %w", f.Hash, err)
	}
	var size int64
	for _, h := range f.Chunks {
		c, ok := b.chunks[h]
		if !ok {
			return fmt.Errorf("file %s: chunk %s: %w", f.Hash, h, ErrMissingBlob)
		}
		size += int64(len(c.data))
	}
	if size != f.Size {
		return fmt.Errorf("file %s: %w: its chunks hold %d bytes, not %d", f.Hash, ErrBlobMismatch, size, f.Size)
	}
	b.files[f.Hash] = storedFile{size: f.Size, chunks: f.Chunks, touched: f.Touched}
	return nil
}

// checkBlobs checks, once all is read, that every kept version's files
// are held, and derives when a lease next runs out. (Each chunk was
// checked against its hash and each file against its chunks' sizes; the
// file's own hash is its line's, under the snapshot's.)
func (s *State) checkBlobs() error {
	for _, v := range s.versions {
		for _, p := range slices.Sorted(maps.Keys(v.Files)) {
			if !s.HasFile(v.Files[p]) {
				return fmt.Errorf("version %d: %s: file %s: %w", v.Version, p, v.Files[p], ErrMissingBlob)
			}
		}
	}
	s.blobs.due = s.blobs.leaseDue(s.namedFiles(), s.blobs.heldChunks())
	return nil
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
		if err := v.Manifest.validate(); err != nil {
			return fmt.Errorf("version %d: %w", v.Version, err)
		}
		if v.Manifest.Hash() != v.Hash {
			return fmt.Errorf("version %d: files do not match its hash", v.Version)
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

package raftstore

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/ternlb/tern/health"
)

// Snapshot format 3: JSON values, one per line, each chunk's bytes raw
// right after its line.
//
//	{"format":"tern-raftstore","v":3,"applied":1234}
//	{"state":{"index":..,"indexes":{..},"last_version":..,"keep":..}}
//	{"version":{..}}   kept configuration versions, oldest first, files by hash
//	{"admin":{..}}     admin overrides, by pool, member
//	{"obs":{..}}       observations, by pool, member, kind, node
//	{"node":{..}}      node registry, by ID
//	{"chunk":{"hash":..,"size":N,"touched":..}} and N bytes: chunks, by hash
//	{"file":{"hash":..,"size":..,"chunks":[..],"touched":..}}: files, by hash
//	{"end":{"records":N,"applied":1234,"hash":"<sha256>"}}
//
// The lines from "state" to the last before "end", without the chunks'
// bytes, are the state's canonical form; "hash" is their SHA-256
// (State.Hash), and each chunk's bytes are checked against its own hash.
// Restore reads every record, checks order, content and hashes, and only
// then swaps the state in. The indexes' "health" is the observations'
// index and "load" is 0, so that a state without observations keeps the
// hash it had.
//
// Older formats still restore, their hash checked over the lines as
// written (the state they make no longer writes them):
//
//   - Format 1 has versions with their files inline (a "bundle", base64)
//     and "verdict" ({pool, member, node, up, at}) then "load" ({pool,
//     member, node, load, capacity, at}) records, each by pool, member,
//     node, where format 3 has "obs"; a non-zero "load" index.
//   - Format 2 was written by two lines of development, each with one of
//     format 3's changes: one has versions by hash and chunk and file
//     records, with format 1's verdict and load records and load index;
//     the other has format 1's inline versions and "obs" records. Their
//     headers are alike, so a format 2 snapshot is told by the record
//     kinds it holds (see formatKinds): one holding kinds of both is
//     corrupt, and one holding neither's own (no versions, observations
//     or content) restores to the same state read as either.
//
// Inline files become content without an upload lease, as a version 1 or
// 2 config.apply's do (inlineConfig), verdicts observations of kind
// health and load reports of kind load (capacity dropped), so that an old
// snapshot restores to the state its log replays to.
const (
	snapshotFormat  = "tern-raftstore"
	snapshotVersion = 3
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
	Verdict *verdictRec    `json:"verdict,omitempty"` // format 1
	Load    *loadRec       `json:"load,omitempty"`    // format 1
	Obs     *obsRec        `json:"obs,omitempty"`
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
	if errors.Is(err, ErrNewerFormat) {
		return nil, 0, err // not corrupt: this node is too old for it
	}
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
	kChunk
	kFile
	kEnd
)

func (r record) kind() (int, error) {
	k, n := -1, 0
	for i, set := range []bool{r.State != nil, r.Version != nil, r.Admin != nil, r.Verdict != nil, r.Load != nil, r.Obs != nil, r.Node != nil, r.Chunk != nil, r.File != nil, r.End != nil} {
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
	if hdr.Format == snapshotFormat && hdr.V > snapshotVersion {
		return nil, 0, fmt.Errorf("header: %w", newerFormat("snapshot", hdr.V, snapshotVersion))
	}
	if hdr.Format != snapshotFormat || hdr.V < 1 {
		return nil, 0, fmt.Errorf("header: format %q version %d, want %q version 1 to %d", hdr.Format, hdr.V, snapshotFormat, snapshotVersion)
	}
	sr.v = hdr.V
	rs := restorer{s: emptyState(), format: hdr.V}
	rs.s.obs = rs.s.obs.edit()
	last, count := -1, 0
	var end *endRec
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
			err = rs.blob(sr, rec, &lastBlob)
		case k == kVersion && legacy != nil:
			err = rs.versionV1(legacy)
		case k == kVersion:
			if err = rs.holds(kindByHash, "version naming its files by hash"); err == nil {
				err = rs.record(k, rec)
			}
		default:
			err = rs.record(k, rec)
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
	s := rs.s
	s.obs = s.obs.done()
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
	// Older formats were hashed in their own canonical form; this one must
	// also be this code's, so that the state hashes as every node's does.
	if h := s.Hash(); hdr.V == snapshotVersion && h != end.Hash {
		return nil, 0, fmt.Errorf("hash mismatch: state %s, recorded %s (not the canonical form)", h, end.Hash)
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
	kinds    recordKinds // of the records read so far
}

// recordKinds are the kinds of record that tell snapshot formats apart.
type recordKinds uint8

const (
	kindInline   recordKinds = 1 << iota // versions with their files inline
	kindByHash                           // versions naming their files by hash
	kindBlobs                            // chunk and file records
	kindVerdicts                         // verdict and load records, a non-zero load index
	kindObs                              // obs records
)

// formatKinds returns the sets of record kinds a snapshot of format v may
// hold: two for format 2, written by two lines of development (see the
// format).
func formatKinds(v int) []recordKinds {
	switch v {
	case 1:
		return []recordKinds{kindInline | kindVerdicts}
	case 2:
		return []recordKinds{kindByHash | kindBlobs | kindVerdicts, kindInline | kindObs}
	}
	return []recordKinds{kindByHash | kindBlobs | kindObs}
}

// holds records that the snapshot holds a record of kind k (what names
// it), an error if no set of its format has k with all kinds seen before.
func (rs *restorer) holds(k recordKinds, what string) error {
	rs.kinds |= k
	for _, set := range formatKinds(rs.format) {
		if rs.kinds&^set == 0 {
			return nil
		}
	}
	for _, set := range formatKinds(rs.format) {
		if k&^set == 0 { // k fits the format, not with what came before
			return fmt.Errorf("a %s in a format %d snapshot with records of the other format %d", what, rs.format, rs.format)
		}
	}
	return fmt.Errorf("a %s in a format %d snapshot", what, rs.format)
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

// record reads and decodes the next record; legacy is a version's record
// with its files inline (formats 1 and 2), else nil.
func (sr *snapReader) record() (rec record, legacy *versionV1, err error) {
	line, err := sr.line()
	if err != nil {
		return record{}, nil, err
	}
	if sr.v < snapshotVersion {
		var r1 recordV1
		err = strictUnmarshal(line, &r1)
		rec, legacy = r1.record, r1.Version
		if legacy != nil {
			rec.Version = &legacy.ConfigVersion
			if legacy.Main != "" || legacy.Files != nil {
				legacy = nil // by hash (a format 2's, see formatKinds)
			}
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

// versionV1 takes in a version with its files inline: they become
// content without upload lease, and its hash the manifest's, as when a
// version 1 or 2 config.apply is replayed.
func (rs *restorer) versionV1(v *versionV1) error {
	s := rs.s
	if err := rs.holds(kindInline, "version with its files inline"); err != nil {
		return err
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
	return rs.record(kVersion, record{Version: &v.ConfigVersion})
}

// blob takes in a chunk (reading its bytes) or a file record, in hash
// order.
func (rs *restorer) blob(sr *snapReader, rec record, last *Hash) error {
	what := "file record"
	if rec.Chunk != nil {
		what = "chunk record"
	}
	if err := rs.holds(kindBlobs, what); err != nil {
		return err
	}
	b := &rs.s.blobs
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
		if r.Indexes.Load != 0 {
			if err := rs.holds(kindVerdicts, "non-zero load index"); err != nil {
				return fmt.Errorf("state: indexes: %w", err)
			}
		}
		s.index, s.indexes, s.lastVersion, s.keep, s.zones = r.Index, r.Indexes.indexes(), r.LastVersion, r.Keep, r.Zones
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
		if st, err := ParseAdminState(string(a.State)); err != nil || st != a.State || st == AdminAuto {
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
		if err := RegisterNode(n).validate(); err != nil {
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

// observation reads an observation record: obs (format 3 and one format
// 2), verdict or load (format 1 and the other format 2).
func (rs *restorer) observation(k int, rec record) (obsRec, error) {
	kind := kindVerdicts
	if k == kObs {
		kind = kindObs
	}
	if err := rs.holds(kind, [...]string{kVerdict: "verdict", kLoad: "load", kObs: "obs"}[k]+" record"); err != nil {
		return obsRec{}, err
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

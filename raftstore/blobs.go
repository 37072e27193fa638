package raftstore

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"sync"
	"testing/fstest"
	"time"
)

// File content is stored once, by content: a configuration version names
// its files by SHA-256 (Manifest), a file is the list of the chunks it is
// made of, and a chunk is bytes named by their SHA-256. Chunks are cut
// where the content says (see cutChunk), not at fixed offsets, so a file
// edited in one place shares all but a chunk or two with the one before:
// keeping old versions, and uploading a new one, costs what differs.
//
// What the state holds it keeps while a kept version names it (a file),
// while a held file names it (a chunk), or for UploadLifetime log entries
// after the last command that uploaded it, so that an upload in progress
// (chunks not yet named by a file, a file not yet named by a version) is
// kept and an abandoned one is not. The FSM drops everything else as it
// applies the first command at or after the index where it falls out
// (sweep): by log index, never by a clock, so every node drops the same
// content at the same entry.

// Limits on file content. MaxConfigSize bounds what every node compiles
// and holds in memory for one version; MaxStoredBytes what it holds for
// all kept versions and uploads in progress together.
const (
	MaxChunk       = 8 << 20 // bytes of one chunk
	MaxPutBytes    = 8 << 20 // chunk bytes carried by one command
	MaxFileSize    = 1 << 30 // bytes of one file
	MaxConfigSize  = 1 << 30 // bytes of all files of one version
	MaxStoredBytes = 2 << 30 // bytes of all chunks held
	maxFileChunks  = 1 << 16 // chunks of one file
	// UploadLifetime is how many log entries uploaded content nothing
	// names yet is kept after the last command that uploaded it.
	UploadLifetime = 10000
)

// How State.Upload cuts files (not part of the log's format: any cut is
// valid, these only decide how much two versions share) and batches them.
const (
	chunkMin  = 64 << 10
	chunkMax  = 1 << 20
	chunkBits = 18 // a cut where the gear hash's top 18 bits are 0: about every 256 KiB past chunkMin
	putBatch  = 1 << 20
)

// PutBlobs uploads file content: chunks, then files made of chunks held
// (these or earlier ones). A chunk or file already held is kept and its
// upload lease renewed. A chunk whose bytes do not hash to its name is
// malformed; a file whose chunks are not all held, or do not add up to its
// size and hash, is refused (ErrMissingBlob, ErrBlobMismatch) and the
// whole command changes nothing.
type PutBlobs struct {
	Chunks []Chunk    `json:"chunks,omitempty"`
	Files  []FileSpec `json:"files,omitempty"`
}

// Chunk is a piece of file content and its SHA-256.
type Chunk struct {
	Hash Hash   `json:"hash"`
	Data []byte `json:"data"`
}

// FileSpec is a file: its content's SHA-256 and size, and the chunks it is
// made of, in order.
type FileSpec struct {
	Hash   Hash   `json:"hash"`
	Size   int64  `json:"size"`
	Chunks []Hash `json:"chunks"`
}

func (PutBlobs) Type() string { return TypePutBlobs }

func (p PutBlobs) empty() bool { return len(p.Chunks) == 0 && len(p.Files) == 0 }

func (p PutBlobs) validate() error {
	if p.empty() {
		return errors.New("no chunks and no files")
	}
	total := 0
	for i, c := range p.Chunks {
		if len(c.Data) == 0 || len(c.Data) > MaxChunk {
			return fmt.Errorf("chunks[%d]: %d bytes: want 1 to %d", i, len(c.Data), MaxChunk)
		}
		total += len(c.Data)
		if h := Hash(sha256.Sum256(c.Data)); h != c.Hash {
			return fmt.Errorf("chunks[%d]: %w: its bytes hash to %s, not %s", i, ErrBlobMismatch, h, c.Hash)
		}
	}
	if total > MaxPutBytes {
		return fmt.Errorf("chunks: %d bytes, more than %d", total, MaxPutBytes)
	}
	for i, f := range p.Files {
		switch {
		case f.Size < 0 || f.Size > MaxFileSize:
			return fmt.Errorf("files[%d]: size %d: want 0 to %d", i, f.Size, MaxFileSize)
		case len(f.Chunks) > maxFileChunks:
			return fmt.Errorf("files[%d]: %d chunks, more than %d", i, len(f.Chunks), maxFileChunks)
		case (f.Size == 0) != (len(f.Chunks) == 0):
			return fmt.Errorf("files[%d]: size %d in %d chunks", i, f.Size, len(f.Chunks))
		}
	}
	return nil
}

// blobStore is the content the state holds. Its maps are shared between
// states and never written once published: put and sweep copy them first.
type blobStore struct {
	chunks map[Hash]storedChunk
	files  map[Hash]storedFile
	bytes  int64 // of all chunks
	// due is the first index at which something held only by its upload
	// lease falls out (0: nothing is): a function of the rest and of the
	// kept versions, recomputed by every sweep.
	due uint64
}

// storedChunk and storedFile carry touched, the index of the last command
// that uploaded them (0: none, content that came inside the version that
// names it, which has no lease).
type storedChunk struct {
	data    []byte
	touched uint64
}

type storedFile struct {
	size    int64
	chunks  []Hash
	touched uint64
}

func leased(touched, index uint64) bool {
	return touched > 0 && index < touched+UploadLifetime
}

// putBlobs stores p's chunks and files. With lease, what it stores (or
// finds held) is touched at index; without (content inside a version),
// what it stores has no lease of its own.
func (s *State) putBlobs(index uint64, p PutBlobs, lease bool) error {
	touched := uint64(0)
	if lease {
		touched = index
	}
	b := s.blobs
	ownChunks, ownFiles := false, false
	for _, c := range p.Chunks {
		old, ok := b.chunks[c.Hash]
		if ok && (!lease || old.touched == touched) {
			continue
		}
		if !ownChunks {
			b.chunks, ownChunks = copyMap(b.chunks), true
		}
		if ok {
			old.touched = touched
			b.chunks[c.Hash] = old
			continue
		}
		if b.bytes+int64(len(c.Data)) > MaxStoredBytes {
			return fmt.Errorf("%w: %d bytes held, a chunk of %d more would pass %d", ErrBlobSpace, b.bytes, len(c.Data), MaxStoredBytes)
		}
		b.bytes += int64(len(c.Data))
		b.chunks[c.Hash] = storedChunk{data: c.Data, touched: touched}
	}
	for i, f := range p.Files {
		old, ok := b.files[f.Hash]
		if ok && (!lease || old.touched == touched) {
			continue
		}
		if !ok {
			if err := checkFile(b.chunks, f); err != nil {
				return fmt.Errorf("files[%d] %s: %w", i, f.Hash, err)
			}
			old = storedFile{size: f.Size, chunks: slices.Clone(f.Chunks)}
		}
		if !ownFiles {
			b.files, ownFiles = copyMap(b.files), true
		}
		old.touched = touched
		b.files[f.Hash] = old
	}
	s.blobs = b
	return nil
}

// checkFile verifies that chunks hold all of f's chunks and that they add
// up to its size and hash.
func checkFile(chunks map[Hash]storedChunk, f FileSpec) error {
	h := sha256.New()
	var size int64
	for j, ch := range f.Chunks {
		c, ok := chunks[ch]
		if !ok {
			return fmt.Errorf("%w: chunk %d (%s)", ErrMissingBlob, j, ch)
		}
		size += int64(len(c.data))
		h.Write(c.data)
	}
	if size != f.Size {
		return fmt.Errorf("%w: its chunks hold %d bytes, not %d", ErrBlobMismatch, size, f.Size)
	}
	if got := Hash(h.Sum(nil)); got != f.Hash {
		return fmt.Errorf("%w: its chunks hash to %s", ErrBlobMismatch, got)
	}
	return nil
}

// sweep drops, at index, the files no kept version names and the chunks
// no held file names whose upload lease has run out, and recomputes due.
// It reports whether it dropped anything.
func (s *State) sweep(index uint64) bool {
	b := s.blobs
	named := s.namedFiles()
	dropped := false
	for h, f := range b.files {
		if !named[h] && !leased(f.touched, index) {
			if !dropped {
				b.files, dropped = copyMap(b.files), true
			}
			delete(b.files, h) // the same whatever order the map is walked in
		}
	}
	held := b.heldChunks()
	copied := false
	for h, c := range b.chunks {
		if !held[h] && !leased(c.touched, index) {
			if !copied {
				b.chunks, copied = copyMap(b.chunks), true
			}
			delete(b.chunks, h)
			b.bytes -= int64(len(c.data))
		}
	}
	b.due = b.leaseDue(named, held)
	s.blobs = b
	return dropped || copied
}

// namedFiles is the set of files the kept versions name.
func (s *State) namedFiles() map[Hash]bool {
	named := map[Hash]bool{}
	for _, v := range s.versions {
		for _, h := range v.Files {
			named[h] = true
		}
	}
	return named
}

// heldChunks is the set of chunks the held files name.
func (b blobStore) heldChunks() map[Hash]bool {
	held := map[Hash]bool{}
	for _, f := range b.files {
		for _, c := range f.chunks {
			held[c] = true
		}
	}
	return held
}

// leaseDue is the first index at which content kept by its lease alone
// (a file not named, a chunk not held) falls out; 0 when there is none.
func (b blobStore) leaseDue(named, held map[Hash]bool) uint64 {
	due := uint64(0)
	at := func(touched uint64) {
		if touched > 0 && (due == 0 || touched+UploadLifetime < due) {
			due = touched + UploadLifetime
		}
	}
	for h, f := range b.files {
		if !named[h] {
			at(f.touched)
		}
	}
	for h, c := range b.chunks {
		if !held[h] {
			at(c.touched)
		}
	}
	return due
}

// expire returns s as it is after the sweep due at index, or s itself
// when none is due. The FSM runs it before every command, accepted or
// not, so that content falls out at the same entry on every node.
func (s *State) expire(index uint64) *State {
	if s.blobs.due == 0 || index < s.blobs.due {
		return s
	}
	n := s.clone()
	if n.sweep(index) {
		n.index = index
	}
	return n
}

// HasFile reports whether s holds the file whose content hashes to h,
// whole and verified.
func (s *State) HasFile(h Hash) bool {
	_, ok := s.blobs.files[h]
	return ok
}

// HasChunk reports whether s holds the chunk whose content hashes to h.
func (s *State) HasChunk(h Hash) bool {
	_, ok := s.blobs.chunks[h]
	return ok
}

// BlobStats is how much file content a state holds.
type BlobStats struct {
	Files  int   `json:"files"`
	Chunks int   `json:"chunks"`
	Bytes  int64 `json:"bytes"` // of all chunks, each counted once
}

// Blobs tells how much file content s holds.
func (s *State) Blobs() BlobStats {
	return BlobStats{Files: len(s.blobs.files), Chunks: len(s.blobs.chunks), Bytes: s.blobs.bytes}
}

// ReadFile returns the content of the file whose hash is h, put together
// from its chunks (a new slice the caller may keep; a one-chunk file's is
// shared: do not modify it).
func (s *State) ReadFile(h Hash) ([]byte, error) {
	f, ok := s.blobs.files[h]
	if !ok {
		return nil, fmt.Errorf("file %s: %w", h, ErrMissingBlob)
	}
	if len(f.chunks) == 1 {
		return s.blobs.chunks[f.chunks[0]].data, nil
	}
	out := make([]byte, 0, f.size)
	for _, c := range f.chunks {
		out = append(out, s.blobs.chunks[c].data...)
	}
	return out, nil
}

// Bundle returns the files m names, as s holds them. Every kept version's
// files are held; another manifest's may not be (ErrMissingBlob).
func (s *State) Bundle(m Manifest) (Bundle, error) {
	b := Bundle{Main: m.Main, Files: make(map[string][]byte, len(m.Files))}
	for _, p := range slices.Sorted(maps.Keys(m.Files)) {
		data, err := s.ReadFile(m.Files[p])
		if err != nil {
			return Bundle{}, fmt.Errorf("%s: %w", p, err)
		}
		b.Files[p] = data
	}
	return b, nil
}

// FS returns the files m names as a read-only file system over s: a file
// is put together from its chunks when it is read, and FileHash names its
// content without reading it. It fails as Bundle does.
func (s *State) FS(m Manifest) (*ManifestFS, error) {
	for _, p := range slices.Sorted(maps.Keys(m.Files)) {
		if !s.HasFile(m.Files[p]) {
			return nil, fmt.Errorf("%s: file %s: %w", p, m.Files[p], ErrMissingBlob)
		}
	}
	return &ManifestFS{m: m, s: s}, nil
}

// ManifestFS is a configuration's files as a state holds them (see
// State.FS). It holds no directories: Open names files only.
type ManifestFS struct {
	m Manifest
	s *State
}

// FileHash returns the SHA-256 of the file at name.
func (f *ManifestFS) FileHash(name string) (Hash, error) {
	h, ok := f.m.Files[name]
	if !ok {
		return Hash{}, &fs.PathError{Op: "hash", Path: name, Err: fs.ErrNotExist}
	}
	return h, nil
}

// ReadFile returns a copy of the file at name.
func (f *ManifestFS) ReadFile(name string) ([]byte, error) {
	h, ok := f.m.Files[name]
	if !ok {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}
	data, err := f.s.ReadFile(h)
	if err != nil {
		return nil, &fs.PathError{Op: "read", Path: name, Err: err}
	}
	return bytes.Clone(data), nil
}

// Open opens the file at name.
func (f *ManifestFS) Open(name string) (fs.File, error) {
	data, err := f.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return &memFile{Reader: bytes.NewReader(data), name: name, size: int64(len(data))}, nil
}

type memFile struct {
	*bytes.Reader
	name string
	size int64
}

func (m *memFile) Stat() (fs.FileInfo, error) { return m, nil }
func (m *memFile) Close() error               { return nil }
func (m *memFile) Name() string               { return path.Base(m.name) }
func (m *memFile) Size() int64                { return m.size }
func (m *memFile) Mode() fs.FileMode          { return 0o444 }
func (m *memFile) ModTime() time.Time         { return time.Time{} }
func (m *memFile) IsDir() bool                { return false }
func (m *memFile) Sys() any                   { return nil }

// bundleFS is Bundle.FS: the files in memory, each file's hash computed
// the first time it is asked for.
type bundleFS struct {
	fstest.MapFS
	mu     sync.Mutex
	hashes map[string]Hash
}

// FileHash returns the SHA-256 of the file at name.
func (b *bundleFS) FileHash(name string) (Hash, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h, ok := b.hashes[name]; ok {
		return h, nil
	}
	f, ok := b.MapFS[name]
	if !ok {
		return Hash{}, &fs.PathError{Op: "hash", Path: name, Err: fs.ErrNotExist}
	}
	h := Hash(sha256.Sum256(f.Data))
	b.hashes[name] = h
	return h, nil
}

// Upload plans how to propose bundle b as a configuration change on top
// of s: the PutBlobs commands to propose first, in order, with what s
// lacks of b's files cut into chunks, and the ApplyConfig naming b's
// files, which carries the last batch itself (the main file last, so
// that it travels inside the version when it changed). Only what s does
// not hold is carried: a change to one small file beside a big one is one
// small command. On the empty state it plans the whole bundle.
func (s *State) Upload(b Bundle, ch Change) ([]PutBlobs, ApplyConfig) {
	m := b.Manifest()
	var (
		puts    []PutBlobs
		cur     PutBlobs
		curSize int
		planned = map[Hash]bool{} // files
		sent    = map[Hash]bool{} // chunks
		gear    = gearTable()
	)
	paths := slices.Sorted(maps.Keys(b.Files))
	slices.SortStableFunc(paths, func(x, y string) int { return cmp.Compare(boolInt(x == b.Main), boolInt(y == b.Main)) })
	for _, p := range paths {
		fh := m.Files[p]
		if s.HasFile(fh) || planned[fh] {
			continue
		}
		planned[fh] = true
		data := b.Files[p]
		spec := FileSpec{Hash: fh, Size: int64(len(data))}
		for len(data) > 0 {
			n := cutChunk(data, &gear)
			piece := data[:n]
			data = data[n:]
			h := Hash(sha256.Sum256(piece))
			spec.Chunks = append(spec.Chunks, h)
			if s.HasChunk(h) || sent[h] {
				continue
			}
			sent[h] = true
			if curSize > 0 && curSize+len(piece) > putBatch {
				puts = append(puts, cur)
				cur, curSize = PutBlobs{}, 0
			}
			cur.Chunks = append(cur.Chunks, Chunk{Hash: h, Data: piece})
			curSize += len(piece)
		}
		cur.Files = append(cur.Files, spec)
	}
	return puts, ApplyConfig{Manifest: m, Blobs: cur, Change: ch}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// gearTable is the gear hash's value of each byte (splitmix64 of the
// byte): fixed, so every node cuts the same file the same way.
func gearTable() [256]uint64 {
	var g [256]uint64
	for i := range g {
		z := uint64(i) + 0x9e3779b97f4a7c15
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		g[i] = z ^ z>>31
	}
	return g
}

// cutChunk returns the length of data's first chunk: content-defined (a
// gear hash over the last 64 bytes, FastCDC's), between chunkMin and
// chunkMax bytes, so that an insertion or deletion moves the cut points
// near it only.
func cutChunk(data []byte, gear *[256]uint64) int {
	if len(data) <= chunkMin {
		return len(data)
	}
	end := min(len(data), chunkMax)
	var h uint64
	for i := chunkMin - 64; i < end; i++ {
		h = h<<1 + gear[data[i]]
		if i >= chunkMin && h>>(64-chunkBits) == 0 {
			return i + 1
		}
	}
	return end
}

// inlineConfig is an ApplyConfig carrying all of b, each file one chunk:
// what a version 1 or 2 config.apply (whose bundle was inline) means now.
// It is fixed, so that an old log replays to the very state an old
// snapshot restores to.
func inlineConfig(b Bundle, ch Change) ApplyConfig {
	m := Manifest{Main: b.Main, Files: make(map[string]Hash, len(b.Files))}
	var blobs PutBlobs
	seen := map[Hash]bool{}
	for _, p := range slices.Sorted(maps.Keys(b.Files)) {
		data := b.Files[p]
		h := Hash(sha256.Sum256(data))
		m.Files[p] = h
		if seen[h] {
			continue
		}
		seen[h] = true
		spec := FileSpec{Hash: h, Size: int64(len(data))}
		if len(data) > 0 {
			blobs.Chunks = append(blobs.Chunks, Chunk{Hash: h, Data: data})
			spec.Chunks = []Hash{h}
		}
		blobs.Files = append(blobs.Files, spec)
	}
	return ApplyConfig{Manifest: m, Blobs: blobs, Change: ch}
}

// Content returns the content of c's file at path, from the chunks c
// carries or s holds (the leader checking a forwarded change); carried
// tells whether c carries all of it.
func (c ApplyConfig) Content(path string, s *State) (data []byte, carried bool, err error) {
	h, ok := c.Files[path]
	if !ok {
		return nil, false, fmt.Errorf("%s: not a file of this change", path)
	}
	var spec *FileSpec
	for i := range c.Blobs.Files {
		if c.Blobs.Files[i].Hash == h {
			spec = &c.Blobs.Files[i]
		}
	}
	if spec == nil {
		data, err := s.ReadFile(h)
		return data, false, err
	}
	inline := map[Hash][]byte{}
	for _, ch := range c.Blobs.Chunks {
		inline[ch.Hash] = ch.Data
	}
	carried = true
	for _, ch := range spec.Chunks {
		piece, ok := inline[ch]
		if !ok {
			carried = false
			sc, held := s.blobs.chunks[ch]
			if !held {
				return nil, false, fmt.Errorf("%s: chunk %s: %w", path, ch, ErrMissingBlob)
			}
			piece = sc.data
		}
		data = append(data, piece...)
	}
	return data, carried, nil
}

// WithContent returns c with the file at path replaced by data, carried
// inside it as one chunk; what c carried of the replaced file and no
// other is dropped.
func (c ApplyConfig) WithContent(path string, data []byte) ApplyConfig {
	old := c.Files[path]
	h := Hash(sha256.Sum256(data))
	c.Manifest = Manifest{Main: c.Main, Files: maps.Clone(c.Files)}
	c.Files[path] = h
	stillNamed := false
	for _, fh := range c.Files {
		stillNamed = stillNamed || fh == old
	}
	var blobs PutBlobs
	keep := map[Hash]bool{}
	for _, f := range c.Blobs.Files {
		if (f.Hash == old && !stillNamed) || f.Hash == h {
			continue
		}
		blobs.Files = append(blobs.Files, f)
		for _, ch := range f.Chunks {
			keep[ch] = true
		}
	}
	spec := FileSpec{Hash: h, Size: int64(len(data))}
	if len(data) > 0 {
		spec.Chunks = []Hash{h}
		keep[h] = true
	}
	blobs.Files = append(blobs.Files, spec)
	for _, ch := range c.Blobs.Chunks {
		if keep[ch.Hash] && ch.Hash != h {
			blobs.Chunks = append(blobs.Chunks, ch)
		}
	}
	if len(data) > 0 {
		blobs.Chunks = append(blobs.Chunks, Chunk{Hash: h, Data: data})
	}
	c.Blobs = blobs
	return c
}

package raftstore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"testing/fstest"

	"github.com/ternlb/tern/config"
)

// Bundle is a whole desired configuration in memory: the YAML file and
// every file it names (zone files), by their paths in an fs.FS. It is what
// `tern apply` sends and what a node compiles; in the Raft log and the
// state it is a Manifest, its files stored once each by content (see
// PutBlobs and State.Upload).
type Bundle struct {
	// Main is the path of the YAML file in Files.
	Main string `json:"main"`
	// Files holds each file's content by its fs.FS path (slash-separated,
	// no leading slash). A Bundle read from a State shares its bytes: do
	// not modify them.
	Files map[string][]byte `json:"files"`
}

// Hash is a SHA-256: of a file's or a chunk's content, of a Manifest, of
// the state.
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText writes the hash in hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads a hash in hex.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 2*len(h) {
		return fmt.Errorf("hash: want %d hex digits, got %d", 2*len(h), len(b))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// Hash returns the SHA-256 of the bundle's canonical form: the main path,
// then every file in path order, each as its path, a 0 byte, its length as
// a big-endian uint64 and its content. It was a configuration version's
// hash before versions named their files by content (see Manifest.Hash);
// snapshots of that time are checked with it.
func (b Bundle) Hash() Hash {
	h := sha256.New()
	var n [8]byte
	write := func(p []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write(p)
	}
	write([]byte(b.Main))
	for _, p := range slices.Sorted(maps.Keys(b.Files)) {
		h.Write([]byte(p))
		h.Write([]byte{0})
		write(b.Files[p])
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

// Size is the bundle's total content size in bytes.
func (b Bundle) Size() int {
	n := 0
	for _, f := range b.Files {
		n += len(f)
	}
	return n
}

// Validate checks the bundle's shape (not the configuration inside it: that
// is the proposer's job, see Load).
func (b Bundle) Validate() error {
	if b.Main == "" {
		return errors.New("bundle: main file missing")
	}
	if len(b.Files) > MaxBundleFiles {
		return fmt.Errorf("bundle: %d files, more than %d", len(b.Files), MaxBundleFiles)
	}
	if _, ok := b.Files[b.Main]; !ok {
		return fmt.Errorf("bundle: main file %q is not among its files", b.Main)
	}
	for _, p := range slices.Sorted(maps.Keys(b.Files)) {
		if !fs.ValidPath(p) || p == "." {
			return fmt.Errorf("bundle: file path %q is not a valid fs.FS path", p)
		}
	}
	if n := b.Size(); n > MaxConfigSize {
		return fmt.Errorf("bundle: %d bytes, more than %d", n, MaxConfigSize)
	}
	return nil
}

// Manifest returns the bundle's files named by the SHA-256 of their
// content.
func (b Bundle) Manifest() Manifest {
	m := Manifest{Main: b.Main, Files: make(map[string]Hash, len(b.Files))}
	for p, data := range b.Files {
		m.Files[p] = sha256.Sum256(data)
	}
	return m
}

// Manifest is a configuration as the state keeps it: its files by path,
// each named by the SHA-256 of its content, which the state holds once
// however many versions name it.
type Manifest struct {
	// Main is the path of the YAML file among Files.
	Main  string          `json:"main"`
	Files map[string]Hash `json:"files"`
}

// Hash is a configuration version's hash: the SHA-256 of the main path,
// then every path in order with a 0 byte and its file's SHA-256. Two
// versions with the same files under the same paths have the same hash.
func (m Manifest) Hash() Hash {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(m.Main)))
	h.Write(n[:])
	h.Write([]byte(m.Main))
	for _, p := range slices.Sorted(maps.Keys(m.Files)) {
		fh := m.Files[p]
		h.Write([]byte(p))
		h.Write([]byte{0})
		h.Write(fh[:])
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

func (m Manifest) validate() error {
	if m.Main == "" {
		return errors.New("main file missing")
	}
	if len(m.Files) > MaxBundleFiles {
		return fmt.Errorf("%d files, more than %d", len(m.Files), MaxBundleFiles)
	}
	if _, ok := m.Files[m.Main]; !ok {
		return fmt.Errorf("main file %q is not among its files", m.Main)
	}
	for p := range m.Files {
		if !fs.ValidPath(p) || p == "." {
			return fmt.Errorf("file path %q is not a valid fs.FS path", p)
		}
	}
	return nil
}

// FS returns the bundle as a read-only file system, for config.LoadFS and
// the zone parser. Its FileHash method names a file's SHA-256.
func (b Bundle) FS() fs.FS {
	m := make(fstest.MapFS, len(b.Files))
	for p, data := range b.Files {
		m[p] = &fstest.MapFile{Data: data, Mode: 0o444}
	}
	return &bundleFS{MapFS: m, hashes: map[string]Hash{}}
}

// Load decodes and validates the bundle's configuration (config.LoadFS on
// the bundle's FS), naming it display in messages. Zone files are in
// c.FS for the zones package to parse.
func (b Bundle) Load(display string) (*config.Config, error) {
	return config.LoadFS(b.FS(), b.Main, display)
}

// BundleFrom collects the configuration c was loaded from: its YAML file
// and every zone file it names, read from c.FS. The paths are the ones c
// resolves, so Load on the bundle finds the same files.
func BundleFrom(c *config.Config) (Bundle, error) {
	b := Bundle{Main: c.File, Files: make(map[string][]byte)}
	data, err := fs.ReadFile(c.FS, c.File)
	if err != nil {
		return Bundle{}, fmt.Errorf("bundle: read %q: %w", c.Name, err)
	}
	b.Files[c.File] = data
	for _, z := range c.Zones {
		p := c.Resolve(z.File)
		if _, ok := b.Files[p]; ok {
			continue
		}
		data, err := fs.ReadFile(c.FS, p)
		if err != nil {
			return Bundle{}, fmt.Errorf("bundle: read zone file %q: %w", c.DisplayPath(z.File), err)
		}
		b.Files[p] = data
	}
	if err := b.Validate(); err != nil {
		return Bundle{}, err
	}
	return b, nil
}

package raftstore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

// zoneText is a zone file of n A records, about 26 bytes each.
func zoneText(origin string, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "$ORIGIN %s\n@ 300 IN SOA ns1 hostmaster 1 3600 600 604800 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.53\n", origin)
	for i := range n {
		fmt.Fprintf(&b, "h%d 300 IN A 10.%d.%d.%d\n", i, i>>16&255, i>>8&255, i&255)
	}
	return b.Bytes()
}

// refused applies b at index and returns the error it is refused with.
func refused(t *testing.T, f *FSM, index uint64, b Body) error {
	t.Helper()
	err, _ := applyLog(f, index, enc(t, b)).(error)
	if err == nil {
		t.Fatalf("apply %d %s: accepted", index, b.Type())
	}
	return err
}

// split cuts data the way Upload does, as the chunks and file of a
// manual upload.
func split(data []byte) ([]Chunk, FileSpec) {
	g := gearTable()
	spec := FileSpec{Hash: sha(data), Size: int64(len(data))}
	var cs []Chunk
	for rest := data; len(rest) > 0; {
		n := cutChunk(rest, &g)
		cs = append(cs, Chunk{Hash: sha(rest[:n]), Data: rest[:n]})
		spec.Chunks = append(spec.Chunks, sha(rest[:n]))
		rest = rest[n:]
	}
	return cs, spec
}

// A file arrives in pieces in any order and more than once; the version
// naming it is refused until it is held whole, and content that does not
// hash to its name is refused at every step.
func TestChunkUpload(t *testing.T) {
	big := zoneText("big.test.", 40000) // ~1 MB: several chunks
	chunks, spec := split(big)
	if len(chunks) < 3 {
		t.Fatalf("%d chunks, want several", len(chunks))
	}
	yaml := []byte("zones: [{file: big.zone}]\n")
	b := Bundle{Main: "tern.yaml", Files: map[string][]byte{"tern.yaml": yaml, "big.zone": big}}
	version := ApplyConfig{Manifest: b.Manifest(), Change: Change{At: t0}}
	version.Blobs = PutBlobs{Chunks: []Chunk{{sha(yaml), yaml}}, Files: []FileSpec{{sha(yaml), int64(len(yaml)), []Hash{sha(yaml)}}}}

	f := NewFSM()
	idx := uint64(0)
	next := func() uint64 { idx++; return idx }
	if err := refused(t, f, next(), version); !errors.Is(err, ErrMissingBlob) || !strings.Contains(err.Error(), "big.zone") {
		t.Fatalf("a version naming a file never uploaded: %v", err)
	}
	// The file before its chunks: refused, nothing kept.
	if err := refused(t, f, next(), PutBlobs{Files: []FileSpec{spec}}); !errors.Is(err, ErrMissingBlob) {
		t.Fatalf("a file before its chunks: %v", err)
	}
	// Chunks last to first, the last twice.
	for i := len(chunks) - 1; i >= 0; i-- {
		mustApply(t, f, next(), PutBlobs{Chunks: []Chunk{chunks[i]}})
	}
	held := f.State().Blobs()
	mustApply(t, f, next(), PutBlobs{Chunks: []Chunk{chunks[len(chunks)-1]}})
	if got := f.State().Blobs(); got != held || got.Chunks != len(chunks) || got.Bytes != int64(len(big)) || got.Files != 0 {
		t.Fatalf("after a duplicate chunk: %+v, before %+v", got, held)
	}
	// A file whose chunks are held but whose size or hash is another's.
	wrongSize := spec
	wrongSize.Size++
	if err := refused(t, f, next(), PutBlobs{Files: []FileSpec{wrongSize}}); !errors.Is(err, ErrBlobMismatch) {
		t.Fatalf("a file of the wrong size: %v", err)
	}
	wrongHash := spec
	wrongHash.Hash[0] ^= 1
	if err := refused(t, f, next(), PutBlobs{Files: []FileSpec{wrongHash}}); !errors.Is(err, ErrBlobMismatch) {
		t.Fatalf("a file of the wrong hash: %v", err)
	}
	reordered := spec
	reordered.Chunks = append([]Hash{spec.Chunks[1], spec.Chunks[0]}, spec.Chunks[2:]...)
	if err := refused(t, f, next(), PutBlobs{Files: []FileSpec{reordered}}); !errors.Is(err, ErrBlobMismatch) {
		t.Fatalf("a file of its chunks in another order: %v", err)
	}
	mustApply(t, f, next(), PutBlobs{Files: []FileSpec{spec}})
	mustApply(t, f, next(), PutBlobs{Files: []FileSpec{spec}}) // again: kept once
	r := mustApply(t, f, next(), version)
	cv, _ := f.State().Config()
	if r.Version != 1 || !bytes.Equal(filesOf(t, f.State(), cv).Files["big.zone"], big) {
		t.Fatal("the version does not serve the uploaded file")
	}
	if got := f.State().Blobs(); got.Files != 2 || got.Chunks != len(chunks)+1 {
		t.Fatalf("held: %+v", got)
	}

	// A chunk whose bytes are not its hash's never becomes a command, and
	// one written by hand is refused by every node.
	bad := PutBlobs{Chunks: []Chunk{{chunks[0].Hash, []byte("not these bytes")}}}
	if _, err := EncodeCommand(bad); !errors.Is(err, ErrMalformed) || !errors.Is(err, ErrBlobMismatch) {
		t.Fatalf("encode a chunk of the wrong hash: %v", err)
	}
	good := enc(t, PutBlobs{Chunks: []Chunk{{sha([]byte("abc")), []byte("abc")}}})
	forged := bytes.Replace(good, []byte(`"data":"YWJj"`), []byte(`"data":"YWJk"`), 1)
	if bytes.Equal(forged, good) {
		t.Fatal("the test did not forge the command")
	}
	before := f.State()
	if err, _ := applyLog(f, next(), forged).(error); !errors.Is(err, ErrBlobMismatch) {
		t.Fatalf("a forged chunk: %v", err)
	}
	if f.State() != before {
		t.Fatal("a refused chunk changed the state")
	}
	// A version may carry its own content, but only its own.
	stray := inlineApply(bundle("a", "a", "x"), Change{At: t0, Base: 1})
	stray.Blobs.Chunks = append(stray.Blobs.Chunks, Chunk{sha([]byte("y")), []byte("y")})
	if _, err := EncodeCommand(stray); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a version carrying a chunk none of its files has: %v", err)
	}
}

// Content nothing names is kept UploadLifetime entries after its last
// upload, then falls out at the first entry applied from there on (a
// refused one too), the same on every node; an upload renewed in time is
// kept.
func TestAbandonedUploadGC(t *testing.T) {
	data := zoneText("x.test.", 20000)
	chunks, spec := split(data)
	f := NewFSM()
	mustApply(t, f, 10, PutBlobs{Chunks: chunks[:2]})                               // a file's first chunks, never finished
	mustApply(t, f, 20, PutBlobs{Chunks: []Chunk{{sha([]byte("z")), []byte("z")}}}) // renewed below
	mustApply(t, f, 30, PutBlobs{Chunks: chunks[2:]})
	if got := f.State().Blobs(); got.Chunks != len(chunks)+1 {
		t.Fatalf("held %+v", got)
	}
	mustApply(t, f, 9+UploadLifetime, RegisterNode{ID: "n1", Raft: "r"})
	if !f.State().HasChunk(chunks[0].Hash) {
		t.Fatal("a chunk fell out before its lease ran out")
	}
	// A refused command at the index the first lease runs out.
	if err := refused(t, f, 10+UploadLifetime, Rollback{Version: 9, Change: Change{At: t0, Force: true}}); !errors.Is(err, ErrNoSuchVersion) {
		t.Fatal(err)
	}
	st := f.State()
	if st.HasChunk(chunks[0].Hash) || st.HasChunk(chunks[1].Hash) || !st.HasChunk(chunks[2].Hash) || !st.HasChunk(sha([]byte("z"))) {
		t.Fatalf("after the first lease: %+v", st.Blobs())
	}
	if st.Index() != 10+UploadLifetime {
		t.Fatalf("the sweep is not the state at index %d: %d", 10+UploadLifetime, st.Index())
	}
	// The file is refused now (its first chunks are gone) ...
	if err := refused(t, f, 11+UploadLifetime, PutBlobs{Files: []FileSpec{spec}}); !errors.Is(err, ErrMissingBlob) {
		t.Fatalf("a file whose chunks fell out: %v", err)
	}
	// ... and a file uploaded whole but named by no version falls out with
	// its chunks.
	mustApply(t, f, 12+UploadLifetime, PutBlobs{Chunks: chunks[:2], Files: []FileSpec{spec}})
	mustApply(t, f, 15+UploadLifetime, PutBlobs{Chunks: []Chunk{{sha([]byte("z")), []byte("z")}}})
	mustApply(t, f, 30+UploadLifetime, RegisterNode{ID: "n2", Raft: "r"})
	if !f.State().HasFile(spec.Hash) || !f.State().HasChunk(chunks[2].Hash) {
		t.Fatal("a file named by no version fell out before its lease ran out (its chunks with it)")
	}
	mustApply(t, f, 12+2*UploadLifetime, RegisterNode{ID: "n3", Raft: "r"})
	if got := f.State().Blobs(); got.Files != 0 || got.Chunks != 1 || got.Bytes != 1 {
		t.Fatalf("after the file's lease: %+v, want only the renewed chunk", got)
	}
	mustApply(t, f, 15+2*UploadLifetime, RegisterNode{ID: "n4", Raft: "r"})
	if got := f.State().Blobs(); got != (BlobStats{}) {
		t.Fatalf("after every lease: %+v", got)
	}
	if f.State().blobs.due != 0 {
		t.Fatalf("nothing held, a sweep due at %d", f.State().blobs.due)
	}
}

// A version that changes one line of a big file uploads and keeps about
// one chunk more, not the file again; a file no version changed is not
// uploaded at all.
func TestDedupAcrossVersions(t *testing.T) {
	big := zoneText("big.test.", 100000) // ~2.6 MB
	small := []byte("$ORIGIN small.test.\n@ 300 IN SOA ns1 h 1 1 1 1 1\n")
	b1 := Bundle{Main: "tern.yaml", Files: map[string][]byte{"tern.yaml": []byte("# v1\n"), "big.zone": big, "small.zone": small}}
	f := NewFSM()
	idx := uint64(0)
	propose := func(b Bundle, ch Change) (carried int) {
		puts, ac := f.State().Upload(b, ch)
		for _, p := range append(puts, ac.Blobs) {
			for _, c := range p.Chunks {
				carried += len(c.Data)
			}
		}
		for _, p := range puts {
			idx++
			mustApply(t, f, idx, p)
		}
		idx++
		mustApply(t, f, idx, ac)
		return carried
	}
	if n := propose(b1, Change{At: t0}); n != b1.Size() {
		t.Fatalf("the first version carried %d bytes of %d", n, b1.Size())
	}
	first := f.State().Blobs()

	// One record edited in the middle of the big file (a longer address).
	b2 := Bundle{Main: "tern.yaml", Files: map[string][]byte{"tern.yaml": []byte("# v2\n"), "small.zone": small,
		"big.zone": bytes.Replace(big, []byte("h50000 300 IN A 10.0.195.80\n"), []byte("h50000 300 IN A 10.100.195.80\n"), 1)}}
	n := propose(b2, Change{At: t0, Base: 1})
	if n > 2*chunkMax+len("# v2\n") {
		t.Fatalf("a one-line change carried %d bytes", n)
	}
	second := f.State().Blobs()
	if grew := second.Bytes - first.Bytes; grew > 2*chunkMax+5 || grew <= 0 {
		t.Fatalf("keeping both versions costs %d bytes more than one", grew)
	}
	if second.Files != first.Files+2 {
		t.Fatalf("files %d then %d: the unchanged one is not shared", first.Files, second.Files)
	}
	// Only the YAML changed: the version carries it alone.
	b3 := Bundle{Main: "tern.yaml", Files: map[string][]byte{"tern.yaml": []byte("# v3\n"), "small.zone": small, "big.zone": b2.Files["big.zone"]}}
	puts, ac := f.State().Upload(b3, Change{At: t0, Base: 2})
	if len(puts) != 0 || len(ac.Blobs.Chunks) != 1 || string(ac.Blobs.Chunks[0].Data) != "# v3\n" {
		t.Fatalf("a YAML-only change plans %d commands before the version, carrying %d chunks", len(puts), len(ac.Blobs.Chunks))
	}
	// Content-defined cuts: an insertion near the start moves the cuts
	// near it only.
	g := gearTable()
	cuts := func(data []byte) map[Hash]bool {
		out := map[Hash]bool{}
		for len(data) > 0 {
			k := cutChunk(data, &g)
			out[sha(data[:k])] = true
			data = data[k:]
		}
		return out
	}
	a, b := cuts(big), cuts(append([]byte("; a comment line\n"), big...))
	shared := 0
	for h := range b {
		if a[h] {
			shared++
		}
	}
	if shared < len(a)-2 {
		t.Fatalf("after an insertion at the start, %d of %d chunks are still shared", shared, len(a))
	}
}

// A trimmed version's content falls out at once, unless another kept
// version names it; a rollback to a kept version reads its files back
// byte for byte.
func TestGCOnTrimAndRollback(t *testing.T) {
	f := NewFSM()
	shared := "$ORIGIN s.\n"
	mustApply(t, f, 1, inlineApply(bundle("m", "m", "one", "s.zone", shared), Change{At: t0, Keep: 2}))
	mustApply(t, f, 2, inlineApply(bundle("m", "m", "two", "s.zone", shared), Change{At: t0, Base: 1, Keep: 2}))
	one, _ := f.State().ConfigVersion(1)
	r := mustApply(t, f, 3, Rollback{Version: 1, Change: Change{At: t0, Base: 2, Keep: 2}})
	cur, _ := f.State().Config()
	if r.Version != 3 || cur.Hash != one.Hash {
		t.Fatalf("rollback: %+v", cur)
	}
	if got := filesOf(t, f.State(), cur); string(got.Files["m"]) != "one" || string(got.Files["s.zone"]) != shared {
		t.Fatalf("rolled back files %q", got.Files)
	}
	// Version 1 is trimmed, but version 3 names its files.
	if got := f.State().Blobs(); got.Files != 3 {
		t.Fatalf("after the rollback: %+v, want one, two and the shared file", got)
	}
	mustApply(t, f, 4, inlineApply(bundle("m", "m", "four", "s.zone", shared), Change{At: t0, Base: 3, Keep: 2}))
	st := f.State()
	if st.HasFile(sha([]byte("two"))) || !st.HasFile(sha([]byte("one"))) || !st.HasFile(sha([]byte(shared))) {
		t.Fatalf("after trimming version 2: %+v", st.Blobs())
	}
	mustApply(t, f, 5, inlineApply(bundle("m", "m", "five", "s.zone", shared), Change{At: t0, Base: 4, Keep: 1}))
	if got := f.State().Blobs(); got.Files != 2 || got.Chunks != 2 || got.Bytes != int64(len("five")+len(shared)) {
		t.Fatalf("keeping one version: %+v", got)
	}
	if err := refused(t, f, 6, Rollback{Version: 3, Change: Change{At: t0, Base: 5}}); !errors.Is(err, ErrNoSuchVersion) {
		t.Fatalf("rollback to a trimmed version: %v", err)
	}
	// Content uploaded with a lease outlives the trim of its version by
	// the lease.
	p := PutBlobs{Chunks: []Chunk{{sha([]byte("seven")), []byte("seven")}}, Files: []FileSpec{{sha([]byte("seven")), 5, []Hash{sha([]byte("seven"))}}}}
	mustApply(t, f, 7, p)
	mustApply(t, f, 8, ApplyConfig{Manifest: Manifest{Main: "m", Files: map[string]Hash{"m": sha([]byte("seven"))}}, Change: Change{At: t0, Base: 5, Keep: 1}})
	mustApply(t, f, 9, inlineApply(bundle("m", "m", "nine"), Change{At: t0, Base: 6, Keep: 1}))
	if !f.State().HasFile(sha([]byte("seven"))) {
		t.Fatal("uploaded content fell out with its version before its lease ran out")
	}
	mustApply(t, f, 7+UploadLifetime, RegisterNode{ID: "n1", Raft: "r"})
	if f.State().HasFile(sha([]byte("seven"))) || f.State().HasChunk(sha([]byte("seven"))) {
		t.Fatal("content of a trimmed version outlived its lease")
	}
}

// A snapshot taken in the middle of an upload restores to the same state
// (leases included): both go on to the same state, and the snapshot holds
// the view it captured while Apply went on and swept content out.
func TestSnapshotDuringUpload(t *testing.T) {
	data := zoneText("x.test.", 30000)
	chunks, spec := split(data)
	f := NewFSM()
	mustApply(t, f, 1, inlineApply(bundle("m", "m", "one", "x.zone", "old"), Change{At: t0, Keep: 1}))
	mustApply(t, f, 2, PutBlobs{Chunks: chunks[:1]})
	mustApply(t, f, 3, PutBlobs{Chunks: chunks[1:]})
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	captured := f.State()
	// The upload finishes, its version replaces the old one (whose
	// content falls out), and the leases run out, all before Persist.
	rest := []Body{
		PutBlobs{Files: []FileSpec{spec}},
		ApplyConfig{Manifest: Manifest{Main: "m", Files: map[string]Hash{"m": sha([]byte("one")), "x.zone": spec.Hash}}, Change: Change{At: t0, Base: 1, Keep: 1}},
	}
	other := NewFSM()
	for i, b := range rest {
		mustApply(t, f, uint64(4+i), b)
	}
	mustApply(t, f, 3+UploadLifetime, RegisterNode{ID: "n1", Raft: "r"})
	if f.State().HasFile(sha([]byte("old"))) {
		t.Fatal("the old version's content is still held")
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	if err := other.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(other.State(), captured) {
		t.Fatal("the restored state is not the one captured")
	}
	if !other.State().HasFile(sha([]byte("old"))) || other.State().Blobs().Chunks != len(chunks)+2 {
		t.Fatalf("restored: %+v", other.State().Blobs())
	}
	for i, b := range rest {
		mustApply(t, other, uint64(4+i), b)
	}
	mustApply(t, other, 3+UploadLifetime, RegisterNode{ID: "n1", Raft: "r"})
	if !reflect.DeepEqual(other.State(), f.State()) || other.State().Hash() != f.State().Hash() {
		t.Fatal("after the same entries, the restored FSM and the original differ")
	}
	// The chunks' bytes are raw in the snapshot, not base64.
	if !bytes.Contains(sink.Bytes(), chunks[1].Data) {
		t.Fatal("a chunk's bytes are not in the snapshot as they are")
	}
}

// A chunk whose bytes were damaged in the snapshot is refused.
func TestRestoreRejectsDamagedChunk(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, 1, inlineApply(bundle("m", "m", "main file content", "z", "zone file content"), Change{At: t0}))
	good, _ := persist(t, f)
	for _, tc := range []struct{ name, from, to string }{
		{"bytes", "zone file content", "zone file c0ntent"},
		{"size", `"size":17,`, `"size":16,`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := bytes.Replace(good, []byte(tc.from), []byte(tc.to), 1)
			if bytes.Equal(bad, good) {
				t.Fatal("nothing replaced")
			}
			checkRejected(t, bad)
		})
	}
}

func TestManifestFS(t *testing.T) {
	big := zoneText("big.test.", 30000)
	b := Bundle{Main: "etc/tern.yaml", Files: map[string][]byte{"etc/tern.yaml": []byte("y"), "etc/zones/big.zone": big, "etc/empty": nil}}
	f := NewFSM()
	puts, ac := f.State().Upload(b, Change{At: t0})
	for i, p := range puts {
		mustApply(t, f, uint64(i+1), p)
	}
	mustApply(t, f, uint64(len(puts)+1), ac)
	cv, _ := f.State().Config()
	fsys, err := f.State().FS(cv.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range b.Files {
		got, err := fs.ReadFile(fsys, p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %d bytes, %v", p, len(got), err)
		}
		if h, err := fsys.FileHash(p); err != nil || h != sha(want) {
			t.Fatalf("%s: hash %s, %v", p, h, err)
		}
	}
	got, _ := fs.ReadFile(fsys, "etc/zones/big.zone")
	got[0] = 'X' // a copy: the state's bytes stay
	if again, _ := fs.ReadFile(fsys, "etc/zones/big.zone"); !bytes.Equal(again, big) {
		t.Fatal("a reader changed the state's bytes")
	}
	fi, err := fs.Stat(fsys, "etc/zones/big.zone")
	if err != nil || fi.Size() != int64(len(big)) || fi.Name() != "big.zone" || fi.IsDir() {
		t.Fatalf("stat: %v %v", fi, err)
	}
	if _, err := fs.ReadFile(fsys, "etc/other"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a file not in the manifest: %v", err)
	}
	if _, err := f.State().FS(Manifest{Main: "m", Files: map[string]Hash{"m": sha([]byte("never"))}}); !errors.Is(err, ErrMissingBlob) {
		t.Fatalf("a manifest of content not held: %v", err)
	}
	// A bundle's own file system names hashes too.
	if h, err := b.FS().(interface{ FileHash(string) (Hash, error) }).FileHash("etc/zones/big.zone"); err != nil || h != sha(big) {
		t.Fatalf("bundle FileHash: %s %v", h, err)
	}
}

package raftstore

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
)

// replayAndRestore replays testdata/dir/log.jsonl into one FSM and
// restores testdata/dir/snapshot.jsonl into another, both written by an
// older version of this package (the snapshot after that very log), and
// checks that they are the same state now too. It returns the restored
// FSM and the results of the log's entries.
func replayAndRestore(t *testing.T, dir string, entries int) (*FSM, []any) {
	t.Helper()
	logData, err := os.ReadFile("testdata/" + dir + "/log.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	replayed := NewFSM()
	sc := bufio.NewScanner(bytes.NewReader(logData))
	sc.Buffer(nil, MaxCommandSize)
	var results []any
	for i := uint64(1); sc.Scan(); i++ {
		results = append(results, applyLog(replayed, i, sc.Bytes()))
	}
	if len(results) != entries {
		t.Fatalf("%d log entries, want %d", len(results), entries)
	}
	snap, err := os.ReadFile("testdata/" + dir + "/snapshot.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	// The old code's state hash is the one the snapshot's end record
	// holds, which restore checks the old lines against.
	oldHash, err := os.ReadFile("testdata/" + dir + "/state.hash")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(snap, []byte(`"hash":"`+strings.TrimSpace(string(oldHash))+`"}}`)) {
		t.Fatal("the snapshot's end record does not hold the old code's state hash")
	}
	restored := NewFSM()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatalf("restore the old snapshot: %v", err)
	}
	if !reflect.DeepEqual(restored.State(), replayed.State()) || restored.State().Hash() != replayed.State().Hash() {
		t.Fatal("the old log replays to another state than the old snapshot restores to")
	}
	if restored.Applied() != uint64(entries) || restored.Restored() != uint64(entries) {
		t.Fatalf("restored applied %d, restored %d, want %d", restored.Applied(), restored.Restored(), entries)
	}
	// And the state goes through this code's own format unchanged.
	again, _ := persist(t, restored)
	if !bytes.HasPrefix(again, []byte(`{"format":"tern-raftstore","v":2,`)) {
		t.Fatalf("snapshot written as %.60s", again)
	}
	back := NewFSM()
	if err := back.Restore(io.NopCloser(bytes.NewReader(again))); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.State(), restored.State()) {
		t.Fatal("the old state does not survive this code's snapshot format")
	}
	return restored, results
}

// testdata/v1 was written by the version of this package before
// configuration changes carried their base, origin and zone serials: a
// log of version 1 commands (an unconditional apply, an if_version apply,
// a refused one, a rollback), the snapshot after it and that state's
// hash. Both still load, to one state, and a new version on top of them
// serves serials above the old scheme's.
func TestVersion1LogAndSnapshot(t *testing.T) {
	restored, results := replayAndRestore(t, "v1", 7)
	if _, refused := results[3].(error); !refused {
		t.Errorf("entry 4 (if_version 1 while version 2 is current) was accepted: %v", results[3])
	}
	st := restored.State()
	cur, _ := st.Config()
	if cur.Version != 4 || cur.RollbackOf != 1 || cur.Comment != "tern rollback" || cur.Origin != (Origin{}) || cur.Zones != nil {
		t.Fatalf("current version from the old snapshot: %+v", cur)
	}
	v1, _ := st.ConfigVersion(1)
	if cur.Hash != v1.Hash || !reflect.DeepEqual(cur.Manifest, v1.Manifest) {
		t.Fatal("the rollback does not name version 1's files")
	}
	if got := string(filesOf(t, st, cur).Files["zones/a.zone"]); got != "$ORIGIN a.\n@ SOA ns h 100 1 1 1 1\n" {
		t.Fatalf("zones/a.zone of version 4: %q", got)
	}
	// Versions 1 and 4 are one content: three distinct configurations,
	// sharing nothing else, each file once.
	if b := st.Blobs(); b.Files != 6 || b.Chunks != 6 {
		t.Fatalf("held: %+v, want 6 files in 6 chunks", b)
	}
	// The old scheme served zone a.'s file serial (100) + 4; a first
	// version with serials starts above it.
	r := mustApply(t, restored, 8, inlineApply(bundle("tern.yaml", "tern.yaml", "# v5\n"), Change{Base: 4, At: t0, Origin: Origin{Kind: OriginApply, Node: "n1"}, Zones: map[string]ZoneStamp{"a.": {Serial: 100, Content: Hash{9}}}}))
	cv, _ := restored.State().ConfigVersion(r.Version)
	if r.Version != 5 || cv.Zones["a."].Served != 105 {
		t.Fatalf("first version with serials after the old ones: %+v, want version 5 serving 105", cv)
	}
}

// testdata/v2 was written by the version of this package before file
// content was stored apart (envelope version 2, snapshot format 1):
// applies with origins and zone stamps, a refused stale one, a rollback to
// version 1, then keep 2 (versions 1 and 2 trimmed), admin, verdict, load
// and node entries. Both still load, to one state that keeps what the
// kept versions name and nothing of the trimmed ones.
func TestVersion2LogAndSnapshot(t *testing.T) {
	restored, results := replayAndRestore(t, "v2", 10)
	if _, refused := results[3].(error); !refused {
		t.Errorf("entry 4 (a stale base) was accepted: %v", results[3])
	}
	st := restored.State()
	if vs := versionsOf(st.ConfigVersions()); !reflect.DeepEqual(vs, []uint64{3, 4}) {
		t.Fatalf("kept versions %v, want [3 4]", vs)
	}
	v3, _ := st.ConfigVersion(3)
	if v3.RollbackOf != 1 || v3.Origin.Client != "127.0.0.1:5556" || v3.Zones["a."].Served != 102 || len(v3.Files) != 3 {
		t.Fatalf("version 3: %+v", v3)
	}
	cur, _ := st.Config()
	files := filesOf(t, st, cur)
	if cur.Version != 4 || string(files.Files["tern.yaml"]) != "# v2\npools: {}\n" || !strings.Contains(string(files.Files["zones/a.zone"]), "192.0.2.2") {
		t.Fatalf("version 4: %+v %q", cur, files.Files)
	}
	if b := st.Blobs(); b.Files != 5 || b.Chunks != 5 {
		t.Fatalf("held: %+v, want the 5 files versions 3 and 4 name", b)
	}
	if st.Admin("web", "10.0.0.1") != AdminDrain || len(st.Nodes()) != 2 {
		t.Fatal("admin states or nodes lost")
	}
}

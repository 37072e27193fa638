package raftstore

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// testdata/v1 was written by the version of this package before
// configuration changes carried their base, origin and zone serials: a
// log of version 1 commands (an unconditional apply, an if_version apply,
// a refused one, a rollback), the snapshot after it and that state's
// hash. Both must still load, to the very same state, and a new version
// on top of them serves serials above the old scheme's.
func TestVersion1LogAndSnapshot(t *testing.T) {
	want, err := os.ReadFile("testdata/v1/state.hash")
	if err != nil {
		t.Fatal(err)
	}
	logData, err := os.ReadFile("testdata/v1/log.jsonl")
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
	if len(results) != 7 {
		t.Fatalf("%d log entries, want 7", len(results))
	}
	if _, refused := results[3].(error); !refused {
		t.Errorf("entry 4 (if_version 1 while version 2 is current) was accepted: %v", results[3])
	}
	if got := replayed.State().Hash().String(); got != strings.TrimSpace(string(want)) {
		t.Fatalf("the version 1 log replays to state %s, the old code made %s", got, want)
	}

	snap, err := os.ReadFile("testdata/v1/snapshot.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	restored := NewFSM()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatalf("restore the version 1 snapshot: %v", err)
	}
	if got := restored.State().Hash().String(); got != strings.TrimSpace(string(want)) {
		t.Fatalf("the version 1 snapshot restores to state %s, want %s", got, want)
	}
	cur, _ := restored.State().Config()
	if cur.Version != 4 || cur.RollbackOf != 1 || cur.Comment != "tern rollback" || cur.Origin != (Origin{}) || cur.Zones != nil {
		t.Fatalf("current version from the old snapshot: %+v", cur)
	}
	// The old scheme served zone a.'s file serial (100) + 4; a first
	// version with serials starts above it.
	r := mustApply(t, restored, 8, ApplyConfig{Bundle: bundle("tern.yaml", "tern.yaml", "# v5\n"), Change: Change{Base: 4, At: t0, Origin: Origin{Kind: OriginApply, Node: "n1"}, Zones: map[string]ZoneStamp{"a.": {Serial: 100, Content: Hash{9}}}}})
	cv, _ := restored.State().ConfigVersion(r.Version)
	if r.Version != 5 || cv.Zones["a."].Served != 105 {
		t.Fatalf("first version with serials after the old ones: %+v, want version 5 serving 105", cv)
	}
}

package raftstore

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ternlb/tern/health"
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

// testdata/reports was written by this package before verdicts and load
// reports became one kind of observation: a log of health.verdicts and
// load.report commands (among the others), the snapshot of the state it
// made (format 1, with verdict and load records) and every observation
// that state held. Both still load, to one and the same state, which
// holds those observations as kinds health and load.
func TestReportsLogAndSnapshot(t *testing.T) {
	logData, err := os.ReadFile("testdata/reports/log.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	replayed := NewFSM()
	sc := bufio.NewScanner(bytes.NewReader(logData))
	sc.Buffer(nil, MaxCommandSize)
	for i := uint64(1); sc.Scan(); i++ {
		applyLog(replayed, i, sc.Bytes())
	}
	snap, err := os.ReadFile("testdata/reports/snapshot.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	restored := NewFSM()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(snap))); err != nil {
		t.Fatalf("restore the format 1 snapshot: %v", err)
	}
	if a, b := replayed.State().Hash(), restored.State().Hash(); a != b {
		t.Fatalf("the old log replays to state %s, its old snapshot restores to %s", a, b)
	}
	if a, b := replayed.Applied(), restored.Applied(); a != b {
		t.Fatalf("applied %d and %d", a, b)
	}

	type obs struct {
		Kind   health.Kind   `json:"kind"`
		Pool   string        `json:"pool"`
		Member string        `json:"member"`
		Node   health.NodeID `json:"node"`
		Value  float64       `json:"value"`
		At     time.Time     `json:"at"`
	}
	var want []obs
	wantData, err := os.ReadFile("testdata/reports/observed.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(wantData))
	for dec.More() {
		var o obs
		if err := dec.Decode(&o); err != nil {
			t.Fatal(err)
		}
		want = append(want, o)
	}
	st := restored.State()
	var got []obs
	for _, k := range st.Observed() {
		for _, kind := range []health.Kind{health.KindHealth, health.KindLoad} {
			for _, o := range st.Observations(nil, k.Pool, k.Member, kind) {
				got = append(got, obs{o.Kind, k.Pool, k.Member, o.Node, o.Value, o.At})
			}
		}
	}
	if len(got) != len(want) || len(want) < 100 {
		t.Fatalf("%d observations, the old state held %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] && !(got[i].At.Equal(want[i].At) && got[i].Kind == want[i].Kind && got[i].Value == want[i].Value && got[i].Node == want[i].Node && got[i].Pool == want[i].Pool && got[i].Member == want[i].Member) {
			t.Fatalf("observation %d: %+v, the old state held %+v", i, got[i], want[i])
		}
	}
	var ix struct{ Config, Admin, Health, Load, Nodes uint64 }
	if data, err := os.ReadFile("testdata/reports/indexes.json"); err != nil || json.Unmarshal(data, &ix) != nil {
		t.Fatalf("indexes.json: %v", err)
	}
	if got, want := st.Indexes(), (Indexes{Config: ix.Config, Admin: ix.Admin, Observations: max(ix.Health, ix.Load), Nodes: ix.Nodes}); got != want {
		t.Fatalf("indexes %+v, want %+v", got, want)
	}

	// Written again, the state is a format 2 snapshot of obs records that
	// restores to itself.
	var buf bytes.Buffer
	if err := writeSnapshot(&buf, st, restored.Applied()); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte(`{"verdict":`)) || !bytes.Contains(buf.Bytes(), []byte(`{"obs":{"pool":`)) {
		t.Fatal("a new snapshot still writes verdict records")
	}
	again := NewFSM()
	if err := again.Restore(io.NopCloser(&buf)); err != nil || again.State().Hash() != st.Hash() {
		t.Fatalf("restore the new snapshot: %v", err)
	}
	// A format 1 snapshot whose records were altered fails its hash.
	bad := bytes.Replace(snap, []byte(`"up":true`), []byte(`"up":false`), 1)
	if err := NewFSM().Restore(io.NopCloser(bytes.NewReader(bad))); !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("an altered format 1 snapshot: %v, want ErrCorruptSnapshot", err)
	}
}

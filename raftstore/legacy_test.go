package raftstore

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ternlb/tern/health"
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
	if !bytes.HasPrefix(again, []byte(`{"format":"tern-raftstore","v":3,`)) {
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

	// Written again, the state is a format 3 snapshot of obs records that
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

// snapLine is one record of a snapshot: its line and, for a chunk, the
// raw bytes after it.
type snapLine struct {
	kind string
	body map[string]any
	raw  []byte
}

// splitSnapshot cuts a snapshot into its records, header and end left out.
func splitSnapshot(t *testing.T, snap []byte) []snapLine {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(snap))
	var out []snapLine
	for first := true; ; first = false {
		line, err := r.ReadBytes('\n')
		if err != nil {
			t.Fatalf("snapshot cut short: %v", err)
		}
		if first {
			continue
		}
		var rec map[string]map[string]any
		if err := json.Unmarshal(line, &rec); err != nil || len(rec) != 1 {
			t.Fatalf("record %q: %v", line, err)
		}
		for kind, body := range rec {
			if kind == "end" {
				return out
			}
			l := snapLine{kind: kind, body: body}
			if kind == "chunk" {
				l.raw = make([]byte, int(body["size"].(float64)))
				if _, err := io.ReadFull(r, l.raw); err != nil {
					t.Fatal(err)
				}
			}
			out = append(out, l)
		}
	}
}

// joinSnapshot writes records as a format v snapshot, its hash over the
// lines as written.
func joinSnapshot(t *testing.T, v int, applied uint64, recs []snapLine) []byte {
	t.Helper()
	var buf bytes.Buffer
	fmt.Fprintf(&buf, `{"format":"tern-raftstore","v":%d,"applied":%d}`+"\n", v, applied)
	h := sha256.New()
	for _, r := range recs {
		line, err := json.Marshal(map[string]any{r.kind: r.body})
		if err != nil {
			t.Fatal(err)
		}
		line = append(line, '\n')
		buf.Write(line)
		h.Write(line)
		buf.Write(r.raw)
	}
	var sum Hash
	h.Sum(sum[:0])
	end, _ := json.Marshal(record{End: &endRec{Records: len(recs), Applied: applied, Hash: sum}})
	buf.Write(append(end, '\n'))
	return buf.Bytes()
}

// Two lines of development each wrote a "format 2": one with versions by
// hash, chunk and file records and format 1's verdict and load records;
// the other with format 1's inline versions and obs records. Both restore
// to the state their format 1 and format 3 equivalents do (the reports
// testdata, rewritten as each wrote it), and one that mixes their record
// kinds is corrupt.
func TestBothFormat2Snapshots(t *testing.T) {
	old, err := os.ReadFile("testdata/reports/snapshot.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	f1 := NewFSM()
	if err := f1.Restore(io.NopCloser(bytes.NewReader(old))); err != nil {
		t.Fatal(err)
	}
	want := f1.State().Hash()
	applied := f1.Applied()
	v3, _ := persist(t, f1)

	var obs, content []snapLine // obs: main's format 2; content: i11-blobs'
	for _, r := range splitSnapshot(t, old) {
		switch r.kind {
		case "state":
			ix := r.body["indexes"].(map[string]any)
			ix["health"], ix["load"] = max(ix["health"].(float64), ix["load"].(float64)), 0.0
		case "verdict", "load":
			continue
		}
		obs = append(obs, r)
	}
	var verdicts, loads []snapLine
	for _, r := range splitSnapshot(t, v3) {
		if r.kind != "obs" {
			content = append(content, r)
			continue
		}
		b := r.body
		switch b["kind"] {
		case "health":
			verdicts = append(verdicts, snapLine{kind: "verdict", body: map[string]any{"pool": b["pool"], "member": b["member"], "node": b["node"], "up": b["value"] == 1.0, "at": b["at"]}})
		case "load":
			loads = append(loads, snapLine{kind: "load", body: map[string]any{"pool": b["pool"], "member": b["member"], "node": b["node"], "load": b["value"], "capacity": 0, "at": b["at"]}})
		}
	}
	// obs records in the order main wrote them, after the admin records.
	var obsRecs []snapLine
	for _, r := range splitSnapshot(t, v3) {
		if r.kind == "obs" {
			obsRecs = append(obsRecs, r)
		}
	}
	at := func(recs []snapLine, kind string) int {
		return slices.IndexFunc(recs, func(r snapLine) bool { return r.kind == kind })
	}
	nodes := at(obs, "node")
	obs = slices.Concat(obs[:nodes], obsRecs, obs[nodes:])
	nodes = at(content, "node")
	content = slices.Concat(content[:nodes], verdicts, loads, content[nodes:])

	for _, tc := range []struct {
		name string
		recs []snapLine
		err  string
	}{
		{"inline versions and obs records", obs, ""},
		{"versions by hash, chunks and verdict and load records", content, ""},
		{"inline versions and verdict records", slices.Concat(obs[:at(obs, "obs")], verdicts[:1]), "a verdict record in a format 2 snapshot with records of the other format 2"},
		{"inline versions and chunks", slices.Concat(obs, content[at(content, "chunk"):at(content, "chunk")+1]), "a chunk record in a format 2 snapshot with records of the other format 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFSM()
			err := f.Restore(io.NopCloser(bytes.NewReader(joinSnapshot(t, 2, applied, tc.recs))))
			if tc.err != "" {
				if !errors.Is(err, ErrCorruptSnapshot) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("restore: %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := f.State().Hash(); got != want {
				t.Fatalf("state %s, the format 1 snapshot restores to %s", got, want)
			}
		})
	}
	// Format 3 holds neither format 2's other kinds.
	if err := NewFSM().Restore(io.NopCloser(bytes.NewReader(joinSnapshot(t, 3, applied, content)))); err == nil || !strings.Contains(err.Error(), "a verdict record in a format 3 snapshot") {
		t.Fatalf("verdict records in format 3: %v", err)
	}
}

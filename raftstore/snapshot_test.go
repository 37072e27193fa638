package raftstore

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// memSink is a raft.SnapshotSink into memory.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

var _ raft.SnapshotSink = (*memSink)(nil)

func persist(t testing.TB, f *FSM) ([]byte, *State) {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	captured := snap.(*fsmSnapshot).state
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed %v cancelled %v", sink.closed, sink.cancelled)
	}
	return sink.Bytes(), captured
}

func TestSnapshotRestoreAfter10000Entries(t *testing.T) {
	a := NewFSM()
	log := randomLog(t, 42, 10000)
	for i, data := range log {
		applyLog(a, uint64(i+1), data)
	}
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := a.State()
	wantHash := want.Hash()
	// Apply goes on between capture and persist; the snapshot holds the
	// captured state, not the newer one.
	for i, data := range randomLog(t, 43, 200) {
		applyLog(a, uint64(10001+i), data)
	}
	if a.State().Hash() == wantHash {
		t.Fatal("the extra entries did not change the state")
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	b := NewFSM()
	if err := b.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	got := b.State()
	if !reflect.DeepEqual(got, want) {
		t.Fatal("restored state is not deep-equal to the snapshotted one")
	}
	if got.Hash() != wantHash || b.Applied() != 10000 {
		t.Fatalf("hash %s want %s, applied %d", got.Hash(), wantHash, b.Applied())
	}
	if len(got.ConfigVersions()) == 0 || len(got.Nodes()) == 0 || len(got.Observed()) == 0 || len(got.AdminStates()) == 0 {
		t.Fatal("the log left parts of the state empty; the test lost coverage")
	}
	// The restored FSM goes on exactly like the original.
	for i, data := range randomLog(t, 43, 200) {
		applyLog(b, uint64(10001+i), data)
	}
	if b.State().Hash() != a.State().Hash() || !reflect.DeepEqual(b.State(), a.State()) {
		t.Fatal("after the same further entries, restored and original differ")
	}
}

func smallSnapshot(t *testing.T) (*FSM, []byte) {
	f := NewFSM()
	for i, data := range randomLog(t, 7, 60) {
		applyLog(f, uint64(i+1), data)
	}
	data, _ := persist(t, f)
	return f, data
}

func TestRestoreRejectsCorruptSnapshot(t *testing.T) {
	_, good := smallSnapshot(t)
	lines := strings.SplitAfter(string(good), "\n")
	if len(lines) < 8 {
		t.Fatalf("snapshot has only %d lines", len(lines))
	}
	swap := append([]string(nil), lines...)
	swap[3], swap[4] = swap[4], swap[3]
	tests := []struct{ name, data string }{
		{"empty", ""},
		{"header only", lines[0]},
		{"no end record", strings.Join(lines[:len(lines)-2], "")},
		{"truncated mid-line", string(good[:len(good)/2])},
		{"line dropped", lines[0] + lines[1] + strings.Join(lines[3:], "")},
		{"lines swapped", strings.Join(swap, "")},
		{"line doubled", lines[0] + lines[1] + lines[2] + strings.Join(lines[2:], "")},
		{"data after end", string(good) + "{}\n"},
		{"wrong format", strings.Replace(string(good), "tern-raftstore", "tern-other", 1)},
		{"unknown field", strings.Replace(string(good), `{"state":{`, `{"state":{"x":1,`, 1)},
		{"two kinds in a record", strings.Replace(string(good), `{"state":{`, `{"end":{},"state":{`, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkRejected(t, []byte(tc.data)) })
	}
	// Flip one bit of every byte in turn: each must be caught, unless the
	// flip means the same thing (a float's 17th digit can round to the same
	// float64); then the state must be exactly the original.
	t.Run("every byte flipped", func(t *testing.T) {
		f := NewFSM()
		for i, data := range randomLog(t, 7, 5) {
			applyLog(f, uint64(i+1), data)
		}
		good, _ := persist(t, f)
		want := f.State()
		for i := range good {
			bad := bytes.Clone(good)
			bad[i] ^= 1
			s, _, err := readSnapshot(bytes.NewReader(bad))
			if err == nil && !reflect.DeepEqual(s, want) {
				t.Fatalf("byte %d (%q -> %q) flipped, snapshot accepted with another state", i, good[i], bad[i])
			}
		}
	})
}

func checkRejected(t *testing.T, data []byte) {
	t.Helper()
	f := NewFSM()
	mustApply(t, f, 1, RegisterNode{ID: "keep", Raft: "r"})
	before := f.State()
	err := f.Restore(io.NopCloser(bytes.NewReader(data)))
	if !errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("restore: %v, want ErrCorruptSnapshot", err)
	}
	if f.State() != before || f.Applied() != 1 {
		t.Fatal("a failed restore changed the state")
	}
}

func TestSnapshotOfEmptyState(t *testing.T) {
	data, _ := persist(t, NewFSM())
	b := NewFSM()
	mustApply(t, b, 1, RegisterNode{ID: "x", Raft: "r"})
	if err := b.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.State(), NewFSM().State()) || b.Applied() != 0 {
		t.Fatal("restoring an empty snapshot did not give the empty state")
	}
}

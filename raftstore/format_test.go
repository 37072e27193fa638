package raftstore

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// A node that meets a log entry from a newer Tern stops applying with an
// error naming both formats, rather than skip it and part from the
// cluster's state; entries after it are not applied either.
func TestNewerCommandHaltsFSM(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, 1, verdict("n1", "a", true, t0))
	before := f.State()
	_, ch := f.Watch()
	r := applyLog(f, 2, []byte(`{"v":4,"type":"node.forget","body":{"id":"n1"}}`))
	err, _ := r.(error)
	if !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("apply of a version 4 envelope: %v, want ErrNewerFormat", r)
	}
	for _, want := range []string{"log index 2", "format 4", "reads up to 3", "upgrade tern"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	select {
	case <-ch:
	default:
		t.Error("halting did not wake the watchers")
	}
	if !errors.Is(f.Halted(), ErrNewerFormat) {
		t.Fatalf("Halted() = %v", f.Halted())
	}
	if r := applyLog(f, 3, enc(t, ForgetNode{ID: "n1"})); r == nil {
		t.Error("an entry after the newer one was applied")
	}
	if f.State() != before || f.Applied() != 1 {
		t.Errorf("halted FSM moved: applied %d, state changed %v", f.Applied(), f.State() != before)
	}
}

// A snapshot of a newer format is refused as such (not as corrupt), and
// halts the FSM.
func TestNewerSnapshotRefused(t *testing.T) {
	_, data := smallSnapshot(t)
	newer := bytes.Replace(data, []byte(`"v":3`), []byte(`"v":4`), 1)
	f := NewFSM()
	err := f.Restore(io.NopCloser(bytes.NewReader(newer)))
	if !errors.Is(err, ErrNewerFormat) || errors.Is(err, ErrCorruptSnapshot) {
		t.Fatalf("restore of a format 4 snapshot: %v, want ErrNewerFormat and not ErrCorruptSnapshot", err)
	}
	if !strings.Contains(err.Error(), "snapshot format 4, this node reads up to 3") {
		t.Errorf("error %q does not name both formats", err)
	}
	if !errors.Is(f.Halted(), ErrNewerFormat) {
		t.Errorf("Halted() = %v after a newer snapshot", f.Halted())
	}
	// The same snapshot at this node's format restores: the refusal is the
	// version's alone.
	if err := NewFSM().Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatalf("restore of the format 3 original: %v", err)
	}
}

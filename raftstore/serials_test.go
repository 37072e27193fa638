package raftstore

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestNextSerials(t *testing.T) {
	a, b := Hash{1}, Hash{2}
	last := map[string]ZoneSerial{
		"z.": {ZoneStamp{Serial: 100, Content: a}, 105},
		"w.": {ZoneStamp{Serial: 4294967290, Content: a}, 4294967295},
	}
	for _, tc := range []struct {
		name  string
		zone  string
		stamp ZoneStamp
		want  uint32
	}{
		{"unchanged keeps its serial", "z.", ZoneStamp{100, a}, 105},
		{"newer file serial wins", "z.", ZoneStamp{110, b}, 110},
		{"content changed, file serial not: last + 1", "z.", ZoneStamp{100, b}, 106},
		{"older file serial (a rollback): last + 1", "z.", ZoneStamp{90, a}, 106},
		{"file serial changed, content not: still moves", "z.", ZoneStamp{101, a}, 106},
		{"never served: the file's", "new.", ZoneStamp{7, a}, 7},
		{"wraps past 2^32 (RFC 1982)", "w.", ZoneStamp{4294967290, b}, 0},
		{"a file serial past the wrap is newer", "w.", ZoneStamp{3, b}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NextSerials(last, map[string]ZoneStamp{tc.zone: tc.stamp})
			if z := got[tc.zone]; z.Served != tc.want || z.ZoneStamp != tc.stamp || len(got) != 1 {
				t.Fatalf("NextSerials = %+v, want %s served %d", got, tc.zone, tc.want)
			}
			if prev, ok := last[tc.zone]; ok && SerialLess(got[tc.zone].Served, prev.Served) {
				t.Fatalf("served serial went back from %d to %d", prev.Served, got[tc.zone].Served)
			}
		})
	}
	if w := WithSerials(last, map[string]ZoneSerial{"z.": {Served: 200}}); w["z."].Served != 200 || w["w."].Served != 4294967295 || last["z."].Served != 105 {
		t.Fatalf("WithSerials = %v (last now %v)", w, last)
	}
}

// v1, then v2 with the zone file's serial raised by 10, then a rollback to
// v1 as v3: v3 serves a serial above v2's, and every kind of change keeps
// the high-water mark of a zone that went away and came back.
func TestVersionSerialsNeverGoBack(t *testing.T) {
	f := NewFSM()
	o := Origin{Kind: OriginApply, Node: "n1"}
	c1, c2, c3 := Hash{1}, Hash{2}, Hash{3}
	z := func(serial uint32, c Hash) map[string]ZoneStamp { return map[string]ZoneStamp{"z.": {serial, c}} }
	served := func() uint32 {
		cv, _ := f.State().Config()
		return cv.Zones["z."].Served
	}
	mustApply(t, f, 1, inlineApply(bundle("a", "a", "1"), Change{At: t0, Origin: o, Zones: z(100, c1)}))
	if s := served(); s != 100 {
		t.Fatalf("v1 serves %d, want the file's 100", s)
	}
	mustApply(t, f, 2, inlineApply(bundle("a", "a", "2"), Change{Base: 1, At: t0, Origin: o, Zones: z(110, c2)}))
	v2 := served()
	if v2 != 110 {
		t.Fatalf("v2 serves %d, want 110", v2)
	}
	// The rollback takes the stamps v1 recorded.
	mustApply(t, f, 3, Rollback{Version: 1, Change: Change{Base: 2, At: t0, Origin: Origin{Kind: OriginRollback, Node: "n2"}}})
	if v3 := served(); !SerialLess(v2, v3) {
		t.Fatalf("v3 (rollback to v1) serves %d, not above v2's %d", v3, v2)
	}
	// The state survives a snapshot, serials included.
	data, _ := persist(t, f)
	g := NewFSM()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	// A version without the zone, then one with it again: not below.
	mustApply(t, g, 4, inlineApply(bundle("a", "a", "4"), Change{Base: 3, At: t0, Origin: o}))
	mustApply(t, g, 5, inlineApply(bundle("a", "a", "5"), Change{Base: 4, At: t0, Origin: o, Zones: z(100, c3)}))
	if cv, _ := g.State().Config(); cv.Zones["z."].Served != 112 {
		t.Fatalf("the zone back in v5 serves %d, want 112 (v3's 111 + 1)", cv.Zones["z."].Served)
	}
}

func TestBaseCheck(t *testing.T) {
	f := NewFSM()
	o := Origin{Kind: OriginApply, Node: "n1"}
	if r := applyLog(f, 1, enc(t, inlineApply(bundle("a", "a", "1"), Change{Base: 1, At: t0, Origin: o}))); !errors.Is(r.(error), ErrStale) {
		t.Fatalf("first version based on version 1: %v, want ErrStale", r)
	}
	mustApply(t, f, 2, inlineApply(bundle("a", "a", "1"), Change{At: t0, Origin: o}))
	mustApply(t, f, 3, inlineApply(bundle("a", "a", "2"), Change{Base: 1, At: t0, Origin: o}))
	for _, tc := range []struct {
		name    string
		b       Body
		err     error
		changed bool
	}{
		{"stale apply", inlineApply(bundle("a", "a", "stale"), Change{Base: 1, At: t0, Origin: o}), ErrStale, false},
		{"stale apply of the current content changes nothing", inlineApply(bundle("a", "a", "2"), Change{Base: 1, At: t0, Origin: o}), nil, false},
		{"stale rollback", Rollback{Version: 1, Change: Change{Base: 1, At: t0, Origin: o}}, ErrStale, false},
		{"forced apply", inlineApply(bundle("a", "a", "forced"), Change{Base: 1, Force: true, At: t0, Origin: o}), nil, true},
		{"current rollback", Rollback{Version: 1, Change: Change{Base: 3, At: t0, Origin: o}}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.State()
			r := applyLog(f, f.Applied()+1, enc(t, tc.b))
			if tc.err != nil {
				if err, _ := r.(error); !errors.Is(err, tc.err) || f.State() != before {
					t.Fatalf("got %v, want %v and no change", r, tc.err)
				}
				return
			}
			res, ok := r.(Result)
			if !ok || res.Changed != tc.changed {
				t.Fatalf("got %#v, want changed %v", r, tc.changed)
			}
			if cv, _ := f.State().Config(); tc.changed && cv.Origin != o {
				t.Fatalf("version %d: origin %+v, want %+v", cv.Version, cv.Origin, o)
			}
		})
	}
}

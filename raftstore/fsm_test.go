package raftstore

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ternlb/tern/health"
)

func TestApplyRejectedChangesNothing(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, 1, verdict("n1", "a", true, t0))
	before := f.State()
	hash := before.Hash()
	bad := [][]byte{
		[]byte(`{"v":1,"type":"health.verdicts","body":{"node":"n1","verdicts":[{"pool":"web","member":"a","health":"down","at":"2026-11-22T05:00:00Z"},{"pool":"web","member":"b","health":"sideways","at":"2026-11-22T05:00:00Z"}]}}`),
		[]byte(`{"v":0,"type":"node.forget","body":{"id":"n1"}}`),
		[]byte(`garbage`),
		enc(t, Rollback{Version: 7, Change: Change{At: t0}}),                // not kept
		enc(t, inlineApply(bundle("a", "a", "x"), Change{Base: 3, At: t0})), // stale
	}
	for i, data := range bad {
		idx := uint64(2 + i)
		r := applyLog(f, idx, data)
		if _, ok := r.(error); !ok {
			t.Fatalf("entry %d: got %#v, want an error", idx, r)
		}
		if f.State() != before || f.State().Hash() != hash {
			t.Fatalf("entry %d: rejected command changed the state", idx)
		}
		if f.Applied() != idx {
			t.Errorf("applied = %d, want %d", f.Applied(), idx)
		}
	}
	if v, _ := f.State().Observation("n1", "web", "a", health.KindHealth); !v.Up() {
		t.Error("the valid half of a rejected batch was applied")
	}
}

func TestConfigVersions(t *testing.T) {
	f := NewFSM()
	b1 := bundle("etc/tern.yaml", "etc/tern.yaml", "v1", "etc/z.zone", "z")
	b2 := bundle("etc/tern.yaml", "etc/tern.yaml", "v2", "etc/z.zone", "z")
	if _, ok := f.State().Config(); ok {
		t.Fatal("empty state has a configuration")
	}
	r := mustApply(t, f, 1, inlineApply(b1, Change{At: t0, Comment: "c1"}))
	if !r.Changed || r.Version != 1 {
		t.Fatalf("first apply: %+v", r)
	}
	cv, _ := f.State().Config()
	if cv.Version != 1 || cv.Hash != b1.Manifest().Hash() || cv.Index != 1 || !cv.At.Equal(t0) || cv.Comment != "c1" {
		t.Fatalf("version 1: %+v", cv)
	}
	// The same bundle again (files in another map order) changes nothing.
	same := bundle("etc/tern.yaml", "etc/z.zone", "z", "etc/tern.yaml", "v1")
	st := f.State()
	if r := mustApply(t, f, 2, inlineApply(same, Change{At: t0})); r.Changed || r.Version != 1 {
		t.Fatalf("same bundle: %+v", r)
	}
	if f.State() != st {
		t.Fatal("same bundle published a new state")
	}
	if r := mustApply(t, f, 3, inlineApply(b2, Change{At: t0, Base: 1})); r.Version != 2 {
		t.Fatalf("second apply: %+v", r)
	}
	// Compare and swap against a stale version.
	r2 := applyLog(f, 4, enc(t, inlineApply(b1, Change{At: t0, Base: 1})))
	if err, _ := r2.(error); !errors.Is(err, ErrStale) {
		t.Fatalf("stale base: %v", r2)
	}
	// Rollback re-applies version 1 as version 3.
	r = mustApply(t, f, 5, Rollback{Version: 1, Change: Change{At: t0.Add(time.Minute), Base: 2}})
	cv, _ = f.State().Config()
	if r.Version != 3 || cv.Version != 3 || cv.RollbackOf != 1 || cv.Hash != b1.Manifest().Hash() || string(filesOf(t, f.State(), cv).Files["etc/tern.yaml"]) != "v1" {
		t.Fatalf("rollback: %+v %+v", r, cv)
	}
	// Rolling back to what is current changes nothing.
	if r := mustApply(t, f, 6, Rollback{Version: 1, Change: Change{At: t0, Base: 1}}); r.Changed {
		t.Fatal("rollback to the current content made a version")
	}
	// Keep trims the oldest versions; a trimmed version cannot come back.
	for i := 0; i < 5; i++ {
		mustApply(t, f, uint64(10+i), inlineApply(bundle("a", "a", string(rune('a'+i))), Change{At: t0, Keep: 3, Force: true}))
	}
	vs := f.State().ConfigVersions()
	if len(vs) != 3 || vs[0].Version != 6 || vs[2].Version != 8 {
		t.Fatalf("kept versions: %v", versionsOf(vs))
	}
	r2 = applyLog(f, 20, enc(t, Rollback{Version: 2, Change: Change{At: t0, Base: 8}}))
	if err, _ := r2.(error); !errors.Is(err, ErrNoSuchVersion) {
		t.Fatalf("rollback to trimmed version: %v", r2)
	}
	if _, ok := f.State().ConfigVersion(7); !ok {
		t.Fatal("version 7 not found")
	}
}

func versionsOf(vs []ConfigVersion) []uint64 {
	var out []uint64
	for _, v := range vs {
		out = append(out, v.Version)
	}
	return out
}

func TestApplyIsCopyOnWrite(t *testing.T) {
	f := NewFSM()
	b := bundle("a", "a", "one")
	mustApply(t, f, 1, inlineApply(b, Change{At: t0}))
	b.Files["a"][0] = 'X' // the proposer's buffer is not the state's
	mustApply(t, f, 2, Observations{Node: "n1", Reports: []ObservationReport{{"web", "a", health.KindHealth, 1, t0}, {"web", "b", health.KindHealth, 1, t0}}})
	mustApply(t, f, 3, SetAdmin{States: []AdminChange{{"web", "a", AdminDrain}}})
	mustApply(t, f, 4, RegisterNode{ID: "n1", Raft: "r1", API: "a1"})
	old := f.State()
	oldHash := old.Hash()
	mustApply(t, f, 5, verdict("n1", "a", false, t0.Add(time.Second)))
	mustApply(t, f, 6, verdict("n2", "a", false, t0))
	mustApply(t, f, 7, SetAdmin{States: []AdminChange{{"web", "a", AdminAuto}}})
	mustApply(t, f, 8, ForgetNode{ID: "n1"})
	mustApply(t, f, 9, inlineApply(bundle("a", "a", "two"), Change{At: t0, Base: 1}))
	if old.Hash() != oldHash {
		t.Fatal("an old view changed under its reader")
	}
	if v, _ := old.Observation("n1", "web", "a", health.KindHealth); !v.Up() || len(old.Observations(nil, "web", "a", "")) != 1 || old.Admin("web", "a") != AdminDrain {
		t.Fatalf("old view: %+v admin %s", old.Observations(nil, "web", "a", ""), old.Admin("web", "a"))
	}
	if cv, _ := old.Config(); string(filesOf(t, old, cv).Files["a"]) != "one" {
		t.Fatalf("old config: %q", filesOf(t, old, cv).Files["a"])
	}
	s := f.State()
	if got := s.Observations(nil, "web", "a", health.KindHealth); len(got) != 1 || got[0].Node != "n2" {
		t.Fatalf("after forget n1: %+v", got)
	}
	if len(s.Observations(nil, "web", "b", "")) != 0 || len(s.Nodes()) != 0 || s.Admin("web", "a") != AdminAuto {
		t.Fatalf("forget n1 left %+v / %+v", s.Observations(nil, "web", "b", ""), s.Nodes())
	}
	ix := s.Indexes()
	if ix.Observations != 8 || ix.Admin != 7 || ix.Config != 9 || ix.Nodes != 8 || s.Index() != 9 {
		t.Fatalf("indexes %+v index %d", ix, s.Index())
	}
}

func TestObservations(t *testing.T) {
	f := NewFSM()
	held := func(node NodeID, kind health.Kind) health.Observation {
		t.Helper()
		o, ok := f.State().Observation(node, "web", "a", kind)
		if !ok {
			t.Fatalf("no %s observation of %s", kind, node)
		}
		return o
	}
	mustApply(t, f, 1, verdict("n1", "a", false, t0.Add(10*time.Second)))
	// An older observation (a batch that arrived late) is ignored.
	if r := mustApply(t, f, 2, verdict("n1", "a", true, t0)); r.Changed {
		t.Fatal("older verdict changed the state")
	}
	// The same verdict again with the same time is no change either.
	if r := mustApply(t, f, 3, verdict("n1", "a", false, t0.Add(10*time.Second))); r.Changed {
		t.Fatal("repeated verdict changed the state")
	}
	// A refresh (same verdict, later time) moves the time.
	mustApply(t, f, 4, verdict("n1", "a", false, t0.Add(20*time.Second)))
	if o := held("n1", health.KindHealth); o.Up() || !o.At.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("verdict %+v", o)
	}
	// Times are stored in UTC whatever zone the proposer wrote.
	east := time.FixedZone("x", 3600)
	mustApply(t, f, 5, verdict("n2", "a", true, t0.In(east)))
	if o := held("n2", health.KindHealth); o.At.Location() != time.UTC || !o.At.Equal(t0) {
		t.Fatalf("time %v", o.At)
	}
	// Every kind merges by the same rule: loads, and a kind this version
	// has no rule for.
	mustApply(t, f, 6, Observations{Node: "n1", Reports: []ObservationReport{{"web", "a", health.KindLoad, 40, t0}, {"web", "a", "latency-ms", 7, t0}}})
	mustApply(t, f, 7, report("n1", health.KindLoad, "web", "a", 10, t0.Add(-time.Second)))
	if o := held("n1", health.KindLoad); o.Value != 40 {
		t.Fatalf("load %+v", o)
	}
	// Two values at the same time: the greater one, in either order.
	mustApply(t, f, 8, report("n1", "latency-ms", "web", "a", 9, t0))
	if r := mustApply(t, f, 9, report("n1", "latency-ms", "web", "a", 8, t0)); r.Changed || held("n1", "latency-ms").Value != 9 {
		t.Fatalf("tie at the same time: %+v, %+v", r, held("n1", "latency-ms"))
	}
	got := f.State().Observations(nil, "web", "a", "")
	var kinds []string
	for _, o := range got {
		kinds = append(kinds, string(o.Kind)+"/"+string(o.Node))
	}
	if want := []string{"health/n1", "health/n2", "latency-ms/n1", "load/n1"}; !reflect.DeepEqual(kinds, want) {
		t.Fatalf("observations of web/a: %v, want %v (by kind, then node)", kinds, want)
	}
	mustApply(t, f, 10, ForgetMembers{Members: []MemberKey{{"web", "a"}}})
	if len(f.State().Observed()) != 0 || f.State().ObservedCount() != 0 {
		t.Fatalf("forget member left %v", f.State().Observed())
	}
}

// ChangedSince names the members each command changed, across any number
// of commands, and says when it no longer knows.
func TestChangedSince(t *testing.T) {
	f := NewFSM()
	mustApply(t, f, 1, RegisterNode{ID: "n1", Raft: "r1"})
	mustApply(t, f, 2, Observations{Node: "n1", Reports: []ObservationReport{{"web", "a", health.KindHealth, 1, t0}, {"web", "a", health.KindLoad, 3, t0}, {"web", "b", health.KindHealth, 1, t0}}})
	mustApply(t, f, 3, verdict("n1", "b", true, t0)) // no change
	mustApply(t, f, 4, SetAdmin{States: []AdminChange{{"api", "c", AdminDrain}}})
	mustApply(t, f, 5, inlineApply(bundle("a", "a", ""), Change{At: t0}))
	mustApply(t, f, 6, ForgetMembers{Members: []MemberKey{{"web", "b"}, {"api", "c"}, {"api", "zz"}}})
	mustApply(t, f, 7, ForgetNode{ID: "n1"})
	key := func(k string) MemberKey { p, m, _ := strings.Cut(k, "/"); return MemberKey{p, m} }
	for _, tc := range []struct {
		since uint64
		want  []string
	}{
		{0, []string{"web/a", "web/b", "api/c", "web/b", "api/c", "web/a"}},
		{1, []string{"web/a", "web/b", "api/c", "web/b", "api/c", "web/a"}},
		{2, []string{"api/c", "web/b", "api/c", "web/a"}},
		{4, []string{"web/b", "api/c", "web/a"}},
		{5, []string{"web/b", "api/c", "web/a"}},
		{6, []string{"web/a"}},
		{7, nil},
		{9, nil},
	} {
		got, ok := f.ChangedSince(tc.since)
		var want []MemberKey
		for _, k := range tc.want {
			want = append(want, key(k))
		}
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("since %d: %v %v, want %v", tc.since, got, ok, want)
		}
	}
	// A restored state knows nothing before itself.
	var buf bytes.Buffer
	if err := writeSnapshot(&buf, f.State(), f.Applied()); err != nil {
		t.Fatal(err)
	}
	g := NewFSM()
	if err := g.Restore(io.NopCloser(&buf)); err != nil {
		t.Fatal(err)
	}
	if _, ok := g.ChangedSince(6); ok {
		t.Error("a restored state claims to know what changed before it")
	}
	if ks, ok := g.ChangedSince(7); !ok || len(ks) != 0 {
		t.Errorf("since the restored index: %v %v", ks, ok)
	}
	mustApply(t, g, 8, verdict("n1", "z", true, t0))
	if ks, ok := g.ChangedSince(7); !ok || !reflect.DeepEqual(ks, []MemberKey{{"web", "z"}}) {
		t.Errorf("after the restore: %v %v", ks, ok)
	}
	// Far enough back, the history is gone: the reader starts over.
	for i := range 2 * keptChanges {
		mustApply(t, g, uint64(9+i), verdict("n1", "z", i%2 == 0, t0.Add(time.Duration(i+1)*time.Second)))
	}
	if _, ok := g.ChangedSince(7); ok {
		t.Errorf("%d commands later the history still reaches back", 2*keptChanges)
	}
	if ks, ok := g.ChangedSince(g.Applied() - keptChanges); !ok || len(ks) != keptChanges {
		t.Errorf("the last %d commands: %d keys, %v", keptChanges, len(ks), ok)
	}
}

func TestWatch(t *testing.T) {
	f := NewFSM()
	s, ch := f.Watch()
	if s.Index() != 0 {
		t.Fatal("fresh state index")
	}
	select {
	case <-ch:
		t.Fatal("closed before any apply")
	default:
	}
	applyLog(f, 1, []byte("garbage"))
	<-ch // closed for a rejected entry too, so WaitApplied wakes
	s2, ch2 := f.Watch()
	if s2 != s {
		t.Fatal("rejected entry published a state")
	}
	mustApply(t, f, 2, ForgetNode{ID: "n1"}) // valid, no change
	<-ch2
	s3, ch3 := f.Watch()
	if s3.Index() != 0 {
		t.Fatal("no-op command changed the index")
	}
	mustApply(t, f, 3, RegisterNode{ID: "n1", Raft: "r"})
	<-ch3
	if s4, _ := f.Watch(); s4.Index() != 3 || f.Applied() != 3 {
		t.Fatalf("index %d applied %d", s4.Index(), f.Applied())
	}
}

func TestStoreConfigurationCountsAsApplied(t *testing.T) {
	f := NewFSM()
	s, ch := f.Watch()
	f.StoreConfiguration(5, raft.Configuration{})
	<-ch
	if f.Applied() != 5 || f.State() != s {
		t.Fatalf("applied %d, state replaced %v", f.Applied(), f.State() != s)
	}
}

func TestApplyDeterministic(t *testing.T) {
	log := randomLog(t, 1, 1500)
	a, b := NewFSM(), NewFSM()
	rejected := 0
	for i, data := range log {
		ra, rb := applyLog(a, uint64(i+1), data), applyLog(b, uint64(i+1), data)
		if !reflect.DeepEqual(ra, rb) {
			t.Fatalf("entry %d: results differ: %v vs %v", i+1, ra, rb)
		}
		if _, ok := ra.(error); ok {
			rejected++
		}
	}
	if rejected == 0 {
		t.Fatal("the log has no rejected entries; the test lost coverage")
	}
	if !reflect.DeepEqual(a.State(), b.State()) || a.State().Hash() != b.State().Hash() {
		t.Fatal("two FSMs applying the same log differ")
	}
	// Another log gives another state: the hash is not a constant.
	c := NewFSM()
	for i, data := range randomLog(t, 2, 300) {
		applyLog(c, uint64(i+1), data)
	}
	if c.State().Hash() == a.State().Hash() {
		t.Fatal("different logs, same hash")
	}
}

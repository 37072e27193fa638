package health

import (
	"math"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestSupersedes(t *testing.T) {
	held := hv("n1", true, t0)
	for _, tc := range []struct {
		name string
		ok   bool
		o    Observation
		want bool
	}{
		{"none held", false, hv("n1", false, t0.Add(-time.Hour)), true},
		{"newer", true, hv("n1", false, t0.Add(time.Second)), true},
		{"older", true, hv("n1", false, t0.Add(-time.Second)), false},
		{"identical", true, held, false},
		{"same time, same value, another zone", true, hv("n1", true, t0.In(time.FixedZone("x", 3600))), false},
		{"same time, greater value wins", true, obs("n1", KindHealth, 2, t0), true},
		{"same time, smaller value loses", true, hv("n1", false, t0), false},
		{"same time, NaN loses", true, obs("n1", KindHealth, math.NaN(), t0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Supersedes(held, tc.ok, tc.o); got != tc.want {
				t.Fatalf("Supersedes = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMerge(t *testing.T) {
	a, b := Key{"web", "a"}, Key{"web", "b"}
	held := map[ObsKey]Observation{}
	steps := []struct {
		name    string
		node    NodeID
		rs      []Report
		changed []Key
	}{
		{"first reports", "n1", []Report{{a, KindHealth, 1, t0}, {a, KindLoad, 5, t0}, {b, KindHealth, 0, t0}}, []Key{a, b}},
		{"the same again changes nothing", "n1", []Report{{a, KindHealth, 1, t0}, {b, KindHealth, 0, t0}}, nil},
		{"an older report changes nothing", "n1", []Report{{a, KindHealth, 0, t0.Add(-time.Second)}}, nil},
		{"another node's is its own", "n2", []Report{{a, KindHealth, 0, t0.Add(-time.Second)}}, []Key{a}},
		{"a newer one of one kind", "n1", []Report{{a, KindLoad, 6, t0.Add(time.Second)}}, []Key{a}},
		{"one batch, two reports of a member: one change", "n1", []Report{{b, KindHealth, 1, t0.Add(time.Second)}, {b, KindLoad, 1, t0.Add(time.Second)}}, []Key{b}},
	}
	for _, s := range steps {
		if got := Merge(held, s.node, s.rs); !slices.Equal(got, s.changed) {
			t.Fatalf("%s: changed %v, want %v", s.name, got, s.changed)
		}
	}
	want := map[ObsKey]Observation{
		{KindHealth, a, "n1"}: hv("n1", true, t0),
		{KindLoad, a, "n1"}:   obs("n1", KindLoad, 6, t0.Add(time.Second)),
		{KindHealth, b, "n1"}: hv("n1", true, t0.Add(time.Second)),
		{KindLoad, b, "n1"}:   obs("n1", KindLoad, 1, t0.Add(time.Second)),
		{KindHealth, a, "n2"}: hv("n2", false, t0.Add(-time.Second)),
	}
	if !reflect.DeepEqual(held, want) {
		t.Fatalf("held %v\nwant %v", held, want)
	}
}

// Reports merged in any order leave the same state.
func TestMergeOrder(t *testing.T) {
	k := Key{"web", "a"}
	rs := []Report{{k, KindLoad, 3, t0}, {k, KindLoad, 5, t0}, {k, KindLoad, 1, t0.Add(-time.Second)}, {k, KindLoad, 2, t0.Add(-2 * time.Second)}}
	var first map[ObsKey]Observation
	for _, perm := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {1, 0, 3, 2}, {2, 0, 3, 1}} {
		held := map[ObsKey]Observation{}
		for _, i := range perm {
			Merge(held, "n1", rs[i:i+1])
		}
		if first == nil {
			first = held
		} else if !reflect.DeepEqual(held, first) {
			t.Fatalf("order %v: %v, another order: %v", perm, held, first)
		}
	}
	if got := first[ObsKey{KindLoad, k, "n1"}].Value; got != 5 {
		t.Fatalf("kept %v, want 5 (latest time, then greatest value)", got)
	}
}

func TestOwnReports(t *testing.T) {
	local := time.FixedZone("here", 7200)
	for _, tc := range []struct {
		name string
		m    Member
		own  Own
		want []Report
	}{
		{"not probed: nothing", web, Own{}, nil},
		{"not allowed: nothing", web, barred, nil},
		{"probed up, at the probe's time in UTC", web, Own{Probed: true, Up: true, At: t0.In(local)}, []Report{{web.Key, KindHealth, 1, t0}}},
		{"probed down", web, Own{Probed: true, At: t0}, []Report{{web.Key, KindHealth, 0, t0}}},
		{"no probe time: now", web, Own{Probed: true, Up: true}, []Report{{web.Key, KindHealth, 1, now}}},
		{"load check with a load", lb, Own{Probed: true, Up: true, At: t0, Load: 4, HasLoad: true},
			[]Report{{lb.Key, KindHealth, 1, t0}, {lb.Key, KindLoad, 4, t0}}},
		{"load check before a load report", lb, Own{Probed: true, Up: true, At: t0}, []Report{{lb.Key, KindHealth, 1, t0}}},
		{"a load from another check is not reported", web, Own{Probed: true, Up: true, At: t0, Load: 4, HasLoad: true}, []Report{{web.Key, KindHealth, 1, t0}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := OwnReports(nil, tc.m, tc.own, now)
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i].Key != tc.want[i].Key || got[i].Kind != tc.want[i].Kind || got[i].Value != tc.want[i].Value ||
					!got[i].At.Equal(tc.want[i].At) || got[i].At.Location() != time.UTC {
					t.Fatalf("report %d: %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// Ported from node's TestLoadBatch (the same rules, now for any kind),
// with hysteresis.
func TestPending(t *testing.T) {
	a, b := Key{"lb", "192.0.2.1"}, Key{"lb", "192.0.2.2"}
	ld := func(k Key, v float64, at time.Time) Report { return Report{k, KindLoad, v, at} }
	for _, tc := range []struct {
		name string
		held []Report
		mine []Report
		now  time.Time
		hyst float64
		want []Key
	}{
		{"none held: every report", nil, []Report{ld(a, 10, t0), ld(b, 20, t0)}, t0, 0, []Key{a, b}},
		{"held the same and recent: nothing", []Report{ld(a, 10, t0)}, []Report{ld(a, 10, t0.Add(time.Second))}, t0.Add(time.Second), 0, nil},
		{"changed: proposed", []Report{ld(a, 10, t0)}, []Report{ld(a, 30, t0.Add(time.Second))}, t0.Add(time.Second), 0, []Key{a}},
		{"held the same but older than the refresh: proposed", []Report{ld(a, 10, t0)}, []Report{ld(a, 10, t0.Add(11*time.Second))}, t0.Add(11 * time.Second), 0, []Key{a}},
		{"exactly the refresh old: proposed", []Report{ld(a, 10, t0)}, []Report{ld(a, 10, t0.Add(10*time.Second))}, t0.Add(10 * time.Second), 0, []Key{a}},
		{"old but no newer probe: nothing", []Report{ld(a, 10, t0)}, []Report{ld(a, 10, t0)}, t0.Add(11 * time.Second), 0, nil},
		{"within the hysteresis: not a change", []Report{ld(a, 100, t0)}, []Report{ld(a, 104, t0.Add(time.Second))}, t0.Add(time.Second), 0.05, nil},
		{"within the hysteresis, old: a refresh", []Report{ld(a, 100, t0)}, []Report{ld(a, 104, t0.Add(11*time.Second))}, t0.Add(11 * time.Second), 0.05, []Key{a}},
		{"beyond the hysteresis: a change", []Report{ld(a, 100, t0)}, []Report{ld(a, 106, t0.Add(time.Second))}, t0.Add(time.Second), 0.05, []Key{a}},
		{"hysteresis from zero: any move is a change", []Report{ld(a, 0, t0)}, []Report{ld(a, 0.001, t0.Add(time.Second))}, t0.Add(time.Second), 0.05, []Key{a}},
		{"another kind is not held", []Report{ld(a, 10, t0)}, []Report{{a, KindHealth, 1, t0}}, t0, 0, []Key{a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			held := map[ObsKey]Observation{}
			Merge(held, "self", tc.held)
			look := func(k Key, kind Kind) (Observation, bool) {
				o, ok := held[ObsKey{kind, k, "self"}]
				return o, ok
			}
			opts := PendingOptions{Now: tc.now, Refresh: 10 * time.Second, Hysteresis: map[Kind]float64{KindLoad: tc.hyst}}
			got := Pending(tc.mine, look, opts)
			var keys []Key
			for _, r := range got {
				keys = append(keys, r.Key)
			}
			if !slices.Equal(keys, tc.want) {
				t.Fatalf("pending %v, want %v", keys, tc.want)
			}
			// Once merged, nothing is left to say.
			Merge(held, "self", got)
			if again := Pending(tc.mine, look, opts); len(again) != 0 {
				t.Fatalf("after merging, still pending: %+v", again)
			}
		})
	}
}

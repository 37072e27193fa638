package health

import (
	"reflect"
	"testing"
	"time"
)

const maxAge = 30 * time.Second

var (
	now   = t0.Add(time.Hour)
	fresh = now.Add(-5 * time.Second)
	stale = now.Add(-time.Minute)
	three = []NodeID{"n1", "n2", "n3"}
)

// summary is the part of a State a rule decides.
type summary struct {
	Up, Drain, Forced bool
	Admin             Admin
	Load              float64
	HasLoad           bool
	Why               string
}

func summarize(s State) summary {
	return summary{s.Up, s.Drain, s.Forced, s.Admin, s.Load, s.HasLoad, s.Why}
}

func ups(up bool, nodes ...NodeID) []Observation {
	var out []Observation
	for _, n := range nodes {
		out = append(out, hv(n, up, fresh))
	}
	return out
}

func loads(vs ...float64) []Observation {
	var out []Observation
	for i, v := range vs {
		out = append(out, obs(NodeID("n"+string(rune('1'+i))), KindLoad, v, fresh))
	}
	return out
}

var (
	web     = Member{Key: Key{"web", "192.0.2.1"}, CheckType: "http", InitialUp: true}
	lb      = Member{Key: Key{"lb", "192.0.2.9"}, CheckType: "load", InitialUp: true}
	static  = Member{Key: Key{"static", "192.0.2.5"}, InitialUp: true}
	disp    = Member{Key: Key{"dispatcher:http", "10.1.0.11"}, CheckType: "http", InitialUp: true, Reporters: true}
	with    = func(m Member, a Admin) Member { m.Admin = a; return m }
	initial = func(m Member, up bool) Member { m.InitialUp = up; return m }

	probedUp   = Own{Probed: true, Up: true, At: fresh}
	probedDown = Own{Probed: true, Up: false, Err: "connect: connection refused", At: fresh}
	barred     = Own{NotAllowed: true, Err: "exec checks are not allowed on this node"}
)

const ownSuffix = " (this node's own verdict: its probers do not agree yet)"

// One case per rule of Decide, with the why string the API shows.
func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name       string
		standalone bool
		m          Member
		own, carry Own
		admin      Admin // the operator's, set when not auto
		setAuto    bool  // the operator's auto is set (standalone)
		health     []Observation
		load       []Observation
		probers    []NodeID // nil: three
		clock      time.Time
		want       summary
	}{
		// Standalone: this node's own observation and admin states.
		{name: "standalone: no check, initial up", standalone: true, m: static,
			want: summary{Up: true, Why: "not probed: up (no check, or initial state)"}},
		{name: "standalone: not probed yet, initial down", standalone: true, m: initial(web, false),
			want: summary{Why: "not probed yet: initial state down"}},
		{name: "standalone: probes pass", standalone: true, m: web, own: probedUp,
			want: summary{Up: true, Why: "probes pass"}},
		{name: "standalone: probes fail", standalone: true, m: web, own: probedDown,
			want: summary{Why: "probes fail: connect: connection refused"}},
		{name: "standalone: a probe error before the first result", standalone: true, m: initial(web, false), own: Own{Err: "resolve: no such host"},
			want: summary{Why: "probes fail: resolve: no such host"}},
		{name: "standalone: configured up outranks failing probes", standalone: true, m: with(web, AdminUp), own: probedDown,
			want: summary{Up: true, Forced: true, Admin: AdminUp, Why: "forced up by an operator"}},
		{name: "standalone: configured down outranks passing probes", standalone: true, m: with(web, AdminDown), own: probedUp,
			want: summary{Forced: true, Admin: AdminDown, Why: "forced down by an operator"}},
		{name: "standalone: drain keeps the probed health", standalone: true, m: with(web, AdminDrain), own: probedUp,
			want: summary{Up: true, Drain: true, Admin: AdminDrain, Why: "drained by an operator"}},
		{name: "standalone: replicated observations are not read", standalone: true, m: web, own: probedUp, health: ups(false, three...),
			want: summary{Up: true, Why: "probes pass"}},
		{name: "standalone: a run-time down outranks passing probes", standalone: true, m: web, own: probedUp, admin: AdminDown,
			want: summary{Forced: true, Admin: AdminDown, Why: "forced down by an operator"}},
		{name: "standalone: a run-time auto replaces the configured down", standalone: true, m: with(web, AdminDown), own: probedUp, setAuto: true,
			want: summary{Up: true, Why: "probes pass"}},
		{name: "standalone: a run-time drain replaces the configured up", standalone: true, m: with(web, AdminUp), own: probedDown, admin: AdminDrain,
			want: summary{Drain: true, Admin: AdminDrain, Why: "drained by an operator"}},
		{name: "standalone: own load served", standalone: true, m: lb, own: Own{Probed: true, Up: true, At: fresh, Load: 7, HasLoad: true}, load: loads(1, 1, 1),
			want: summary{Up: true, Load: 7, HasLoad: true, Why: "probes pass"}},
		{name: "standalone: not allowed here", standalone: true, m: initial(web, false), own: barred,
			want: summary{Why: "not probed here: exec checks are not allowed on this node; initial state down"}},
		{name: "standalone: not allowed, no reason given", standalone: true, m: web, own: Own{NotAllowed: true},
			want: summary{Up: true, Why: "not probed here: its check may not run on this node; initial state up"}},

		// Replicated admin states outrank everything and replace the configured one.
		{name: "replicated down outranks agreement and configured up", m: with(web, AdminUp), own: probedUp, admin: AdminDown, health: ups(true, three...),
			want: summary{Forced: true, Admin: AdminDown, Why: "forced down by an operator"}},
		{name: "replicated up outranks configured down", m: with(web, AdminDown), own: probedDown, admin: AdminUp, health: ups(false, three...),
			want: summary{Up: true, Forced: true, Admin: AdminUp, Why: "forced up by an operator"}},
		{name: "replicated drain: health by agreement", m: web, own: probedDown, admin: AdminDrain, health: ups(true, three...),
			want: summary{Up: true, Drain: true, Admin: AdminDrain, Why: "drained by an operator"}},
		{name: "replicated drain while the probers do not agree: own verdict, no suffix", m: web, own: probedDown, admin: AdminDrain,
			want: summary{Drain: true, Admin: AdminDrain, Why: "drained by an operator"}},
		{name: "replicated drain replaces configured up: health by agreement", m: with(web, AdminUp), own: probedUp, admin: AdminDrain, health: ups(false, three...),
			want: summary{Drain: true, Admin: AdminDrain, Why: "drained by an operator"}},

		// Then the configuration's admin value.
		{name: "configured up outranks agreement down", m: with(web, AdminUp), own: probedDown, health: ups(false, three...),
			want: summary{Up: true, Forced: true, Admin: AdminUp, Why: "forced up by an operator"}},
		{name: "configured down outranks agreement up", m: with(web, AdminDown), own: probedUp, health: ups(true, three...),
			want: summary{Forced: true, Admin: AdminDown, Why: "forced down by an operator"}},
		{name: "configured drain: health by agreement", m: with(web, AdminDrain), own: probedDown, health: ups(true, three...),
			want: summary{Up: true, Drain: true, Admin: AdminDrain, Why: "drained by an operator"}},

		// Then agreement.
		{name: "agreement up over own down", m: web, own: probedDown, health: ups(true, three...),
			want: summary{Up: true, Why: "up by agreement of 3 probers"}},
		{name: "agreement down over own up", m: web, own: probedUp, health: ups(false, three...),
			want: summary{Why: "down by agreement of 3 probers"}},
		{name: "two of three make a majority", m: web, own: probedUp, health: append(ups(false, "n2", "n3"), hv("n1", true, fresh)),
			want: summary{Why: "down by agreement of 3 probers"}},
		{name: "split two-two: own verdict", m: web, own: probedUp, probers: []NodeID{"n1", "n2", "n3", "n4"},
			health: append(ups(false, "n3", "n4"), ups(true, "n1", "n2")...),
			want:   summary{Up: true, Why: "probes pass" + ownSuffix}},
		{name: "too few fresh: own verdict", m: web, own: probedDown, health: ups(true, "n2"),
			want: summary{Why: "probes fail: connect: connection refused" + ownSuffix}},
		{name: "stale verdicts count for nothing", m: web, own: probedUp, health: []Observation{hv("n1", false, stale), hv("n2", false, stale), hv("n3", false, fresh)},
			want: summary{Up: true, Why: "probes pass" + ownSuffix}},
		{name: "verdicts from far ahead count for nothing", m: web, own: probedUp, health: []Observation{hv("n1", false, now.Add(time.Minute)), hv("n2", false, now.Add(time.Minute)), hv("n3", false, fresh)},
			want: summary{Up: true, Why: "probes pass" + ownSuffix}},
		{name: "the quorum clock: stale by now, fresh by the last time in quorum", m: web, own: probedUp, clock: now.Add(-45 * time.Second),
			health: []Observation{hv("n1", false, stale), hv("n2", false, stale)},
			want:   summary{Why: "down by agreement of 3 probers"}},
		{name: "the quorum clock: fresh by now, ahead of the last time in quorum", m: web, own: probedDown, clock: now.Add(-45 * time.Second),
			health: ups(true, three...),
			want:   summary{Why: "probes fail: connect: connection refused" + ownSuffix}},
		{name: "non-probers' verdicts ignored", m: web, own: probedDown, health: append(ups(true, three...), ups(false, "n4", "n5", "n6", "n7")...),
			want: summary{Up: true, Why: "up by agreement of 3 probers"}},
		{name: "one prober decides alone", m: web, own: probedUp, probers: []NodeID{"n2"}, health: ups(false, "n2"),
			want: summary{Why: "down by agreement of 1 prober"}},
		{name: "no registered nodes: own verdict", m: web, own: probedUp, probers: []NodeID{}, health: ups(false, three...),
			want: summary{Up: true, Why: "probes pass" + ownSuffix}},
		{name: "no check: configured state whatever is observed", m: static, health: ups(false, three...),
			want: summary{Up: true, Why: "not probed: up (no check, or initial state)"}},
		{name: "not probed here, probers not agreed: initial state", m: initial(web, false), own: barred,
			want: summary{Why: "not probed here: exec checks are not allowed on this node; initial state down" + ownSuffix}},
		{name: "not probed here, probers agreed", m: initial(web, false), own: barred, health: ups(true, "n2", "n3"),
			want: summary{Up: true, Why: "up by agreement of 3 probers"}},

		// A member decided by the nodes that report on it (a dispatcher's
		// servers): the probers given are ignored, a split resolves up.
		{name: "reporters: the two that reported split, up wins", m: disp, own: probedDown, probers: []NodeID{"n9"},
			health: []Observation{hv("n1", false, fresh), hv("n2", true, fresh)},
			want:   summary{Up: true, Why: "up by agreement of 2 probers"}},
		{name: "reporters: both down", m: disp, own: probedUp, health: ups(false, "n1", "n2"),
			want: summary{Why: "down by agreement of 2 probers"}},
		{name: "reporters: a stale one counts for nothing", m: disp, own: probedUp, health: []Observation{hv("n1", false, fresh), hv("n2", true, stale)},
			want: summary{Why: "down by agreement of 2 probers"}},
		{name: "reporters: majority of three", m: disp, own: probedUp, health: append(ups(false, "n1", "n2"), hv("n3", true, fresh)),
			want: summary{Why: "down by agreement of 3 probers"}},
		{name: "reporters: none yet, own verdict", m: disp, own: probedDown,
			want: summary{Why: "probes fail: connect: connection refused" + ownSuffix}},

		// Load.
		{name: "load: median of three", m: lb, own: probedUp, health: ups(true, three...), load: loads(10, 90, 12),
			want: summary{Up: true, Load: 12, HasLoad: true, Why: "up by agreement of 3 probers"}},
		{name: "load: median of two is their mean", m: lb, own: probedUp, health: ups(true, three...), load: loads(10, 12),
			want: summary{Up: true, Load: 11, HasLoad: true, Why: "up by agreement of 3 probers"}},
		{name: "load: none fresh, own load", m: lb, own: Own{Probed: true, Up: true, At: fresh, Load: 3, HasLoad: true}, health: ups(true, three...),
			load: []Observation{obs("n2", KindLoad, 50, stale)},
			want: summary{Up: true, Load: 3, HasLoad: true, Why: "up by agreement of 3 probers"}},
		{name: "load: none at all", m: lb, own: probedUp, health: ups(true, three...),
			want: summary{Up: true, Why: "up by agreement of 3 probers"}},
		{name: "load: a forced member still serves its load", m: with(lb, AdminUp), own: probedDown, load: loads(4, 4, 4),
			want: summary{Up: true, Forced: true, Admin: AdminUp, Load: 4, HasLoad: true, Why: "forced up by an operator"}},
		{name: "load: not a load check, replicated loads ignored", m: web, own: Own{Probed: true, Up: true, At: fresh, Load: 2, HasLoad: true}, health: ups(true, three...), load: loads(9, 9, 9),
			want: summary{Up: true, Load: 2, HasLoad: true, Why: "up by agreement of 3 probers"}},

		// The previous configuration's verdict while this one has not probed.
		{name: "carry: previous verdict while unprobed", standalone: true, m: web, carry: probedDown,
			want: summary{Why: "probes fail: connect: connection refused"}},
		{name: "carry: previous verdict as own in a cluster", m: web, carry: probedDown,
			want: summary{Why: "probes fail: connect: connection refused" + ownSuffix}},
		{name: "carry: its load too", m: lb, carry: Own{Probed: true, Up: true, At: fresh, Load: 6, HasLoad: true},
			want: summary{Up: true, Load: 6, HasLoad: true, Why: "probes pass" + ownSuffix}},
		{name: "carry: gone once probed", standalone: true, m: web, own: probedUp, carry: probedDown,
			want: summary{Up: true, Why: "probes pass"}},
		{name: "carry: not for a member not allowed here", standalone: true, m: initial(web, false), own: barred, carry: probedUp,
			want: summary{Why: "not probed here: exec checks are not allowed on this node; initial state down"}},
		{name: "carry: agreement still outranks it", m: web, carry: probedDown, health: ups(true, three...),
			want: summary{Up: true, Why: "up by agreement of 3 probers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probers := tc.probers
			if probers == nil {
				probers = three
			}
			clock := tc.clock
			if clock.IsZero() {
				clock = now
			}
			in := Inputs{Member: tc.m, Own: tc.own, Carry: tc.carry, Admin: tc.admin, AdminSet: tc.admin != AdminAuto || tc.setAuto, Health: tc.health, Load: tc.load, Probers: probers}
			got := Decide(in, Params{Self: "n1", Cluster: !tc.standalone, Clock: clock, MaxAge: maxAge})
			if s := summarize(got); s != tc.want {
				t.Fatalf("got  %+v\nwant %+v", s, tc.want)
			}
			if got.Key != tc.m.Key {
				t.Fatalf("key %v, want %v", got.Key, tc.m.Key)
			}
		})
	}
}

// What each node said, as the API shows it.
func TestDecideVantages(t *testing.T) {
	v := func(node NodeID, kind Kind, value float64, at time.Time, stale, prober bool) Vantage {
		return Vantage{Observation: obs(node, kind, value, at), Observed: true, Stale: stale, Prober: prober}
	}
	for _, tc := range []struct {
		name       string
		standalone bool
		m          Member
		own        Own
		health     []Observation
		load       []Observation
		want       []Vantage
	}{
		{name: "standalone: nothing before a probe", standalone: true, m: web},
		{name: "standalone: own verdict with its reason", standalone: true, m: web, own: probedDown,
			want: []Vantage{{Observation: hv("n1", false, fresh), Observed: true, Prober: true, Reason: "connect: connection refused"}}},
		{name: "cluster: every node, by node, stale and non-probers marked", m: web,
			health: []Observation{hv("n4", false, fresh), hv("n2", true, stale), hv("n1", true, fresh)},
			want:   []Vantage{v("n1", KindHealth, 1, fresh, false, true), v("n2", KindHealth, 1, stale, true, true), v("n4", KindHealth, 0, fresh, false, false)}},
		{name: "cluster: one per node, the latest", m: web,
			health: []Observation{hv("n2", true, stale), hv("n2", false, fresh)},
			want:   []Vantage{v("n2", KindHealth, 0, fresh, false, true)}},
		{name: "cluster: loads after verdicts for a load check", m: lb,
			health: []Observation{hv("n3", true, fresh)}, load: []Observation{obs("n3", KindLoad, 5, fresh), obs("n1", KindLoad, 4, fresh)},
			want: []Vantage{v("n3", KindHealth, 1, fresh, false, true), v("n1", KindLoad, 4, fresh, false, true), v("n3", KindLoad, 5, fresh, false, true)}},
		{name: "cluster: not allowed here says so", m: web, own: barred, health: []Observation{hv("n2", true, fresh)},
			want: []Vantage{{Observation: Observation{Node: "n1", Kind: KindHealth}, Prober: true, Reason: "exec checks are not allowed on this node"},
				v("n2", KindHealth, 1, fresh, false, true)}},
		{name: "cluster: not allowed here, an old verdict of its own kept with the reason", m: web, own: barred, health: []Observation{hv("n1", true, stale)},
			want: []Vantage{{Observation: hv("n1", true, stale), Observed: true, Stale: true, Prober: true, Reason: "exec checks are not allowed on this node"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := Inputs{Member: tc.m, Own: tc.own, Health: tc.health, Load: tc.load, Probers: three}
			got := Decide(in, Params{Self: "n1", Cluster: !tc.standalone, Clock: now, MaxAge: maxAge})
			if !reflect.DeepEqual(got.Vantages, tc.want) {
				t.Fatalf("vantages\n got %+v\nwant %+v", got.Vantages, tc.want)
			}
		})
	}
}

// Decide keeps nothing of its inputs: changing them afterwards does not
// change a State.
func TestDecideOwnsItsSlices(t *testing.T) {
	h := ups(true, three...)
	ps := []NodeID{"n3", "n1", "n2"}
	s := Decide(Inputs{Member: web, Health: h, Probers: ps}, Params{Cluster: true, Clock: now, MaxAge: maxAge})
	h[0].Node, ps[0] = "zz", "zz"
	if s.Vantages[0].Node != "n1" || s.Probers[2] != "n3" {
		t.Fatalf("the State shares its inputs' arrays: %+v %v", s.Vantages, s.Probers)
	}
}

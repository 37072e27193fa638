package health

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// fakeSource is a Source over plain maps, counting what it is asked.
type fakeSource struct {
	own   map[Key]Own
	admin map[Key]Admin
	obs   map[Key][]Observation
	reads int // Own calls: members resolved
}

func newSource() *fakeSource {
	return &fakeSource{own: map[Key]Own{}, admin: map[Key]Admin{}, obs: map[Key][]Observation{}}
}

func (s *fakeSource) Own(k Key) Own { s.reads++; return s.own[k] }
func (s *fakeSource) Admin(k Key) (Admin, bool) {
	a, ok := s.admin[k]
	return a, ok
}
func (s *fakeSource) Observations(dst []Observation, k Key, kind Kind) []Observation {
	for _, o := range s.obs[k] {
		if o.Kind == kind {
			dst = append(dst, o)
		}
	}
	return dst
}

// set replaces node's observation of kind of k.
func (s *fakeSource) set(k Key, o Observation) {
	os := s.obs[k]
	i := slices.IndexFunc(os, func(x Observation) bool { return x.Node == o.Node && x.Kind == o.Kind })
	if i < 0 {
		s.obs[k] = append(os, o)
	} else {
		os[i] = o
	}
}

// served names a state as answers see it, with its reason.
func served(s State) string {
	st := "down"
	switch {
	case s.Drain:
		st = "drain"
	case s.Up:
		st = "up"
	}
	if s.HasLoad {
		st += fmt.Sprintf(" load %g", s.Load)
	}
	return st + ": " + s.Why
}

// stepper runs a Resolver step by step against a fake source, checking
// what each Resolve reports.
type stepper struct {
	t   *testing.T
	r   *Resolver
	src *fakeSource
}

// resolve runs Resolve at t0+at and checks the members it reports changed
// (as "pool/member=state: why") and the pools to rebuild.
func (s *stepper) resolve(at time.Duration, changed []Key, want []string, pools ...string) {
	s.t.Helper()
	ch := s.r.Resolve(s.src, changed, t0.Add(at))
	var got []string
	for _, c := range ch.Served {
		got = append(got, c.Now.Key.String()+"="+served(c.Now))
	}
	if !slices.Equal(got, want) {
		s.t.Fatalf("at %v: changed\n %q\nwant\n %q", at, got, want)
	}
	if !slices.Equal(ch.Pools, pools) {
		s.t.Fatalf("at %v: pools %q, want %q", at, ch.Pools, pools)
	}
}

// next checks Next: at t0+at, or none for a negative at.
func (s *stepper) next(at time.Duration) {
	s.t.Helper()
	got, ok := s.r.Next()
	switch {
	case at < 0 && ok:
		s.t.Fatalf("Next = %v, want none", got.Sub(t0))
	case at >= 0 && (!ok || !got.Equal(t0.Add(at))):
		s.t.Fatalf("Next = %v (%v), want %v", got.Sub(t0), ok, at)
	}
}

func (s *stepper) state(k Key, want string) {
	s.t.Helper()
	st, ok := s.r.State(k)
	if !ok || served(st) != want {
		s.t.Fatalf("%v: %q (%v), want %q", k, served(st), ok, want)
	}
}

var (
	ka = Key{"web", "192.0.2.1"}
	kb = Key{"web", "192.0.2.2"}
	kc = Key{"lb", "192.0.2.9"}
)

func clusterMembers() []Member {
	return []Member{
		{Key: ka, CheckType: "http", InitialUp: true},
		{Key: kb, CheckType: "http", InitialUp: true},
		{Key: kc, CheckType: "load", InitialUp: false},
	}
}

// A cluster node's resolver, step by step: agreement, ageing by the
// clock, the quorum clock standing still, admin states, node changes.
func TestResolverCluster(t *testing.T) {
	r := NewResolver(Options{Self: "n1", Cluster: true, MaxAge: maxAge})
	s := &stepper{t: t, r: r, src: newSource()}
	if err := r.SetMembers(clusterMembers()); err != nil {
		t.Fatal(err)
	}
	r.SetNodes([]NodeID{"n3", "n1", "n2"})

	// First resolve: everyone, at their initial states.
	s.resolve(0, nil, []string{
		"web/192.0.2.1=up: not probed: up (no check, or initial state)" + ownSuffix,
		"web/192.0.2.2=up: not probed: up (no check, or initial state)" + ownSuffix,
		"lb/192.0.2.9=down: not probed yet: initial state down" + ownSuffix,
	}, "lb", "web")
	s.next(-1)

	// n2 and n3 see a down: a majority.
	s.src.set(ka, hv("n2", false, t0))
	s.src.set(ka, hv("n3", false, t0))
	s.resolve(time.Second, []Key{ka}, []string{"web/192.0.2.1=down: down by agreement of 3 probers"}, "web")
	s.next(maxAge + time.Nanosecond)

	// Nothing new: nothing to do, whatever the clock, until Next.
	s.resolve(2*time.Second, nil, nil)
	s.resolve(maxAge, nil, nil)
	s.state(ka, "down: down by agreement of 3 probers")

	// Refreshes from n2 and n3 move Next on.
	s.src.set(ka, hv("n2", false, t0.Add(10*time.Second)))
	s.src.set(ka, hv("n3", false, t0.Add(10*time.Second)))
	s.resolve(maxAge, []Key{ka}, nil)
	s.next(10*time.Second + maxAge + time.Nanosecond)

	// Out of quorum, the clock stands: nothing ages, however late it is.
	for range 3 {
		s.resolve(maxAge, nil, nil)
	}
	// Back in quorum long after: the verdicts are stale, own verdict again.
	s.resolve(time.Hour, nil, []string{"web/192.0.2.1=up: not probed: up (no check, or initial state)" + ownSuffix}, "web")
	s.next(-1)

	// This node's probe: its own verdict while the others say nothing.
	s.src.own[kb] = Own{Probed: true, Up: false, Err: "timeout", At: t0.Add(time.Hour)}
	s.resolve(time.Hour, []Key{kb}, []string{"web/192.0.2.2=down: probes fail: timeout" + ownSuffix}, "web")

	// A replicated admin state outranks it; keys of no member are ignored.
	s.src.admin[kb] = AdminUp
	s.resolve(time.Hour, []Key{kb, {"gone", "x"}}, []string{"web/192.0.2.2=up: forced up by an operator"}, "web")
	s.src.admin[kb] = AdminDrain
	s.resolve(time.Hour, []Key{kb}, []string{"web/192.0.2.2=drain: drained by an operator"}, "web")

	// Load: the probers' median, each report ageing on its own.
	h := t0.Add(time.Hour)
	s.src.set(kc, hv("n1", true, h))
	s.src.set(kc, hv("n2", true, h))
	s.src.set(kc, obs("n1", KindLoad, 10, h))
	s.src.set(kc, obs("n2", KindLoad, 30, h.Add(-20*time.Second)))
	s.src.set(kc, obs("n3", KindLoad, 12, h.Add(-10*time.Second)))
	s.resolve(time.Hour, []Key{kc}, []string{"lb/192.0.2.9=up load 12: up by agreement of 3 probers"}, "lb")
	s.next(time.Hour - 20*time.Second + maxAge + time.Nanosecond)
	s.resolve(time.Hour+11*time.Second, nil, []string{"lb/192.0.2.9=up load 11: up by agreement of 3 probers"}, "lb")
	s.next(time.Hour - 10*time.Second + maxAge + time.Nanosecond)
	// A change of reason alone (vantages going stale) is no change served.
	s.resolve(time.Hour+21*time.Second, nil, []string{"lb/192.0.2.9=up load 10: up by agreement of 3 probers"}, "lb")
	s.resolve(time.Hour+31*time.Second, nil, []string{"lb/192.0.2.9=down: not probed yet: initial state down" + ownSuffix}, "lb")

	// A fourth node: probers are recomputed for every member (with four
	// nodes all four probe); no served state changes by it here.
	r.SetNodes([]NodeID{"n1", "n2", "n3", "n4"})
	s.src.reads = 0
	s.resolve(time.Hour+31*time.Second, nil, nil)
	if s.src.reads != 3 {
		t.Fatalf("a node change re-resolved %d members, want all 3", s.src.reads)
	}
	if st, _ := r.State(ka); !slices.Equal(st.Probers, []NodeID{"n1", "n2", "n3", "n4"}) {
		t.Fatalf("probers after a node joined: %v", st.Probers)
	}
	// The same node list again is no change.
	r.SetNodes([]NodeID{"n4", "n3", "n2", "n1", "n1"})
	s.src.reads = 0
	s.resolve(time.Hour+31*time.Second, nil, nil)
	if s.src.reads != 0 {
		t.Fatalf("an unchanged node list re-resolved %d members", s.src.reads)
	}

	// A clock that goes back (never in normal running) re-resolves all:
	// lb's loads are fresh again by it (its verdicts are two of four).
	s.resolve(time.Hour, nil, []string{"lb/192.0.2.9=down load 12: not probed yet: initial state down" + ownSuffix}, "lb")
	if s.src.reads != 3 {
		t.Fatalf("a clock gone back re-resolved %d members, want all 3", s.src.reads)
	}

	// Touch defers a change to the next Resolve; TouchAll re-resolves all.
	s.src.admin[kb] = AdminDown
	r.Touch(kb)
	s.src.reads = 0
	s.resolve(time.Hour, nil, []string{"web/192.0.2.2=down: forced down by an operator"}, "web")
	s.src.admin[ka] = AdminDrain
	r.TouchAll()
	s.resolve(time.Hour, nil, []string{"web/192.0.2.1=drain: drained by an operator"}, "web")
	if s.src.reads != 1+3 {
		t.Fatalf("Touch then TouchAll read %d members, want 1 then 3", s.src.reads)
	}

	if got := r.Pool("web"); len(got) != 2 || got[0].Key != ka || got[1].Key != kb {
		t.Fatalf("Pool(web) = %+v", got)
	}
	if r.Pool("nope") != nil {
		t.Fatal("an unknown pool has states")
	}
	if all := r.States(); len(all) != 3 || all[2].Key != kc {
		t.Fatalf("States = %+v", all)
	}
}

// A new configuration: a kept member keeps its last probed verdict until
// the new configuration's probes have one, through configurations that
// never probed it; a member new to it starts from its initial state.
func TestResolverCarryOver(t *testing.T) {
	r := NewResolver(Options{Self: "n1"})
	s := &stepper{t: t, r: r, src: newSource()}
	gen1 := []Member{{Key: ka, CheckType: "http", InitialUp: true}, {Key: kb, CheckType: "http", InitialUp: true}}
	if err := r.SetMembers(gen1); err != nil {
		t.Fatal(err)
	}
	s.src.own[ka] = Own{Probed: true, Up: false, Err: "refused", At: t0}
	s.src.own[kb] = Own{Probed: true, Up: true, At: t0}
	s.resolve(0, nil, []string{"web/192.0.2.1=down: probes fail: refused", "web/192.0.2.2=up: probes pass"}, "web")

	// Generation 2 changes the check: its prober has no result yet.
	s.src.own = map[Key]Own{}
	kd := Key{"web", "192.0.2.4"}
	gen2 := []Member{{Key: ka, CheckType: "tcp", InitialUp: true}, {Key: kd, CheckType: "tcp", InitialUp: true}}
	if err := r.SetMembers(gen2); err != nil {
		t.Fatal(err)
	}
	s.resolve(time.Second, nil, []string{"web/192.0.2.4=up: not probed: up (no check, or initial state)"}, "web")
	s.state(ka, "down: probes fail: refused")
	if _, ok := r.State(kb); ok {
		t.Fatal("a member gone from the configuration still has a state")
	}
	// Generation 3 before generation 2 probed: still carried.
	if err := r.SetMembers(gen2); err != nil {
		t.Fatal(err)
	}
	s.resolve(2*time.Second, nil, nil)
	s.state(ka, "down: probes fail: refused")

	// The new probes answer: they decide from then on, and a later
	// configuration carries their verdict, not the old one.
	s.src.own[ka] = Own{Probed: true, Up: true, At: t0.Add(3 * time.Second)}
	s.resolve(3*time.Second, []Key{ka}, []string{"web/192.0.2.1=up: probes pass"}, "web")
	delete(s.src.own, ka)
	if err := r.SetMembers(gen2); err != nil {
		t.Fatal(err)
	}
	s.resolve(4*time.Second, nil, nil)
	s.state(ka, "up: probes pass")

	// A member this node may not probe carries nothing.
	s.src.own[ka] = Own{NotAllowed: true, Err: "exec checks are not allowed here"}
	s.resolve(5*time.Second, []Key{ka}, nil)
	s.state(ka, "up: not probed here: exec checks are not allowed here; initial state up")
}

func TestResolverSetMembersErrors(t *testing.T) {
	r := NewResolver(Options{})
	err := r.SetMembers([]Member{{Key: ka}, {Key: kb}, {Key: ka}})
	if !errors.Is(err, ErrDuplicateMember) {
		t.Fatalf("duplicate member: %v", err)
	}
	if _, ok := r.State(ka); ok {
		t.Fatal("a refused member list was taken")
	}
}

// The heap of deadlines stays ordered through sets and removals.
func TestDeadlines(t *testing.T) {
	var d deadlines
	d.reset(8)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	for i, s := range []int{5, 3, 8, 1, 9, 2, 7, 4} {
		d.set(int32(i), at(s))
	}
	d.remove(3)      // 1s
	d.set(4, at(0))  // 9s -> 0s
	d.set(0, at(10)) // 5s -> 10s
	d.remove(3)      // absent: nothing
	var got []int
	for i, _, ok := d.min(); ok; i, _, ok = d.min() {
		got = append(got, int(d.at[i].Sub(t0)/time.Second))
		d.remove(i)
	}
	if want := []int{0, 2, 3, 4, 7, 8, 10}; !slices.Equal(got, want) {
		t.Fatalf("popped %v, want %v", got, want)
	}
}

package probes

import (
	"errors"
	"math"
	"testing"
)

func TestHysteresis(t *testing.T) {
	tests := []struct {
		name       string
		initialUp  bool
		rise, fall int
		results    string // + success, - failure
		want       string // probe state after each result: U up, D down
	}{
		{"first success decides", false, 3, 3, "+", "U"},
		{"first failure decides", true, 3, 3, "-", "D"},
		{"fall 3", true, 2, 3, "+---", "UUUD"},
		{"rise 2", false, 2, 3, "-++", "DDU"},
		{"flap faster than fall keeps up", true, 2, 2, "+-+-+-+-", "UUUUUUUU"},
		{"flap faster than rise keeps down", true, 2, 2, "-+-+-+-+", "DDDDDDDD"},
		{"runs reset", true, 3, 3, "+--+--+---", "UUUUUUUUUD"},
		{"rise 1 fall 1 follows", true, 1, 1, "+-+-", "UDUD"},
		{"down then up again", true, 2, 2, "+--++", "UUDDU"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := state{initialUp: tc.initialUp}
			got := ""
			for _, c := range tc.results {
				s.result(c == '+', tc.rise, tc.fall)
				if s.probeUp {
					got += "U"
				} else {
					got += "D"
				}
			}
			if got != tc.want {
				t.Fatalf("states %s, want %s", got, tc.want)
			}
		})
	}
}

func TestResultReportsChange(t *testing.T) {
	s := state{initialUp: true}
	if s.result(true, 2, 2) {
		t.Error("first success of an initially up member reported as a change")
	}
	s = state{initialUp: true}
	if !s.result(false, 2, 2) {
		t.Error("first failure of an initially up member not reported as a change")
	}
	if s.result(false, 2, 2) || s.result(true, 2, 2) || !s.result(true, 2, 2) {
		t.Error("rise of 2 not reported on the second success")
	}
}

func TestAdminOutranksProbes(t *testing.T) {
	tests := []struct {
		admin                         Admin
		probeUp                       bool
		wantUp, wantForced, wantDrain bool
	}{
		{AdminAuto, true, true, false, false},
		{AdminAuto, false, false, false, false},
		{AdminUp, false, true, true, false},
		{AdminDown, true, false, true, false},
		{AdminDrain, true, true, false, true},
		{AdminDrain, false, false, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.admin.String(), func(t *testing.T) {
			s := state{admin: tc.admin, probed: true, probeUp: tc.probeUp}
			v := s.verdict(Key{}, 0, 0)
			if v.Up != tc.wantUp || v.Forced != tc.wantForced || v.Drain != tc.wantDrain || v.ProbeUp != tc.probeUp || v.Admin != tc.admin {
				t.Fatalf("verdict %+v, want up %v forced %v drain %v", v, tc.wantUp, tc.wantForced, tc.wantDrain)
			}
		})
	}
}

func TestInitialStateBeforeFirstResult(t *testing.T) {
	for _, initialUp := range []bool{true, false} {
		s := state{initialUp: initialUp}
		v := s.verdict(Key{}, 0, 0)
		if v.Up != initialUp || v.ProbeUp != initialUp || v.Probed {
			t.Errorf("initial up %v: verdict %+v", initialUp, v)
		}
	}
}

// TestLoadSmoothing feeds load reports and checks both the EWMA and that
// only moves beyond the threshold are passed on.
func TestLoadSmoothing(t *testing.T) {
	const alpha, threshold = 0.5, 0.1
	steps := []struct {
		report   float64
		smoothed float64 // EWMA after the report
		sent     float64 // load in the verdict passed on
		changed  bool
	}{
		{0.40, 0.40, 0.40, true}, // first report: taken as is
		{0.44, 0.42, 0.40, false},
		{0.46, 0.44, 0.40, false},
		{0.40, 0.42, 0.40, false},
		{0.90, 0.66, 0.66, true}, // moved 0.26 > 0.1
		{0.70, 0.68, 0.66, false},
		{0.10, 0.39, 0.39, true},
		{0.39, 0.39, 0.39, false},
	}
	s := state{initialUp: true}
	s.sent = s.verdict(Key{}, threshold, 0)
	for i, st := range steps {
		s.report(st.report, 10, alpha)
		if math.Abs(s.smoothed-st.smoothed) > 1e-9 {
			t.Fatalf("step %d: smoothed %g, want %g", i, s.smoothed, st.smoothed)
		}
		v := s.verdict(Key{}, threshold, 0)
		changed := differs(v, s.sent)
		if changed {
			s.sent = v
		}
		if changed != st.changed || math.Abs(v.Load-st.sent) > 1e-9 || !v.HasLoad || v.Capacity != 10 {
			t.Fatalf("step %d: verdict load %g (has %v, capacity %g) changed %v, want %g changed %v", i, v.Load, v.HasLoad, v.Capacity, changed, st.sent, st.changed)
		}
	}
}

func TestParseAdmin(t *testing.T) {
	for _, a := range []Admin{AdminAuto, AdminUp, AdminDown, AdminDrain} {
		got, err := ParseAdmin(a.String())
		if err != nil || got != a {
			t.Errorf("ParseAdmin(%q) = %v, %v", a.String(), got, err)
		}
	}
	if _, err := ParseAdmin("maintenance"); !errors.Is(err, ErrAdmin) {
		t.Errorf("ParseAdmin(maintenance) error %v, want ErrAdmin", err)
	}
}

func TestVerdictState(t *testing.T) {
	tests := []struct {
		s    state
		want string
	}{
		{state{initialUp: true}, "up, initial"},
		{state{initialUp: false}, "down, initial"},
		{state{probed: true, probeUp: true}, "up"},
		{state{probed: true}, "down"},
		{state{probed: true, admin: AdminUp}, "forced up (probes: down)"},
		{state{probed: true, probeUp: true, admin: AdminDown}, "forced down (probes: up)"},
		{state{initialUp: true, admin: AdminDrain}, "drain (probes: up, initial)"},
	}
	for _, tc := range tests {
		if got := tc.s.verdict(Key{}, 0, 0).State(); got != tc.want {
			t.Errorf("%+v: State() = %q, want %q", tc.s, got, tc.want)
		}
	}
}

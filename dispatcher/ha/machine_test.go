package ha

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const iv = 200 * time.Millisecond

// step is one event at a time offset, and the actions it must produce,
// written "take:g", "release:g", "announce:g".
type step struct {
	at    time.Duration
	event string // "tick", "reach down", "reach up", "resign", or "hb ID g=prio[+held] ..."
	want  []string
}

// hb parses "hb ID g1=100+ g2=50": priority 100 holding g1, 50 not holding g2.
func parseHB(t *testing.T, s string) Heartbeat {
	t.Helper()
	f := strings.Fields(s)
	hb := Heartbeat{ID: f[1], Interval: iv}
	for _, g := range f[2:] {
		name, rest, _ := strings.Cut(g, "=")
		held := strings.HasSuffix(rest, "+")
		var p int
		if _, err := fmt.Sscan(strings.TrimSuffix(rest, "+"), &p); err != nil {
			t.Fatalf("bad group %q", g)
		}
		hb.Groups = append(hb.Groups, GroupState{Name: name, Priority: uint8(p), Holding: held})
	}
	return hb
}

func run(t *testing.T, cfg MachineConfig, steps []step) *Machine {
	t.Helper()
	m := NewMachine(cfg, t0)
	for i, s := range steps {
		now := t0.Add(s.at)
		var acts []Action
		switch {
		case s.event == "tick":
			acts = m.Tick(now)
		case s.event == "reach down":
			acts = m.SetReach(now, false)
		case s.event == "reach up":
			acts = m.SetReach(now, true)
		case s.event == "resign":
			acts = m.Resign(now)
		case strings.HasPrefix(s.event, "hb "):
			acts = m.Receive(now, parseHB(t, s.event))
		default:
			t.Fatalf("step %d: unknown event %q", i, s.event)
		}
		got := []string{}
		for _, a := range acts {
			got = append(got, a.Kind.String()+":"+a.Group)
		}
		want := s.want
		if want == nil {
			want = []string{}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("step %d (%v %s): actions %v, want %v", i, s.at, s.event, got, want)
		}
	}
	return m
}

func cfg(id string, groups ...Group) MachineConfig {
	return MachineConfig{ID: id, Groups: groups, Interval: iv, DeadAfter: 3}
}

func TestMachine(t *testing.T) {
	a100 := Group{Name: "a", Priority: 100}
	a100p := Group{Name: "a", Priority: 100, Preempt: true}
	for _, tc := range []struct {
		name  string
		cfg   MachineConfig
		steps []step
	}{
		{"alone: waits the dead interval, then takes", cfg("n1", a100), []step{
			{0, "tick", nil},
			{599 * time.Millisecond, "tick", nil},
			{600 * time.Millisecond, "tick", []string{"take:a"}},
			{800 * time.Millisecond, "tick", nil},
		}},
		{"startup: a holder heard, stay backup", cfg("n1", a100p), []step{
			{100 * time.Millisecond, "hb n2 a=200+", nil},
			{300 * time.Millisecond, "hb n2 a=200+", nil},
			{500 * time.Millisecond, "hb n2 a=200+", nil},
			{700 * time.Millisecond, "tick", nil},
		}},
		{"startup: the higher peer is up but holds nothing yet: leave it to take", cfg("n1", a100), []step{
			{100 * time.Millisecond, "hb n2 a=200", nil},
			{650 * time.Millisecond, "tick", nil},
			{660 * time.Millisecond, "hb n2 a=200+", nil},
			// ...but if it dies before taking, we take.
			{1260 * time.Millisecond, "tick", []string{"take:a"}},
		}},
		{"startup: a lower peer up, no holder: take", cfg("n1", a100), []step{
			{100 * time.Millisecond, "hb n2 a=50", nil},
			{600 * time.Millisecond, "tick", []string{"take:a"}},
		}},
		{"peer loss: backup takes after 3 missed heartbeats", cfg("n1", a100), []step{
			{0, "hb n2 a=200+", nil},
			{200 * time.Millisecond, "hb n2 a=200+", nil},
			{700 * time.Millisecond, "tick", nil},
			{799 * time.Millisecond, "tick", nil},
			{800 * time.Millisecond, "tick", []string{"take:a"}},
		}},
		{"peer resigns (priority 0): take at once", cfg("n1", a100), []step{
			{0, "hb n2 a=200+", nil},
			{600 * time.Millisecond, "hb n2 a=200+", nil},
			{700 * time.Millisecond, "hb n2 a=0", []string{"take:a"}},
		}},
		{"no preemption: a higher peer returns, the holder keeps", cfg("n1", a100), []step{
			{600 * time.Millisecond, "tick", []string{"take:a"}},
			{700 * time.Millisecond, "hb n2 a=200", nil},
			{900 * time.Millisecond, "hb n2 a=200", nil},
			{1100 * time.Millisecond, "tick", nil},
		}},
		{"no preemption: we are higher but a lower peer holds: stay backup", cfg("n1", Group{Name: "a", Priority: 200}), []step{
			{0, "hb n2 a=100+", nil},
			{400 * time.Millisecond, "hb n2 a=100+", nil},
			{700 * time.Millisecond, "hb n2 a=100+", nil},
			{900 * time.Millisecond, "tick", nil},
		}},
		{"preemption: higher takes from a lower holder; the lower releases on seeing it", cfg("n1", Group{Name: "a", Priority: 200, Preempt: true}), []step{
			{0, "hb n2 a=100+", nil},
			{400 * time.Millisecond, "hb n2 a=100+", nil},
			{600 * time.Millisecond, "tick", []string{"take:a"}},
			{620 * time.Millisecond, "hb n2 a=100+", []string{"announce:a"}},
			{800 * time.Millisecond, "hb n2 a=100+", nil}, // announced once per conflict
			{1000 * time.Millisecond, "hb n2 a=100", nil},
		}},
		{"held: a preempting higher peer takes, we release", cfg("n1", a100), []step{
			{600 * time.Millisecond, "tick", []string{"take:a"}},
			{700 * time.Millisecond, "hb n2 a=200", nil},
			{900 * time.Millisecond, "hb n2 a=200+", []string{"release:a"}},
		}},
		{"equal priorities: the higher ID keeps, the lower releases", cfg("n1", a100), []step{
			{600 * time.Millisecond, "tick", []string{"take:a"}},
			{700 * time.Millisecond, "hb n2 a=100+", []string{"release:a"}},
		}},
		{"equal priorities: the lower ID holder stays when we have the higher ID", cfg("n2", a100), []step{
			{600 * time.Millisecond, "tick", []string{"take:a"}},
			{700 * time.Millisecond, "hb n1 a=100+", []string{"announce:a"}},
		}},
		{"equal priorities at start: only the higher ID takes", cfg("n1", a100), []step{
			{0, "hb n2 a=100", nil},
			{600 * time.Millisecond, "hb n2 a=100", nil},
			{650 * time.Millisecond, "tick", nil},
		}},
		{"split brain heals: the lower-priority holder releases", cfg("n1", a100p), []step{
			{600 * time.Millisecond, "tick", []string{"take:a"}},
			{5 * time.Second, "hb n2 a=150+", []string{"release:a"}},
			{5200 * time.Millisecond, "hb n2 a=150+", nil},
		}},
		{"reach target fails: give up, come back when it answers", cfg("n1", a100), []step{
			{600 * time.Millisecond, "tick", []string{"take:a"}},
			{700 * time.Millisecond, "reach down", []string{"release:a"}},
			{900 * time.Millisecond, "tick", nil},
			{1000 * time.Millisecond, "reach up", []string{"take:a"}},
		}},
		{"reach fails on the primary: it advertises 0, backup takes", cfg("n1", a100), []step{
			{0, "hb n2 a=200+", nil},
			{600 * time.Millisecond, "hb n2 a=200+", nil},
			{700 * time.Millisecond, "hb n2 a=0", []string{"take:a"}},
		}},
		{"resign releases everything", cfg("n1", a100, Group{Name: "b", Priority: 10}), []step{
			{600 * time.Millisecond, "tick", []string{"take:a", "take:b"}},
			{700 * time.Millisecond, "resign", []string{"release:a", "release:b"}},
			{5 * time.Second, "tick", nil},
		}},
		{"mutual: primary for a, backup for b", cfg("n1", Group{Name: "a", Priority: 200, Preempt: true}, Group{Name: "b", Priority: 100, Preempt: true}), []step{
			{0, "hb n2 a=100 b=200", nil},
			{400 * time.Millisecond, "hb n2 a=100 b=200+", nil},
			{600 * time.Millisecond, "tick", []string{"take:a"}},
			// n2 dies: take b too
			{1200 * time.Millisecond, "tick", []string{"take:b"}},
			// n2 returns, not holding: it will take b back; we keep a
			{1300 * time.Millisecond, "hb n2 a=100 b=200", nil},
			{1500 * time.Millisecond, "hb n2 a=100 b=200+", []string{"release:b"}},
		}},
		{"a peer without the group does not count", cfg("n1", a100), []step{
			{0, "hb n2 other=255+", nil},
			{600 * time.Millisecond, "hb n2 other=255+", []string{"take:a"}},
		}},
		{"our own id is ignored", cfg("n1", a100), []step{
			{0, "hb n1 a=255+", nil},
			{600 * time.Millisecond, "tick", []string{"take:a"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { run(t, tc.cfg, tc.steps) })
	}
}

func TestMachineHeartbeat(t *testing.T) {
	m := run(t, cfg("n1", Group{Name: "a", Priority: 100}, Group{Name: "b", Priority: 50}), []step{
		{0, "hb n2 b=200+", nil},
		{600 * time.Millisecond, "hb n2 b=200+", []string{"take:a"}},
	})
	hb := m.Heartbeat()
	want := []GroupState{{"a", 100, true}, {"b", 50, false}}
	if hb.ID != "n1" || hb.Interval != iv || !slices.Equal(hb.Groups, want) {
		t.Fatalf("heartbeat %+v, want groups %v", hb, want)
	}
	m.SetReach(t0.Add(time.Second), false)
	hb = m.Heartbeat()
	want = []GroupState{{"a", 0, false}, {"b", 0, false}}
	if !slices.Equal(hb.Groups, want) {
		t.Fatalf("heartbeat while unreachable %+v, want %v", hb.Groups, want)
	}
}

func TestMachineDeadline(t *testing.T) {
	m := NewMachine(cfg("n1", Group{Name: "a", Priority: 100}), t0)
	if got, want := m.Deadline(t0), t0.Add(600*time.Millisecond); !got.Equal(want) {
		t.Fatalf("deadline at start %v, want end of start wait %v", got, want)
	}
	m.Receive(t0.Add(100*time.Millisecond), parseHB(t, "hb n2 a=200+"))
	m.Receive(t0.Add(300*time.Millisecond), parseHB(t, "hb n3 a=150"))
	now := t0.Add(650 * time.Millisecond)
	if got, want := m.Deadline(now), t0.Add(700*time.Millisecond); !got.Equal(want) {
		t.Fatalf("deadline %v, want n2's death at %v", got, want)
	}
	if acts := m.Tick(m.Deadline(now)); len(acts) != 0 {
		t.Fatalf("n3 (150) is alive and above us: %v", acts)
	}
	if got := m.Deadline(t0.Add(2 * time.Second)); !got.IsZero() {
		t.Fatalf("nothing pending, got %v", got)
	}
}

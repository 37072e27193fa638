package health

import (
	"testing"
	"time"
)

func TestParseAdminShed(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Admin
		shed float64
		err  bool
	}{
		{in: "shed:30", want: AdminShed(30), shed: 0.3},
		{in: "shed:1", want: AdminShed(1), shed: 0.01},
		{in: "shed:100", want: AdminDrain, shed: 1},
		{in: "shed:0", err: true},
		{in: "shed:101", err: true},
		{in: "shed:x", err: true},
		{in: "drain", want: AdminDrain, shed: 1},
		{in: "auto", want: AdminAuto},
	} {
		t.Run(tc.in, func(t *testing.T) {
			a, err := ParseAdmin(tc.in)
			if tc.err {
				if err == nil {
					t.Fatalf("ParseAdmin(%q) = %v, want an error", tc.in, a)
				}
				return
			}
			if err != nil || a != tc.want || a.Shed() != tc.shed {
				t.Fatalf("ParseAdmin(%q) = %v (shed %g), %v; want %v (shed %g)", tc.in, a, a.Shed(), err, tc.want, tc.shed)
			}
			if b, err := ParseAdmin(a.String()); err != nil || b != a {
				t.Fatalf("ParseAdmin(%q) = %v, %v: String does not round-trip", a.String(), b, err)
			}
		})
	}
}

func TestDecideShedAndLatency(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := Member{Key: Key{"web", "192.0.2.1"}, CheckType: "http", InitialUp: true}
	own := Own{Probed: true, Up: true, At: t0, Latency: 0.020, HasLatency: true}

	t.Run("standalone", func(t *testing.T) {
		s := Decide(Inputs{Member: m, Own: own, Admin: AdminShed(40), AdminSet: true}, Params{Self: "n1", Clock: t0})
		if !s.Up || s.Drain || s.Shed != 0.4 {
			t.Fatalf("state %+v: want up, not drained, shed 0.4", s)
		}
		if len(s.Latency) != 1 || s.Latency[0].Node != "n1" || s.Latency[0].Value != 0.020 {
			t.Fatalf("latency %+v: want this node's own 20ms", s.Latency)
		}
	})
	t.Run("cluster: fresh latencies by node", func(t *testing.T) {
		lat := []Observation{
			{Node: "n2", Kind: KindLatency, Value: 0.050, At: t0},
			{Node: "n1", Kind: KindLatency, Value: 0.010, At: t0},
			{Node: "n3", Kind: KindLatency, Value: 0.090, At: t0.Add(-time.Hour)}, // stale
		}
		s := Decide(Inputs{Member: m, Own: own, Latency: lat, Probers: []NodeID{"n1", "n2", "n3"}},
			Params{Self: "n1", Cluster: true, Clock: t0, MaxAge: time.Minute})
		if len(s.Latency) != 2 || s.Latency[0].Node != "n1" || s.Latency[1].Node != "n2" {
			t.Fatalf("latency %+v: want n1's and n2's (n3's is stale), by node", s.Latency)
		}
		if s.Shed != 0 {
			t.Fatalf("shed %g without an admin state", s.Shed)
		}
	})
}

func TestOwnReportsLatency(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := Member{Key: Key{"web", "192.0.2.1"}, CheckType: "tcp"}
	rs := OwnReports(nil, m, Own{Probed: true, Up: true, At: t0, Latency: 0.003, HasLatency: true}, t0)
	if len(rs) != 2 || rs[1].Kind != KindLatency || rs[1].Value != 0.003 {
		t.Fatalf("reports %+v: want health, then latency 0.003", rs)
	}
}

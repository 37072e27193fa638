package control

import (
	"testing"
	"time"

	"github.com/ternlb/tern/dispatcher/control/controltest"
	"github.com/ternlb/tern/dispatcher/datapath"
)

// TestFlowEstimate feeds the estimator readings of the datapath's TCP
// counters, one per step, and checks the active-flow estimate after each.
func TestFlowEstimate(t *testing.T) {
	const lifetime = 60 * time.Second
	type step struct {
		at   time.Duration       // since the first reading
		c    datapath.TCPCounter // cumulative, as the datapath reports
		want uint64
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"opened then closed returns to 0", []step{
			{0, datapath.TCPCounter{}, 0},
			{5 * time.Second, datapath.TCPCounter{Opened: 10}, 10},
			{10 * time.Second, datapath.TCPCounter{Opened: 12, Fin: 4}, 8},
			{15 * time.Second, datapath.TCPCounter{Opened: 12, Fin: 9, Reset: 3}, 0},
		}},
		{"stray resets are not closes", []step{
			{0, datapath.TCPCounter{}, 0},
			{5 * time.Second, datapath.TCPCounter{Opened: 2}, 2},
			// One flow's FIN, then its stray RSTs answering the server's late data.
			{10 * time.Second, datapath.TCPCounter{Opened: 2, Fin: 1, StrayReset: 3}, 1},
		}},
		{"surplus closes clamp at 0 and are forgotten", []step{
			{0, datapath.TCPCounter{}, 0},
			{5 * time.Second, datapath.TCPCounter{Opened: 2}, 2},
			{10 * time.Second, datapath.TCPCounter{Opened: 2, Fin: 5}, 0}, // retransmitted FINs
			{15 * time.Second, datapath.TCPCounter{Opened: 6, Fin: 5}, 4}, // not 1: the surplus does not linger
		}},
		{"flows never seen closing age out after the lifetime", []step{
			{0, datapath.TCPCounter{}, 0},
			{5 * time.Second, datapath.TCPCounter{Opened: 10}, 10},
			{30 * time.Second, datapath.TCPCounter{Opened: 15}, 15},
			{64 * time.Second, datapath.TCPCounter{Opened: 15}, 15}, // the 10 are within a lifetime (+ one mark step)
			{70 * time.Second, datapath.TCPCounter{Opened: 15}, 5},  // the 10 opened at 5s are gone
			{95 * time.Second, datapath.TCPCounter{Opened: 15}, 0},  // and the 5 opened at 30s
			{100 * time.Second, datapath.TCPCounter{Opened: 17}, 2}, // new ones count again
			{105 * time.Second, datapath.TCPCounter{Opened: 17, Fin: 2}, 0},
		}},
		{"a flow longer than the lifetime is undercounted", []step{
			{0, datapath.TCPCounter{}, 0},
			{1 * time.Second, datapath.TCPCounter{Opened: 1}, 1},
			{2 * time.Minute, datapath.TCPCounter{Opened: 1}, 0},
			{3 * time.Minute, datapath.TCPCounter{Opened: 1, Fin: 1}, 0}, // its close does not go negative
		}},
		{"restart over pinned counters carries opened minus closed", []step{
			{0, datapath.TCPCounter{Opened: 100, Fin: 30, Reset: 10, StrayReset: 50}, 60},
			{10 * time.Second, datapath.TCPCounter{Opened: 105, Fin: 40, Reset: 10, StrayReset: 50}, 55},
			{50 * time.Second, datapath.TCPCounter{Opened: 105, Fin: 40, Reset: 10, StrayReset: 50}, 55},
			{65 * time.Second, datapath.TCPCounter{Opened: 105, Fin: 40, Reset: 10, StrayReset: 50}, 5}, // the carried flows aged out
		}},
		{"restart where closes exceed opens carries 0", []step{
			{0, datapath.TCPCounter{Opened: 10, Fin: 12}, 0},
			{5 * time.Second, datapath.TCPCounter{Opened: 11, Fin: 12}, 1},
		}},
		{"counters restarted (service re-created) count from 0", []step{
			{0, datapath.TCPCounter{}, 0},
			{5 * time.Second, datapath.TCPCounter{Opened: 50, Fin: 20}, 30},
			{10 * time.Second, datapath.TCPCounter{Opened: 4}, 34},
			{15 * time.Second, datapath.TCPCounter{Opened: 4, Fin: 4}, 30},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e flowEstimate
			t0 := time.Unix(1_000_000, 0)
			for i, s := range tc.steps {
				e.update(t0.Add(s.at), s.c, lifetime)
				if e.active != s.want {
					t.Fatalf("step %d (at %v, %+v): active %d, want %d", i, s.at, s.c, e.active, s.want)
				}
			}
		})
	}
}

// TestFlowEstimateMarksBounded samples every 10ms for three lifetimes: the
// estimator keeps a bounded number of marks and still ages flows out.
func TestFlowEstimateMarksBounded(t *testing.T) {
	const lifetime = time.Minute
	var e flowEstimate
	t0 := time.Unix(1_000_000, 0)
	c := datapath.TCPCounter{}
	for at := time.Duration(0); at <= 3*lifetime; at += 10 * time.Millisecond {
		if at == time.Second {
			c.Opened += 7
		}
		e.update(t0.Add(at), c, lifetime)
		if len(e.marks) > markSteps+2 {
			t.Fatalf("at %v: %d marks", at, len(e.marks))
		}
		if at == 30*time.Second && e.active != 7 {
			t.Fatalf("at 30s: active %d, want 7", e.active)
		}
	}
	if e.active != 0 {
		t.Fatalf("after three lifetimes: active %d, want 0", e.active)
	}
}

// TestControlLoadFlows checks that Load sums the estimates of a VIP's TCP
// services, with totals and rates of new flows.
func TestControlLoadFlows(t *testing.T) {
	f := controltest.NewMaps(t)
	c, err := New(f, ctlSpec(), Options{OwnAll: true, FlowLifetime: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctlReconcile(t, c)
	web2 := datapath.ServiceKey{VIP: ctlWeb.VIP, Port: 443, Proto: datapath.ProtoTCP}
	t0 := time.Unix(1000, 0)
	read := func(at time.Duration, tcp map[datapath.ServiceKey]datapath.TCPCounter) VIPLoad {
		t.Helper()
		f.Reading = datapath.Counters{Services: map[datapath.ServiceKey]datapath.Counter{ctlWeb: {}, ctlDNS: {}}, TCP: tcp}
		c.sampleLoad(f, t0.Add(at))
		for _, l := range c.Load() {
			if l.VIP == ctlWeb.VIP {
				return l
			}
		}
		t.Fatalf("no load for %s", ctlWeb.VIP)
		return VIPLoad{}
	}
	read(0, map[datapath.ServiceKey]datapath.TCPCounter{ctlWeb: {}, web2: {}})
	l := read(2*time.Second, map[datapath.ServiceKey]datapath.TCPCounter{ctlWeb: {Opened: 10, Fin: 2}, web2: {Opened: 6}})
	if l.ActiveFlows != 14 || l.NewFlows != 16 || l.NewFlowRate != 8 {
		t.Fatalf("after 2s: %+v, want 14 active, 16 new, 8 new per second", l)
	}
	// web2 removed: its flows leave the sum.
	l = read(4*time.Second, map[datapath.ServiceKey]datapath.TCPCounter{ctlWeb: {Opened: 10, Fin: 10}})
	if l.ActiveFlows != 0 || l.NewFlows != 10 || l.NewFlowRate != 0 {
		t.Fatalf("after 4s: %+v, want 0 active, 10 new, rate 0", l)
	}
	for _, l := range c.Load() {
		if l.VIP != ctlWeb.VIP && (l.ActiveFlows != 0 || l.NewFlows != 0) {
			t.Errorf("UDP-only VIP %s reports flows: %+v", l.VIP, l)
		}
	}
	if c.flowLifetime != time.Minute {
		t.Errorf("flow lifetime %v, want the option's 1m", c.flowLifetime)
	}
	if d, _ := New(f, ctlSpec(), Options{}); d.flowLifetime != DefaultFlowLifetime {
		t.Errorf("default flow lifetime %v, want %v", d.flowLifetime, DefaultFlowLifetime)
	}
}

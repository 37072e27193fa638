package node

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/health"
	"github.com/ternlb/tern/probes"
	"github.com/ternlb/tern/raftstore"
)

var rt0 = time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)

// applyAll builds a replicated state by applying bs to a fresh FSM, as
// raft would.
func applyAll(t testing.TB, bs ...raftstore.Body) *raftstore.FSM {
	t.Helper()
	f := raftstore.NewFSM()
	for _, b := range bs {
		apply(t, f, b)
	}
	return f
}

func apply(t testing.TB, f *raftstore.FSM, b raftstore.Body) {
	t.Helper()
	data, err := raftstore.EncodeCommand(b)
	if err != nil {
		t.Fatalf("encode %s: %v", b.Type(), err)
	}
	if err, ok := f.Apply(&raft.Log{Index: f.Applied() + 1, Term: 1, Type: raft.LogCommand, Data: data}).(error); ok {
		t.Fatalf("apply %s: %v", b.Type(), err)
	}
}

// observation is node's batch of one report of pool/member.
func observation(node raftstore.NodeID, kind health.Kind, pool, member string, value float64, at time.Time) raftstore.Observations {
	return raftstore.Observations{Node: node, Reports: []raftstore.ObservationReport{{Pool: pool, Member: member, Kind: kind, Value: value, At: at}}}
}

func loadConfig() *config.Config {
	return &config.Config{
		Checks: map[string]config.Check{"agent": {Type: "load"}, "web": {Type: "http"}},
		Pools: map[string]config.Pool{
			"lb":   {Check: "agent", Members: []config.Member{{Address: "192.0.2.1"}, {Address: "192.0.2.2"}}},
			"http": {Check: "web", Members: []config.Member{{Address: "192.0.2.9"}}},
		},
	}
}

// reportsIn is a reportInput over loadConfig's members, this node's
// verdicts vs and the replicated state st, every member assigned.
func reportsIn(self raftstore.NodeID, st *raftstore.State, vs []probes.Verdict, now time.Time) reportInput {
	cfg := loadConfig()
	return reportInput{
		members:  membersOf(cfg.PoolNames(), cfg.Pools, cfg.Checks, false),
		assigned: func(health.Member) bool { return true },
		own: func(k health.Key) health.Own {
			for _, v := range vs {
				if v.Key == (probes.Key{Pool: k.Pool, Member: k.Member}) {
					return ownOf(v)
				}
			}
			return health.Own{}
		},
		held: func(k health.Key, kind health.Kind) (health.Observation, bool) {
			return st.Observation(self, k.Pool, k.Member, kind)
		},
		now:     now,
		refresh: 10 * time.Second,
	}
}

// A node proposes, in one batch, its verdicts and its members' smoothed
// loads (load checks only, once reported), on change and on refresh;
// after its batch is applied, it has nothing more to say until something
// changes.
func TestReportBatch(t *testing.T) {
	self := raftstore.NodeID("n1")
	lv := func(member string, up bool, load float64, hasLoad bool, checked time.Time) probes.Verdict {
		return probes.Verdict{Key: probes.Key{Pool: "lb", Member: member}, Probed: true, ProbeUp: up,
			Load: load, HasLoad: hasLoad, Checked: checked}
	}
	held := func(member string, load float64, at time.Time) raftstore.Body {
		return raftstore.Observations{Node: self, Reports: []raftstore.ObservationReport{
			{Pool: "lb", Member: member, Kind: health.KindHealth, Value: 1, At: at},
			{Pool: "lb", Member: member, Kind: health.KindLoad, Value: load, At: at}}}
	}
	for _, tc := range []struct {
		name string
		held []raftstore.Body
		vs   []probes.Verdict
		now  time.Time
		want []string // kind/member in the batch
		next time.Time
	}{
		{"none held: every verdict and reported load", nil,
			[]probes.Verdict{lv("192.0.2.1", true, 10, true, rt0), lv("192.0.2.2", true, 20, true, rt0)}, rt0,
			[]string{"health/192.0.2.1", "load/192.0.2.1", "health/192.0.2.2", "load/192.0.2.2"}, rt0.Add(7500 * time.Millisecond)},
		{"no load report yet: the verdict only", nil,
			[]probes.Verdict{lv("192.0.2.1", false, 0, false, rt0)}, rt0, []string{"health/192.0.2.1"}, rt0.Add(7500 * time.Millisecond)},
		{"not probed yet: nothing", nil,
			[]probes.Verdict{{Key: probes.Key{Pool: "lb", Member: "192.0.2.1"}}}, rt0, nil, time.Time{}},
		{"not a load check: the verdict only", nil,
			[]probes.Verdict{{Key: probes.Key{Pool: "http", Member: "192.0.2.9"}, Probed: true, Load: 5, HasLoad: true, Checked: rt0}}, rt0,
			[]string{"health/192.0.2.9"}, rt0.Add(7500 * time.Millisecond)},
		{"held the same and recent: nothing", []raftstore.Body{held("192.0.2.1", 10, rt0)},
			[]probes.Verdict{lv("192.0.2.1", true, 10, true, rt0.Add(time.Second))}, rt0.Add(time.Second), nil, rt0.Add(7500 * time.Millisecond)},
		{"load changed: that report", []raftstore.Body{held("192.0.2.1", 10, rt0)},
			[]probes.Verdict{lv("192.0.2.1", true, 30, true, rt0.Add(time.Second))}, rt0.Add(time.Second), []string{"load/192.0.2.1"}, rt0.Add(7500 * time.Millisecond)},
		{"verdict changed: that report", []raftstore.Body{held("192.0.2.1", 10, rt0)},
			[]probes.Verdict{lv("192.0.2.1", false, 10, true, rt0.Add(time.Second))}, rt0.Add(time.Second), []string{"health/192.0.2.1"}, rt0.Add(7500 * time.Millisecond)},
		{"held the same but older than the refresh: both", []raftstore.Body{held("192.0.2.1", 10, rt0)},
			[]probes.Verdict{lv("192.0.2.1", true, 10, true, rt0.Add(11*time.Second))}, rt0.Add(11 * time.Second),
			[]string{"health/192.0.2.1", "load/192.0.2.1"}, rt0.Add(18500 * time.Millisecond)},
		{"within a quarter period of the refresh: early", []raftstore.Body{held("192.0.2.1", 10, rt0)},
			[]probes.Verdict{lv("192.0.2.1", true, 10, true, rt0.Add(8*time.Second))}, rt0.Add(8 * time.Second),
			[]string{"health/192.0.2.1", "load/192.0.2.1"}, rt0.Add(15500 * time.Millisecond)},
		{"old but no newer probe: nothing, looked at a tick later", []raftstore.Body{held("192.0.2.1", 10, rt0)},
			[]probes.Verdict{lv("192.0.2.1", true, 10, true, rt0)}, rt0.Add(11 * time.Second), nil, rt0.Add(11*time.Second + tick)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := applyAll(t, append([]raftstore.Body{raftstore.RegisterNode{ID: self, Raft: "127.0.0.1:1", API: "127.0.0.1:2"}}, tc.held...)...)
			out, next := reportBatch(reportsIn(self, f.State(), tc.vs, tc.now))
			var got []string
			for _, r := range out {
				got = append(got, string(r.Kind)+"/"+r.Key.Member)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("batch %v, want %v", got, tc.want)
			}
			if !next.Equal(tc.next) {
				t.Errorf("next look %v, want %v", next, tc.next)
			}
			if len(out) == 0 {
				return
			}
			b := raftstore.Observations{Node: self}
			for _, r := range out {
				b.Reports = append(b.Reports, raftstore.ObservationReport{Pool: r.Key.Pool, Member: r.Key.Member, Kind: r.Kind, Value: r.Value, At: r.At})
			}
			apply(t, f, b)
			if again, _ := reportBatch(reportsIn(self, f.State(), tc.vs, tc.now)); len(again) > 0 {
				t.Fatalf("after the batch is applied, still to propose: %+v", again)
			}
		})
	}
}

// Only the members assigned to this node are reported.
func TestReportBatchAssigned(t *testing.T) {
	var bs []raftstore.Body
	var nodes []health.NodeID
	for _, id := range []raftstore.NodeID{"a", "b", "c", "d", "e", "f"} {
		bs = append(bs, raftstore.RegisterNode{ID: id, Raft: "127.0.0.1:1", API: "127.0.0.1:2"})
		nodes = append(nodes, health.NodeID(id))
	}
	st := applyAll(t, bs...).State()
	vs := []probes.Verdict{
		{Key: probes.Key{Pool: "lb", Member: "192.0.2.1"}, Probed: true, Load: 1, HasLoad: true, Checked: rt0},
		{Key: probes.Key{Pool: "lb", Member: "192.0.2.2"}, Probed: true, Load: 2, HasLoad: true, Checked: rt0},
	}
	reports := 0
	for _, self := range nodes {
		in := reportsIn(raftstore.NodeID(self), st, vs, rt0)
		in.assigned = func(m health.Member) bool { return health.Assigned(self, m.Key, nodes, 0) }
		out, _ := reportBatch(in)
		for _, r := range out {
			if !health.Assigned(self, r.Key, nodes, 0) {
				t.Errorf("%s reports %s, not assigned to it", self, r.Key)
			}
			reports++
		}
	}
	if reports != 2*2*3 {
		t.Fatalf("%d reports (health and load) from 6 nodes for 2 members, want 3 nodes' each", reports)
	}
}

// Each member is probed by every node up to five, by exactly three of six,
// and the assignment follows the node list as it changes.
func TestAssignFilter(t *testing.T) {
	all := []raftstore.NodeID{"n1", "n2", "n3", "n4", "n5", "n6"}
	var cur []raftstore.NodeID
	filters := map[raftstore.NodeID]func(pool, member string) bool{}
	for _, id := range all {
		filters[id] = assignFilter(id, func() []raftstore.NodeID { return cur })
	}
	for _, tc := range []struct {
		nodes []raftstore.NodeID
		want  int
	}{
		{all, 3},
		{all[:5], 5},
		{all[:3], 3},
		{all[:1], 1},
	} {
		t.Run(fmt.Sprintf("%d nodes", len(tc.nodes)), func(t *testing.T) {
			cur = tc.nodes
			var ids []health.NodeID
			for _, id := range tc.nodes {
				ids = append(ids, health.NodeID(id))
			}
			for i := range 50 {
				member := fmt.Sprintf("192.0.2.%d", i)
				var probers []health.NodeID
				for _, id := range tc.nodes {
					if filters[id]("web", member) {
						probers = append(probers, health.NodeID(id))
					}
				}
				if len(probers) != tc.want {
					t.Fatalf("%s probed by %v, want %d nodes", member, probers, tc.want)
				}
				want := health.Probers(health.Key{Pool: "web", Member: member}, ids, 0)
				slices.Sort(want)
				if !slices.Equal(probers, want) {
					t.Fatalf("%s probed by %v, but its verdicts are agreed among %v", member, probers, want)
				}
			}
		})
	}
	// A node not yet registered (joining) probes everything until it is.
	cur = nil
	if !filters["n6"]("web", "192.0.2.1") {
		t.Fatal("an unregistered node must probe every member")
	}
	cur = all[:3]
	n := 0
	for i := range 50 {
		if filters["n6"]("web", fmt.Sprintf("192.0.2.%d", i)) {
			n++
		}
	}
	if n != 50 {
		t.Fatalf("node 4 of 4 (itself not yet registered) probes %d of 50 members, want all", n)
	}
}

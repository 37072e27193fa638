package node

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/probes"
	"github.com/ternlb/tern/raftstore"
)

var rt0 = time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)

// applyAll builds a replicated state by applying bs to a fresh FSM, as
// raft would.
func applyAll(t *testing.T, bs ...raftstore.Body) *raftstore.FSM {
	t.Helper()
	f := raftstore.NewFSM()
	for _, b := range bs {
		apply(t, f, b)
	}
	return f
}

func apply(t *testing.T, f *raftstore.FSM, b raftstore.Body) {
	t.Helper()
	data, err := raftstore.EncodeCommand(b)
	if err != nil {
		t.Fatalf("encode %s: %v", b.Type(), err)
	}
	if err, ok := f.Apply(&raft.Log{Index: f.Applied() + 1, Term: 1, Type: raft.LogCommand, Data: data}).(error); ok {
		t.Fatalf("apply %s: %v", b.Type(), err)
	}
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

// A node proposes its members' smoothed loads (load checks only, once
// reported), on change and on refresh, exactly like verdicts; after its
// batch is applied, it has nothing more to say until something changes.
func TestLoadBatch(t *testing.T) {
	self := raftstore.NodeID("n1")
	lv := func(member string, load float64, hasLoad bool, checked time.Time) probes.Verdict {
		return probes.Verdict{Key: probes.Key{Pool: "lb", Member: member}, Probed: true, ProbeUp: true,
			Load: load, HasLoad: hasLoad, Capacity: 100, Checked: checked}
	}
	held := func(member string, load float64, at time.Time) raftstore.Body {
		return raftstore.Loads{Node: self, Loads: []raftstore.LoadReport{{Pool: "lb", Member: member, Load: load, Capacity: 100, At: at}}}
	}
	for _, tc := range []struct {
		name string
		held []raftstore.Body
		vs   []probes.Verdict
		now  time.Time
		want []string // members in the batch
	}{
		{"none held: every reported load", nil,
			[]probes.Verdict{lv("192.0.2.1", 10, true, rt0), lv("192.0.2.2", 20, true, rt0)}, rt0, []string{"192.0.2.1", "192.0.2.2"}},
		{"no report yet: nothing", nil,
			[]probes.Verdict{lv("192.0.2.1", 0, false, rt0)}, rt0, nil},
		{"not a load check: nothing", nil,
			[]probes.Verdict{{Key: probes.Key{Pool: "http", Member: "192.0.2.9"}, Probed: true, Load: 5, HasLoad: true, Checked: rt0}}, rt0, nil},
		{"held the same and recent: nothing", []raftstore.Body{held("192.0.2.1", 10, rt0)},
			[]probes.Verdict{lv("192.0.2.1", 10, true, rt0.Add(time.Second))}, rt0.Add(time.Second), nil},
		{"changed: proposed", []raftstore.Body{held("192.0.2.1", 10, rt0)},
			[]probes.Verdict{lv("192.0.2.1", 30, true, rt0.Add(time.Second))}, rt0.Add(time.Second), []string{"192.0.2.1"}},
		{"held the same but older than the refresh: proposed", []raftstore.Body{held("192.0.2.1", 10, rt0)},
			[]probes.Verdict{lv("192.0.2.1", 10, true, rt0.Add(11*time.Second))}, rt0.Add(11 * time.Second), []string{"192.0.2.1"}},
		{"old but no newer probe: nothing", []raftstore.Body{held("192.0.2.1", 10, rt0)},
			[]probes.Verdict{lv("192.0.2.1", 10, true, rt0)}, rt0.Add(11 * time.Second), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := applyAll(t, append([]raftstore.Body{raftstore.RegisterNode{ID: self, Raft: "127.0.0.1:1", API: "127.0.0.1:2"}}, tc.held...)...)
			in := reportInput{self: self, st: f.State(), cfg: loadConfig(), vs: tc.vs, now: tc.now, refresh: 10 * time.Second}
			in.nodes = nodeIDs(in.st)
			b := loadBatch(in)
			var got []string
			if b != nil {
				for _, l := range b.(raftstore.Loads).Loads {
					got = append(got, l.Member)
					if l.Capacity != 100 {
						t.Errorf("%s: capacity %v, want 100", l.Member, l.Capacity)
					}
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("batch members %v, want %v", got, tc.want)
			}
			if b == nil {
				return
			}
			apply(t, f, b)
			in.st = f.State()
			if again := loadBatch(in); again != nil {
				t.Fatalf("after the batch is applied, still to propose: %+v", again)
			}
			if vb := verdictBatch(in); vb == nil || len(vb.(raftstore.Verdicts).Verdicts) != len(tc.vs) {
				t.Fatalf("verdicts go through the same path: %+v", vb)
			}
		})
	}
}

// Only the members assigned to this node are reported.
func TestLoadBatchAssigned(t *testing.T) {
	var bs []raftstore.Body
	var nodes []raftstore.NodeID
	for _, id := range []raftstore.NodeID{"a", "b", "c", "d", "e", "f"} {
		bs = append(bs, raftstore.RegisterNode{ID: id, Raft: "127.0.0.1:1", API: "127.0.0.1:2"})
		nodes = append(nodes, id)
	}
	st := applyAll(t, bs...).State()
	vs := []probes.Verdict{
		{Key: probes.Key{Pool: "lb", Member: "192.0.2.1"}, Probed: true, Load: 1, HasLoad: true, Checked: rt0},
		{Key: probes.Key{Pool: "lb", Member: "192.0.2.2"}, Probed: true, Load: 2, HasLoad: true, Checked: rt0},
	}
	reports := 0
	for _, self := range nodes {
		in := reportInput{self: self, nodes: nodes, st: st, cfg: loadConfig(), vs: vs, now: rt0, refresh: time.Second}
		if b := loadBatch(in); b != nil {
			for _, l := range b.(raftstore.Loads).Loads {
				if !raftstore.Assigned(self, raftstore.MemberKey{Pool: l.Pool, Member: l.Member}, nodes, 0) {
					t.Errorf("%s reports %s, not assigned to it", self, l.Member)
				}
				reports++
			}
		}
	}
	if reports != 2*3 {
		t.Fatalf("%d load reports from 6 nodes for 2 members, want 3 each", reports)
	}
}

func TestServedLoad(t *testing.T) {
	key := raftstore.MemberKey{Pool: "lb", Member: "192.0.2.1"}
	rep := func(node raftstore.NodeID, load float64, at time.Time) raftstore.Body {
		return raftstore.Loads{Node: node, Loads: []raftstore.LoadReport{{Pool: key.Pool, Member: key.Member, Load: load, At: at}}}
	}
	probers := []raftstore.NodeID{"a", "b", "c"}
	maxAge := 30 * time.Second
	for _, tc := range []struct {
		name    string
		reports []raftstore.Body
		want    float64
		ok      bool
	}{
		{"median of three, an outlier ignored", []raftstore.Body{rep("a", 10, rt0), rep("b", 12, rt0), rep("c", 90, rt0)}, 12, true},
		{"a stale report left out, two averaged", []raftstore.Body{rep("a", 10, rt0), rep("b", 12, rt0), rep("c", 90, rt0.Add(-time.Minute))}, 11, true},
		{"a non-prober's report ignored", []raftstore.Body{rep("a", 10, rt0), rep("z", 1000, rt0)}, 10, true},
		{"none fresh: none", []raftstore.Body{rep("a", 10, rt0.Add(-time.Minute))}, 0, false},
		{"none at all", nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := applyAll(t, tc.reports...).State()
			got, ok := servedLoad(st, key, probers, rt0.Add(time.Second), maxAge)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("servedLoad = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
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
			for i := range 50 {
				member := fmt.Sprintf("192.0.2.%d", i)
				var probers []raftstore.NodeID
				for _, id := range tc.nodes {
					if filters[id]("web", member) {
						probers = append(probers, id)
					}
				}
				if len(probers) != tc.want {
					t.Fatalf("%s probed by %v, want %d nodes", member, probers, tc.want)
				}
				want := raftstore.Probers(raftstore.MemberKey{Pool: "web", Member: member}, tc.nodes, 0)
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

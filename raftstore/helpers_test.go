package raftstore

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ternlb/tern/health"
)

var t0 = time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)

func enc(t testing.TB, b Body) []byte {
	t.Helper()
	data, err := EncodeCommand(b)
	if err != nil {
		t.Fatalf("encode %T: %v", b, err)
	}
	return data
}

// applyLog feeds data to f as log entry index, as raft would.
func applyLog(f *FSM, index uint64, data []byte) any {
	return f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data})
}

func mustApply(t testing.TB, f *FSM, index uint64, b Body) Result {
	t.Helper()
	switch r := applyLog(f, index, enc(t, b)).(type) {
	case Result:
		return r
	case error:
		t.Fatalf("apply %d %s: %v", index, b.Type(), r)
	default:
		t.Fatalf("apply %d %s: unexpected %T", index, b.Type(), r)
	}
	return Result{}
}

// report is node's observation batch of one report.
func report(node NodeID, kind health.Kind, pool, member string, value float64, at time.Time) Observations {
	return Observations{Node: node, Reports: []ObservationReport{{Pool: pool, Member: member, Kind: kind, Value: value, At: at}}}
}

// verdict is node's health verdict on a member of pool web.
func verdict(node NodeID, member string, up bool, at time.Time) Observations {
	return report(node, health.KindHealth, "web", member, health.HealthValue(up), at)
}

// memberUp is health's agreement of probers on member of pool web, from
// the health observations st holds.
func memberUp(st *State, member string, probers []NodeID, clock time.Time, maxAge time.Duration) (up, known bool) {
	ps := make([]health.NodeID, len(probers))
	for i, p := range probers {
		ps[i] = health.NodeID(p)
	}
	return health.Agree(st.Observations(nil, "web", member, health.KindHealth), ps, 0, clock, maxAge)
}

func bundle(main string, files ...string) Bundle {
	b := Bundle{Main: main, Files: map[string][]byte{}}
	for i := 0; i+1 < len(files); i += 2 {
		b.Files[files[i]] = []byte(files[i+1])
	}
	return b
}

// randomLog returns n commands of every kind, drawn from a seeded source
// (the randomness is the test's, never the FSM's).
func randomLog(t testing.TB, seed uint64, n int) [][]byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	nodes := []NodeID{"n1", "n2", "n3", "n4", "n5"}
	pools := []string{"web", "api", "shop"}
	member := func() string { return fmt.Sprintf("10.0.%d.%d", r.IntN(4), r.IntN(40)) }
	at := func(i int) time.Time {
		return t0.Add(time.Duration(i)*time.Second - time.Duration(r.IntN(5000))*time.Millisecond)
	}
	var out [][]byte
	for i := 0; i < n; i++ {
		var b Body
		switch k := r.IntN(100); {
		case k < 75: // one node's batch of health verdicts, or of loads
			rs := make([]ObservationReport, 1+r.IntN(8))
			for j := range rs {
				rs[j] = ObservationReport{Pool: pools[r.IntN(len(pools))], Member: member(), Kind: health.KindHealth, At: at(i)}
				if r.IntN(4) != 0 {
					rs[j].Value = 1
				}
				if k >= 55 {
					rs[j].Kind, rs[j].Value = health.KindLoad, float64(r.IntN(1000))/7
				}
			}
			b = Observations{Node: nodes[r.IntN(len(nodes))], Reports: rs}
		case k < 82:
			states := []AdminState{AdminAuto, AdminUp, AdminDown, AdminDrain}
			b = SetAdmin{States: []AdminChange{{Pool: pools[r.IntN(len(pools))], Member: member(), State: states[r.IntN(4)]}}}
		case k < 88:
			b = inlineApply(bundle("etc/tern.yaml", "etc/tern.yaml", fmt.Sprintf("# v%d\n", r.IntN(30)), "etc/zones/a.zone", "$ORIGIN a.\n"), Change{At: at(i), Keep: r.IntN(3) * 5,
				Base: uint64(r.IntN(i/8 + 1)), Force: r.IntN(2) == 0, Origin: Origin{Kind: OriginApply, Node: nodes[r.IntN(len(nodes))]}, // often stale: rejected
				Zones: map[string]ZoneStamp{"a.": {Serial: uint32(r.IntN(3)), Content: Hash{byte(r.IntN(3))}}}})
		case k < 91:
			b = Rollback{Version: uint64(1 + r.IntN(i+1)), Change: Change{At: at(i), Force: true}} // often not kept: rejected
		case k < 95:
			n := nodes[r.IntN(len(nodes))]
			b = RegisterNode{ID: n, Raft: fmt.Sprintf("127.0.0.%d:7000", r.IntN(3)), API: "127.0.0.1:8000"}
		case k < 97:
			b = ForgetNode{ID: nodes[r.IntN(len(nodes))]}
		case k < 99:
			b = ForgetMembers{Members: []MemberKey{{pools[r.IntN(len(pools))], member()}}}
		default:
			out = append(out, []byte(`{"v":1,"type":"no.such","body":{}}`)) // rejected
			continue
		}
		out = append(out, enc(t, b))
	}
	return out
}

// inlineApply is the ApplyConfig of b carrying all its files, as the
// planner makes it for the empty state (a test bundle fits in one batch;
// one that does not is refused for the files it lacks).
func inlineApply(b Bundle, ch Change) ApplyConfig {
	_, ac := emptyState().Upload(b, ch)
	return ac
}

// filesOf returns the files version cv names, as s holds them.
func filesOf(t testing.TB, s *State, cv ConfigVersion) Bundle {
	t.Helper()
	b, err := s.Bundle(cv.Manifest)
	if err != nil {
		t.Fatalf("version %d: %v", cv.Version, err)
	}
	return b
}

func sha(data []byte) Hash { return sha256.Sum256(data) }

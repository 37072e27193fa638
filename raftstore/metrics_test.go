package raftstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/ternlb/tern/internal/eventually"
)

// scrape gathers reg into name{label=value,...} -> value.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s is %v, want a gauge", mf.GetName(), mf.GetType())
		}
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, l.GetName()+"="+l.GetValue())
				}
				key += "{" + strings.Join(ls, ",") + "}"
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestCollectorSingleNodeTCP(t *testing.T) {
	o := testOptions("m1", t.TempDir())
	o.RaftAddr, o.Bootstrap = "127.0.0.1:0", true
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	eventually.True(t, 5*time.Second, s.IsLeader, "leader")

	reg := prometheus.NewRegistry()
	if err := reg.Register(s.Collector()); err != nil {
		t.Fatalf("register: %v", err)
	}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, _, err := s.Apply(ctx, verdict("m1", "192.0.2.1", i%2 == 0, t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	idx, _, err := s.Apply(ctx, inlineApply(bundle("tern.yaml", "tern.yaml", "# v1\n"), Change{At: t0}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitApplied(ctx, idx); err != nil {
		t.Fatal(err)
	}

	got := scrape(t, reg)
	st := s.Status()
	want := map[string]float64{
		"tern_raft_state{state=Leader}":    1,
		"tern_raft_state{state=Follower}":  0,
		"tern_raft_state{state=Candidate}": 0,
		"tern_raft_state{state=Shutdown}":  0,
		"tern_raft_term":                   float64(st.Term),
		"tern_raft_leader_known":           1,
		"tern_raft_in_quorum":              1,
		"tern_raft_voters":                 1,
		"tern_raft_servers":                1,
		"tern_config_version":              1,
		"tern_config_content_bytes":        float64(len("# v1\n")),
		"tern_config_content_files":        1,
		"tern_config_content_chunks":       1,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if st.Term < 1 {
		t.Errorf("term %d on a leader", st.Term)
	}
	// The bootstrap configuration, the leader's no-op, the registry
	// entry perhaps, three verdicts and the config: at least idx, and the
	// config's entry is applied and committed.
	for _, k := range []string{"tern_raft_applied_index", "tern_raft_commit_index", "tern_raft_last_log_index"} {
		if got[k] < float64(idx) {
			t.Errorf("%s = %v, want >= %d (the applied config's index)", k, got[k], idx)
		}
	}
	if got["tern_raft_applied_index"] > got["tern_raft_commit_index"] || got["tern_raft_commit_index"] > got["tern_raft_last_log_index"] {
		t.Errorf("applied %v <= commit %v <= last %v does not hold", got["tern_raft_applied_index"], got["tern_raft_commit_index"], got["tern_raft_last_log_index"])
	}
	if _, ok := got["tern_raft_last_contact_seconds"]; ok {
		t.Errorf("tern_raft_last_contact_seconds on the leader")
	}

	// The values are read at scrape time: another write moves them.
	before := got["tern_raft_applied_index"]
	idx2, _, err := s.Apply(ctx, inlineApply(bundle("tern.yaml", "tern.yaml", "# v2\n"), Change{At: t0.Add(time.Minute), Base: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitApplied(ctx, idx2); err != nil {
		t.Fatal(err)
	}
	got = scrape(t, reg)
	if got["tern_raft_applied_index"] < float64(idx2) || got["tern_raft_applied_index"] <= before || got["tern_config_version"] != 2 {
		t.Errorf("after a second config: applied %v (was %v, want >= %d), config version %v (want 2)",
			got["tern_raft_applied_index"], before, idx2, got["tern_config_version"])
	}

	// A closed store says so rather than go on claiming to lead.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got = scrape(t, reg)
	if got["tern_raft_state{state=Shutdown}"] != 1 || got["tern_raft_state{state=Leader}"] != 0 || got["tern_raft_in_quorum"] != 0 {
		t.Errorf("after Close: Shutdown=%v Leader=%v in_quorum=%v, want 1 0 0",
			got["tern_raft_state{state=Shutdown}"], got["tern_raft_state{state=Leader}"], got["tern_raft_in_quorum"])
	}
}

func TestCollectorFollowerInCluster(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	var f *Store
	for _, s := range c.nodes {
		if s != l {
			f = s
			break
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(f.Collector())
	// Leadership can move on a loaded machine: poll until one scrape shows
	// a follower in quorum with recent contact, then check the rest of it.
	var got map[string]float64
	eventually.True(t, 10*time.Second, func() bool {
		got = scrape(t, reg)
		return got["tern_raft_state{state=Follower}"] == 1 && got["tern_raft_in_quorum"] == 1
	}, "a follower in quorum")
	for k, v := range map[string]float64{
		"tern_raft_state{state=Leader}": 0,
		"tern_raft_leader_known":        1,
		"tern_raft_voters":              3,
		"tern_raft_servers":             3,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	lc, ok := got["tern_raft_last_contact_seconds"]
	if !ok || lc < 0 || lc > 5 {
		t.Errorf("tern_raft_last_contact_seconds = %v (present %v), want a few heartbeats at most", lc, ok)
	}
}

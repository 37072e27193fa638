package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ternlb/tern/health"
	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/raftstore"
)

// A single-node cluster proposes the smoothed load its probe reads through
// Raft, and serves the median of the probers' fresh reports: once two more
// nodes (registered here by hand) report 7.5 and 100, the member is served
// at 7.5, not at its own 7 or the mean 38.2.
func TestClusterLoadReported(t *testing.T) {
	agent := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"load": 7, "capacity": 100}`)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go agent.Serve(ln)
	t.Cleanup(func() { agent.Close() })

	dir := t.TempDir()
	yaml := fmt.Sprintf(`node:
  name: t1
  dns: ["127.0.0.1:0"]
  raft: "127.0.0.1:%d"
  data: data
  bootstrap: true
checks:
  agent: {type: load, interval: 200ms, timeout: 150ms, load_smoothing: 1}
pools:
  web:
    policy: load
    check: agent
    members: [{address: 192.0.2.1, probe: %q}]
zones:
  - file: z.zone
`, freePort(t), ln.Addr().String())
	n := runNode(t, dir, yaml, testZone)
	self := n.store.ID()
	served := func() (float64, bool) {
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, s := range n.hv.r.Pool("web") {
			return s.Load, s.HasLoad
		}
		return 0, false
	}
	eventually.True(t, 15*time.Second, func() bool {
		o, ok := n.store.State().Observation(self, "web", "192.0.2.1", health.KindLoad)
		return ok && o.Value == 7
	}, "the node's load report in the FSM")
	if l, ok := served(); !ok || l != 7 {
		t.Fatalf("served load %v (%v), want 7", l, ok)
	}
	now := time.Now().UTC()
	for i, b := range []raftstore.Body{
		raftstore.RegisterNode{ID: "b", Raft: "127.0.0.1:1", API: "127.0.0.1:2"},
		raftstore.RegisterNode{ID: "c", Raft: "127.0.0.1:3", API: "127.0.0.1:4"},
		observation("b", health.KindLoad, "web", "192.0.2.1", 7.5, now),
		observation("c", health.KindLoad, "web", "192.0.2.1", 100, now),
	} {
		actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, _, err := n.store.Apply(actx, b)
		acancel()
		if err != nil {
			t.Fatalf("apply %d %s: %v", i, b.Type(), err)
		}
	}
	eventually.True(t, 5*time.Second, func() bool {
		l, ok := served()
		return ok && l == 7.5
	}, "the median of three probers' reports served")
}

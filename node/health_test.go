package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ternlb/tern/api"
	"github.com/ternlb/tern/health"
	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/internal/testnet"
	"github.com/ternlb/tern/raftstore"
)

// runNodeWith runs a node on yaml and testZone with options of its own
// and waits until it serves.
func runNodeWith(t *testing.T, yaml string, o Options) *Node {
	t.Helper()
	n := runNodeOpts(t, t.TempDir(), yaml, testZone, o)
	select {
	case <-n.Serving():
	case <-time.After(10 * time.Second):
		t.Fatal("node did not start serving")
	}
	return n
}

// clusterNode runs a one-node cluster (node a, its API on a port of its
// own so that joining nodes can forward to it) whose pool web has members
// 127.0.0.1 (its probes pass) and 127.0.0.2 (they fail), and pool lb one
// member its load probes cannot reach.
func clusterNode(t *testing.T, maxAge time.Duration) *Node {
	t.Helper()
	port := freePort(t)
	testnet.Listen(t, fmt.Sprintf("127.0.0.1:%d", port), nil)
	yaml := fmt.Sprintf(`node:
  name: a
  dns: ["127.0.0.1:0"]
  api: "127.0.0.1:%d"
  raft: "127.0.0.1:%d"
  data: data
  bootstrap: true
checks:
  h: {type: tcp, port: %d, interval: 200ms, timeout: 150ms, fall: 1, rise: 1}
  agent: {type: load, port: %d, interval: 200ms, timeout: 150ms}
pools:
  web:
    check: h
    members: [{address: 127.0.0.1}, {address: 127.0.0.2}]
  lb:
    policy: load
    check: agent
    members: [{address: 127.0.0.3}]
zones:
  - file: z.zone
`, freePort(t), freePort(t), port, freePort(t))
	return runNodeWith(t, yaml, Options{VerdictMaxAge: maxAge})
}

// member finds pool/address in pools.
func member(pools []api.Pool, pool, address string) api.PoolMember {
	for _, p := range pools {
		if p.Name != pool {
			continue
		}
		for _, m := range p.Members {
			if m.Address == address {
				return m
			}
		}
	}
	return api.PoolMember{}
}

// Over a sequence of changes (nodes joining, verdicts agreeing, admin
// states, loads, verdicts ageing out with no command at all), /v1/pools
// says exactly what the served snapshot answers with, at every look.
func TestPoolsMatchServedSnapshot(t *testing.T) {
	const maxAge = 4 * time.Second
	n := clusterNode(t, maxAge)
	client := n.peer(n.APIAddr().String())
	looks := 0
	// until polls /v1/pools until want holds, and at every look where the
	// served snapshot did not change under the request, compares the two.
	until := func(what string, want func([]api.Pool) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			before := n.served.Load()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			pools, err := client.Pools(ctx)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if after := n.served.Load(); after == before {
				samePools(t, pools, after)
				looks++
				if want(pools) {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10s; /v1/pools says %+v", what, pools)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	propose := func(bs ...raftstore.Body) {
		t.Helper()
		for _, b := range bs {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := n.propose(ctx, b)
			cancel()
			if err != nil {
				t.Fatalf("%s: %v", b.Type(), err)
			}
		}
	}
	self := n.store.ID()
	until("this node's own verdicts", func(ps []api.Pool) bool {
		_, ok := n.store.State().Observation(self, "web", "127.0.0.2", health.KindHealth)
		return member(ps, "web", "127.0.0.1").Up && !member(ps, "web", "127.0.0.2").Up && ok
	})

	propose(raftstore.RegisterNode{ID: "b", Raft: "127.0.0.1:1"}, raftstore.RegisterNode{ID: "c", Raft: "127.0.0.1:2"})
	until("three probers, only one verdict: this node's own", func(ps []api.Pool) bool {
		m := member(ps, "web", "127.0.0.1")
		return m.Up && m.Why == "probes pass (this node's own verdict: its probers do not agree yet)"
	})

	now := time.Now().UTC()
	propose(observation("b", health.KindHealth, "web", "127.0.0.1", 0, now), observation("c", health.KindHealth, "web", "127.0.0.1", 0, now))
	until("two of three say down", func(ps []api.Pool) bool {
		m := member(ps, "web", "127.0.0.1")
		return !m.Up && m.Why == "down by agreement of 3 probers"
	})

	propose(raftstore.SetAdmin{States: []raftstore.AdminChange{{Pool: "web", Member: "127.0.0.1", State: raftstore.AdminDrain}}})
	until("drained", func(ps []api.Pool) bool {
		m := member(ps, "web", "127.0.0.1")
		return !m.Up && m.Admin == "drain"
	})
	propose(raftstore.SetAdmin{States: []raftstore.AdminChange{{Pool: "web", Member: "127.0.0.2", State: raftstore.AdminUp}}})
	until("forced up", func(ps []api.Pool) bool {
		m := member(ps, "web", "127.0.0.2")
		return m.Up && m.Forced
	})
	propose(raftstore.SetAdmin{States: []raftstore.AdminChange{{Pool: "web", Member: "127.0.0.1", State: raftstore.AdminAuto}, {Pool: "web", Member: "127.0.0.2", State: raftstore.AdminAuto}}})
	until("auto again", func(ps []api.Pool) bool {
		return !member(ps, "web", "127.0.0.1").Up && !member(ps, "web", "127.0.0.2").Up
	})

	now = time.Now().UTC()
	propose(raftstore.Observations{Node: "b", Reports: []raftstore.ObservationReport{
		{Pool: "lb", Member: "127.0.0.3", Kind: health.KindHealth, Value: 1, At: now}, {Pool: "lb", Member: "127.0.0.3", Kind: health.KindLoad, Value: 10, At: now}}},
		raftstore.Observations{Node: "c", Reports: []raftstore.ObservationReport{
			{Pool: "lb", Member: "127.0.0.3", Kind: health.KindHealth, Value: 1, At: now}, {Pool: "lb", Member: "127.0.0.3", Kind: health.KindLoad, Value: 90, At: now}}})
	until("up by agreement, the median of two fresh loads", func(ps []api.Pool) bool {
		m := member(ps, "lb", "127.0.0.3")
		return m.Up && m.Load == 50 && len(m.Loads) == 2
	})

	// Down by agreement until b's and c's word ages out, a second and a
	// half from now: then this node's own verdict stands, with no command.
	old := time.Now().UTC().Add(-maxAge + 1500*time.Millisecond)
	propose(observation("b", health.KindHealth, "web", "127.0.0.1", 0, old.Add(time.Second)), observation("c", health.KindHealth, "web", "127.0.0.1", 0, old))
	until("down by agreement", func(ps []api.Pool) bool { return !member(ps, "web", "127.0.0.1").Up })
	until("aged out: up by this node's own verdict", func(ps []api.Pool) bool {
		m := member(ps, "web", "127.0.0.1")
		return m.Up && m.Why == "probes pass (this node's own verdict: its probers do not agree yet)"
	})
	if got := n.store.State().Observations(nil, "web", "127.0.0.1", health.KindHealth); len(got) != 3 {
		t.Fatalf("observations of web/127.0.0.1: %+v", got)
	}
	t.Logf("%d looks compared", looks)
}

// A node with nothing changing rebuilds nothing: no snapshot over a few
// idle seconds, where it used to rebuild every second.
func TestIdleRebuildsNothing(t *testing.T) {
	n := clusterNode(t, 0)
	self := n.store.ID()
	eventually.True(t, 10*time.Second, func() bool {
		st := n.store.State()
		_, a := st.Observation(self, "web", "127.0.0.1", health.KindHealth)
		_, b := st.Observation(self, "web", "127.0.0.2", health.KindHealth)
		_, c := st.Observation(self, "lb", "127.0.0.3", health.KindHealth)
		return a && b && c
	}, "this node's reports in the FSM")
	// The watcher follows the FSM on its own goroutine: let it take in the
	// last apply (no rebuild for a second) before idle time is measured.
	count := func() int {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.hv.rebuilds
	}
	for prev, deadline := -1, time.Now().Add(10*time.Second); ; {
		c := count()
		if c == prev {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node kept rebuilding snapshots before any idle time")
		}
		prev = c
		time.Sleep(time.Second)
	}
	n.mu.Lock()
	rebuilds, snap := n.hv.rebuilds, n.served.Load()
	n.mu.Unlock()
	time.Sleep(3 * time.Second) // the idle time measured, not a wait for something
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.hv.rebuilds != rebuilds || n.served.Load() != snap {
		t.Fatalf("%d snapshots built over 3 idle seconds, want 0", n.hv.rebuilds-rebuilds)
	}
}

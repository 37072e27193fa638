package node

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ternlb/tern/config"
	"github.com/ternlb/tern/dispatcher"
	"github.com/ternlb/tern/dispatcher/control"
	"github.com/ternlb/tern/dispatcher/datapath"
	"github.com/ternlb/tern/health"
	"github.com/ternlb/tern/internal/eventually"
	"github.com/ternlb/tern/probes"
)

// memMaps is an in-memory datapath: the Maglev tables a Control writes.
type memMaps struct {
	mu       sync.Mutex
	backends map[uint32]datapath.Backend
	tables   map[datapath.ServiceKey][]uint32
}

func newMemMaps() *memMaps {
	return &memMaps{backends: map[uint32]datapath.Backend{}, tables: map[datapath.ServiceKey][]uint32{}}
}

func (m *memMaps) SetBackend(id uint32, b datapath.Backend) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.backends[id] = b
	return nil
}

func (m *memMaps) DeleteBackend(id uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.backends, id)
	return nil
}

func (m *memMaps) SetService(k datapath.ServiceKey, _ datapath.Service, table []uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tables[k] = slices.Clone(table)
	return nil
}

func (m *memMaps) DeleteService(k datapath.ServiceKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.tables, k)
	return nil
}

// table is service k's Maglev table as server addresses, slot by slot.
func (m *memMaps) table(k datapath.ServiceKey) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, len(m.tables[k]))
	for i, id := range m.tables[k] {
		out[i] = m.backends[id].IP.String()
	}
	return out
}

const dispatcherSection = `checks:
  http: {type: http, port: 9, interval: 1h}
dispatcher:
  interface: eth0
  table_size: 251
  services:
    - vip: 192.0.2.1
      port: 80
      check: http
      servers:
        - {address: 10.1.0.11, mac: "02:00:00:00:00:11"}
        - {address: 10.1.0.12, mac: "02:00:00:00:00:12"}
`

// withDispatcher gives running cluster node n the servers of a dispatcher:
// section as New does (members resolved by the nodes that report them),
// and returns their spec.
func withDispatcher(t *testing.T, n *Node) control.Spec {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte("node: {name: x}\n"+dispatcherSection), 0o644)
	cfg, err := config.Load(filepath.Join(dir, "tern.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := dispatcher.NewInstance(cfg, dispatcher.RunOptions{Health: dispatcherHealth{n}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := control.SpecFromConfig(cfg.Dispatcher)
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.hv.disp, n.hv.dispChecks = in.HealthPools(), cfg.Checks
	if err := n.installHealthLocked(n.gen); err != nil {
		t.Fatal(err)
	}
	n.serveLocked()
	n.reportAllLocked()
	return spec
}

// Both dispatchers of a pair, on two nodes of one cluster, forward by the
// agreed health of their servers: when one node's own probe finds a
// server down and the other's finds it up, both build the same Maglev
// tables (the split resolves up), and when both find it down, both drop
// it.
func TestDispatchersAgree(t *testing.T) {
	a := clusterNode(t, 0)
	b := joinNode(t, a, "b")
	eventually.True(t, 20*time.Second, func() bool {
		_, ok := a.store.State().Node("b")
		_, ok2 := b.store.State().Node("a")
		return ok && ok2 && len(healthNodes(b.store.State())) == 2
	}, "b joined and registered")
	var spec control.Spec
	for _, n := range []*Node{a, b} {
		spec = withDispatcher(t, n)
	}
	server := probes.Key{Pool: dispatcher.CheckPoolPrefix + "http", Member: "10.1.0.11"}
	probe := func(n *Node, up bool) {
		dispatcherHealth{n}.Observe([]probes.Verdict{{Key: server, Probed: true, ProbeUp: up, Up: up, Checked: time.Now().UTC()}})
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // before the Wait
	tables := map[*Node]*memMaps{}
	controls := map[*Node]*control.Control{}
	for _, n := range []*Node{a, b} {
		m := newMemMaps()
		c, err := control.New(m, spec, control.Options{OwnAll: true})
		if err != nil {
			t.Fatal(err)
		}
		tables[n], controls[n] = m, c
		wg.Add(1)
		go func() { defer wg.Done(); dispatcher.FollowHealth(ctx, c, dispatcherHealth{n}) }()
	}
	key := spec.Services[0].Key
	// serving reports whether both dispatchers' tables are the same and
	// hold the server as want says.
	serving := func(want bool) func() bool {
		return func() bool {
			for _, c := range controls {
				if err := c.Reconcile(); err != nil {
					t.Fatal(err)
				}
			}
			ta, tb := tables[a].table(key), tables[b].table(key)
			return len(ta) == 251 && slices.Equal(ta, tb) && slices.Contains(ta, server.Member) == want
		}
	}
	agreed := func(n *Node) string {
		n.mu.Lock()
		defer n.mu.Unlock()
		s, _ := n.hv.r.State(health.Key{Pool: server.Pool, Member: server.Member})
		return s.Why
	}

	probe(a, false)
	probe(b, true)
	eventually.True(t, 10*time.Second, func() bool {
		return agreed(a) == "up by agreement of 2 probers" && agreed(b) == agreed(a) && serving(true)()
	}, "both nodes agree the server a finds down is up, and their dispatchers' tables are the same, with it")
	before := tables[a].table(key)

	probe(b, false)
	eventually.True(t, 10*time.Second, func() bool {
		return agreed(a) == "down by agreement of 2 probers" && agreed(b) == agreed(a) && serving(false)()
	}, "both nodes agree it is down, and their dispatchers' tables are the same, without it")
	moved := 0
	for i, s := range tables[a].table(key) {
		if s != before[i] {
			moved++
		}
	}
	if moved == 0 || moved > 251*3/4 {
		t.Fatalf("%d of 251 slots moved when one of two servers left", moved)
	}
}

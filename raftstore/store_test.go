package raftstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/ternlb/tern/internal/eventually"
)

func testOptions(id NodeID, dir string) Options {
	return Options{
		ID:                 id,
		Dir:                dir,
		APIAddr:            "api-" + string(id),
		NoSync:             true,
		HeartbeatTimeout:   150 * time.Millisecond,
		ElectionTimeout:    150 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		QuorumTimeout:      600 * time.Millisecond,
		ApplyTimeout:       5 * time.Second,
	}
}

// cluster is a set of Stores on raft.InmemTransport with real bbolt logs
// in temporary directories. On a loaded machine leadership can move at
// any time, so the helpers find the current leader and retry writes that
// lost it; assertions that need one particular leader do not exist.
type cluster struct {
	t     *testing.T
	ids   []NodeID
	nodes map[NodeID]*Store
	trans map[NodeID]*raft.InmemTransport
	dirs  map[NodeID]string
	out   map[NodeID]bool // isolated: not asked for leadership or state
	tune  func(*Options)
}

func newCluster(t *testing.T, n int, tune func(*Options)) *cluster {
	c := &cluster{t: t, nodes: map[NodeID]*Store{}, trans: map[NodeID]*raft.InmemTransport{}, dirs: map[NodeID]string{}, out: map[NodeID]bool{}, tune: tune}
	for i := 1; i <= n; i++ {
		id := NodeID(fmt.Sprintf("n%d", i))
		c.ids = append(c.ids, id)
		c.dirs[id] = t.TempDir()
		c.start(id, i == 1)
	}
	t.Cleanup(func() {
		for _, s := range c.nodes {
			s.Close()
		}
	})
	for _, s := range c.nodes {
		c.runRegistration(s)
	}
	for _, id := range c.ids[1:] {
		c.retry("join "+string(id), func(l *Store) error { return l.Join(context.Background(), id, string(id), "api-"+string(id)) })
	}
	c.converged()
	return c
}

// start opens node id with a fresh transport connected to every other.
func (c *cluster) start(id NodeID, bootstrap bool) *Store {
	_, tr := raft.NewInmemTransport(raft.ServerAddress(id))
	c.trans[id] = tr
	for other, ot := range c.trans {
		if other != id {
			tr.Connect(raft.ServerAddress(other), ot)
			ot.Connect(raft.ServerAddress(id), tr)
		}
	}
	o := testOptions(id, c.dirs[id])
	o.Transport, o.Bootstrap = tr, bootstrap
	if c.tune != nil {
		c.tune(&o)
	}
	s, err := Open(o)
	if err != nil {
		c.t.Fatalf("open %s: %v", id, err)
	}
	c.nodes[id] = s
	delete(c.out, id)
	return s
}

func (c *cluster) stop(id NodeID) {
	if err := c.nodes[id].Close(); err != nil {
		c.t.Fatalf("close %s: %v", id, err)
	}
	delete(c.nodes, id)
	c.isolate(id)
}

func (c *cluster) runRegistration(s *Store) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	c.t.Cleanup(func() { cancel(); <-done })
}

// leader waits for exactly one leader among the running, connected nodes.
func (c *cluster) leader() *Store {
	c.t.Helper()
	var l *Store
	eventually.True(c.t, 10*time.Second, func() bool {
		l = nil
		for id, s := range c.nodes {
			if c.out[id] {
				continue
			}
			if s.IsLeader() {
				if l != nil {
					return false
				}
				l = s
			}
		}
		return l != nil
	}, "a leader")
	return l
}

// retry runs op on the current leader until it succeeds, going again when
// leadership moved under it.
func (c *cluster) retry(what string, op func(l *Store) error) {
	c.t.Helper()
	eventually.NoError(c.t, 20*time.Second, func() error {
		err := op(c.leader())
		if err != nil && !errors.Is(err, ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost) {
			c.t.Fatalf("%s: %v", what, err)
		}
		return err
	}, what)
}

func (c *cluster) apply(b Body) Result {
	c.t.Helper()
	var res Result
	c.retry("apply "+b.Type(), func(l *Store) (err error) {
		_, res, err = l.Apply(context.Background(), b)
		return err
	})
	return res
}

// converged waits until every running, connected node has applied what
// the leader has, and checks they hold the same state.
func (c *cluster) converged() Hash {
	c.t.Helper()
	var l *Store
	c.retry("barrier", func(s *Store) error { l = s; return s.Barrier(context.Background()) })
	want := l.FSM().Applied()
	for id, s := range c.nodes {
		if c.out[id] {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.WaitApplied(ctx, want); err != nil {
			c.t.Fatalf("%s: %v", id, err)
		}
		cancel()
	}
	h := l.State().Hash()
	for id, s := range c.nodes {
		if !c.out[id] && s.State().Hash() != h {
			c.t.Fatalf("%s's state differs from the leader's", id)
		}
	}
	return h
}

func (c *cluster) isolate(id NodeID) {
	c.out[id] = true
	c.trans[id].DisconnectAll()
	for other, tr := range c.trans {
		if other != id {
			tr.Disconnect(raft.ServerAddress(id))
		}
	}
}

func (c *cluster) heal(id NodeID) {
	delete(c.out, id)
	for other, tr := range c.trans {
		if other != id {
			tr.Connect(raft.ServerAddress(id), c.trans[id])
			c.trans[id].Connect(raft.ServerAddress(other), tr)
		}
	}
}

func TestClusterReplicatesAndForwards(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	ms, err := c.nodes["n3"].Members()
	if err != nil || len(ms) != 3 || ms[2].API != "api-n3" || !ms[1].Voter {
		t.Fatalf("members: %+v %v", ms, err)
	}
	if res := c.apply(inlineApply(bundle("tern.yaml", "tern.yaml", "pools: {}\n"), Change{At: t0})); res.Version != 1 {
		t.Fatalf("apply config: %+v", res)
	}
	// A follower refuses writes and says where the leader's API is.
	c.converged()
	var f *Store
	for _, s := range c.nodes {
		if !s.IsLeader() {
			f = s
		}
	}
	_, _, err = f.Apply(ctx, verdict(f.ID(), "a", true, t0))
	var nl *NotLeaderError
	if !errors.Is(err, ErrNotLeader) || !errors.As(err, &nl) || nl.LeaderID == "" || nl.LeaderAPI != "api-"+string(nl.LeaderID) {
		t.Fatalf("follower apply: %v", err)
	}
	// The scenario, through Raft: n2 alone sees member a down.
	for _, id := range c.ids {
		c.apply(verdict(id, "a", id != "n2", t0))
	}
	c.converged()
	for _, id := range c.ids {
		if up, known := memberUp(c.nodes[id].State(), "a", c.ids, t0, time.Minute); !up || !known {
			t.Fatalf("%s: member down with one of three verdicts down", id)
		}
	}
	c.apply(verdict("n3", "a", false, t0.Add(time.Second)))
	c.converged()
	for _, id := range c.ids {
		if up, known := memberUp(c.nodes[id].State(), "a", c.ids, t0.Add(time.Second), time.Minute); up || !known {
			t.Fatalf("%s: member up with two of three verdicts down", id)
		}
	}
	// A refused command comes back as an error with its log index.
	c.retry("rollback", func(l *Store) error {
		idx, _, err := l.Apply(ctx, Rollback{Version: 9, Change: Change{At: t0}})
		if errors.Is(err, ErrNoSuchVersion) && idx > 0 {
			return nil
		}
		return err
	})
	// A malformed forwarded command is refused before it reaches the log.
	idx, _, err := c.leader().ApplyEncoded(ctx, []byte(`{"v":1,"type":"node.forget","body":{}}`))
	if !errors.Is(err, ErrMalformed) || idx != 0 {
		t.Fatalf("malformed: index %d, %v", idx, err)
	}
	c.converged()
	st := f.Status()
	if st.State != "Follower" || !st.InQuorum || st.LeaderID == "" || st.LeaderAPI != "api-"+string(st.LeaderID) || st.ConfigVersion != 1 || st.AppliedIndex == 0 || st.Term == 0 {
		t.Fatalf("status: %+v", st)
	}
	if st := c.leader().Status(); st.State != "Leader" || !st.InQuorum {
		t.Fatalf("leader status: %+v", st)
	}
}

func TestJoinIsIdempotentAndRemove(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	l := c.leader()
	cfgIndex := func() uint64 {
		f := l.raft.GetConfiguration()
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		return f.Index()
	}
	before, nodesAt := cfgIndex(), l.State().Indexes().Nodes
	c.retry("join again", func(l *Store) error { return l.Join(ctx, "n3", "n3", "api-n3") })
	if cfgIndex() != before || l.State().Indexes().Nodes != nodesAt {
		t.Fatal("joining again with the same ID and address changed the cluster")
	}
	for _, s := range c.nodes {
		if !s.IsLeader() {
			if err := s.Join(ctx, "n4", "n4", "api-n4"); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("join on a follower: %v", err)
			}
			break
		}
	}
	// Same ID, new address: the address is updated, not a second member.
	c.retry("move n3", func(l *Store) error { return l.Join(ctx, "n3", "n3b", "api-n3b") })
	c.converged()
	ms, _ := c.nodes["n1"].Members()
	if len(ms) != 3 || ms[2].Raft != "n3b" || ms[2].API != "api-n3b" {
		t.Fatalf("members after move: %+v", ms)
	}
	c.retry("move n3 back", func(l *Store) error { return l.Join(ctx, "n3", "n3", "api-n3") })
	// Remove forgets the node's observations too.
	c.apply(verdict("n3", "a", true, t0))
	c.retry("remove n3", func(l *Store) error {
		err := l.Remove(ctx, "n3")
		if errors.Is(err, ErrUnknownNode) && l.ID() != "n3" {
			return nil // an earlier try removed it before leadership moved
		}
		return err
	})
	if err := c.leader().Remove(ctx, "n9"); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("remove unknown: %v", err)
	}
	c.stop("n3")
	c.converged()
	for _, id := range []NodeID{"n1", "n2"} {
		ms, _ = c.nodes[id].Members()
		if len(ms) != 2 {
			t.Fatalf("%s: members after remove: %+v", id, ms)
		}
		if _, ok := c.nodes[id].State().Node("n3"); ok || len(c.nodes[id].State().Observations(nil, "web", "a", "")) != 0 {
			t.Fatalf("%s: removed node's registry entry or verdicts remain", id)
		}
	}
}

func TestLeaderLossAndIsolation(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := context.Background()
	c.apply(verdict("n1", "a", true, t0))
	hash := c.converged()
	// The leader is cut off: the other two elect a new one and take writes.
	old := c.leader()
	c.isolate(old.ID())
	if nl := c.leader(); nl == old {
		t.Fatal("isolated node still leads")
	}
	c.apply(verdict("n2", "a", false, t0.Add(time.Second)))
	c.converged()
	// The isolated node keeps its last state and says it is out of quorum.
	eventually.True(t, 10*time.Second, func() bool { return !old.Status().InQuorum }, "isolated node out of quorum")
	if old.State().Hash() != hash {
		t.Fatal("isolated node's state changed")
	}
	if _, _, err := old.Apply(ctx, verdict(old.ID(), "a", true, t0)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("write on the isolated old leader: %v", err)
	}
	// Back in touch, it catches up.
	c.heal(old.ID())
	eventually.True(t, 10*time.Second, func() bool { return old.Status().InQuorum }, "healed node in quorum")
	c.converged()
	if old.State().Hash() == hash {
		t.Fatal("healed node did not catch up")
	}
}

func TestFollowerCatchesUpAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		name     string
		snapshot bool
	}{{"from log", false}, {"from snapshot", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 3, func(o *Options) {
				o.TrailingLogs = 10
				o.SnapshotThreshold = 1 << 40 // only when the test asks
				o.SnapshotInterval = time.Hour
			})
			// Stop a follower gracefully, write while it is down.
			var f NodeID = "n3"
			if c.leader().ID() == f {
				f = "n2"
			}
			c.stop(f)
			for i := range 200 {
				c.apply(verdict("n1", fmt.Sprintf("m%d", i), i%3 != 0, t0.Add(time.Duration(i)*time.Second)))
			}
			if tc.snapshot {
				c.retry("snapshot", func(l *Store) error {
					if err := l.Snapshot(); err != nil {
						return err
					}
					// Every node that may lead next must have compacted too.
					for id, s := range c.nodes {
						if !c.out[id] {
							if err := s.Snapshot(); err != nil && !strings.Contains(err.Error(), "nothing new") {
								t.Fatalf("snapshot on %s: %v", id, err)
							}
						}
					}
					return nil
				})
			}
			// Same data dir, same ID: it resumes and catches up.
			c.heal(f)
			s := c.start(f, false)
			if s.ID() != f {
				t.Fatalf("restarted as %s", s.ID())
			}
			c.converged()
			snaps, _ := os.ReadDir(filepath.Join(c.dirs[f], snapshotsDir))
			if got := len(snaps) > 0; got != tc.snapshot {
				t.Fatalf("follower has snapshots %v, want %v", got, tc.snapshot)
			}
			if up, known := memberUp(s.State(), "m1", []NodeID{"n1"}, t0, 0); !up || !known {
				t.Fatal("restarted follower lacks the writes it missed")
			}
		})
	}
}

func TestRestartRestoresOwnSnapshot(t *testing.T) {
	dir := t.TempDir()
	open := func(bootstrap bool) *Store {
		_, tr := raft.NewInmemTransport("solo")
		o := testOptions("solo", dir)
		o.Transport, o.Bootstrap = tr, bootstrap
		s, err := Open(o)
		if err != nil {
			t.Fatal(err)
		}
		eventually.True(t, 5*time.Second, s.IsLeader, "single node leads")
		return s
	}
	s := open(true)
	ctx := context.Background()
	for i := range 50 {
		if _, _, err := s.Apply(ctx, verdict("solo", fmt.Sprintf("m%d", i), true, t0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Apply(ctx, inlineApply(bundle("a", "a", "x"), Change{At: t0})); err != nil {
		t.Fatal(err)
	}
	want := s.State().Hash()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(true) // bootstrap: true again is a restart, not a new cluster
	defer s.Close()
	if err := s.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if s.State().Hash() != want || s.Status().ConfigVersion != 1 {
		t.Fatal("restart lost state")
	}
}

func TestOpenRefusesBadDataDir(t *testing.T) {
	// A data dir with state, made by a real single-node run.
	made := func(t *testing.T) string {
		dir := t.TempDir()
		_, tr := raft.NewInmemTransport("a")
		o := testOptions("a", dir)
		o.Transport, o.Bootstrap = tr, true
		s, err := Open(o)
		if err != nil {
			t.Fatal(err)
		}
		eventually.True(t, 5*time.Second, s.IsLeader, "leader")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tests := []struct {
		name      string
		id        NodeID
		bootstrap bool
		prepare   func(t *testing.T, dir string)
		want      error
		msg       string
	}{
		{"another node's dir", "b", false, nil, ErrNodeIDMismatch, `written by node "a"`},
		{"another node's dir, bootstrap", "b", true, nil, ErrNodeIDMismatch, `this node is "b"`},
		{"corrupt raft.db", "a", false, func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, raftDBFile), []byte(strings.Repeat("garbage!", 4096)), 0o600); err != nil {
				t.Fatal(err)
			}
		}, ErrDataDir, "raft.db"},
		{"truncated raft.db", "a", true, func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, raftDBFile), 100); err != nil {
				t.Fatal(err)
			}
		}, ErrDataDir, "raft.db"},
		{"emptied raft.db with bootstrap", "a", true, func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, raftDBFile), 0); err != nil {
				t.Fatal(err)
			}
		}, ErrDataDir, "no Raft state"},
		{"node-id lost", "a", true, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, nodeIDFile))
		}, ErrDataDir, "no node-id"},
		{"raft.db lost", "a", true, func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, raftDBFile))
		}, ErrDataDir, "Raft log is lost"},
		{"node-id empty", "a", false, func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, nodeIDFile), nil, 0o600)
		}, ErrDataDir, "node-id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := made(t)
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}
			_, tr := raft.NewInmemTransport("a")
			o := testOptions(tc.id, dir)
			o.Transport, o.Bootstrap = tr, tc.bootstrap
			s, err := Open(o)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			t.Log(err)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.msg)
			}
		})
	}
	t.Run("dir in use", func(t *testing.T) {
		dir := made(t)
		_, tr := raft.NewInmemTransport("a")
		o := testOptions("a", dir)
		o.Transport = tr
		s, err := Open(o)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, tr2 := raft.NewInmemTransport("a2")
		o.Transport = tr2
		if _, err := Open(o); !errors.Is(err, ErrDataDir) || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("second Open: %v", err)
		}
	})
}

func TestOpenNewNodeWithoutBootstrapWaits(t *testing.T) {
	dir := t.TempDir()
	_, tr := raft.NewInmemTransport("x")
	o := testOptions("", dir) // no ID: a random one, kept in node-id
	o.Transport = tr
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	id := s.ID()
	if !strings.HasPrefix(string(id), "node-") {
		t.Fatalf("generated ID %q", id)
	}
	ms, err := s.Members()
	if err != nil || len(ms) != 0 {
		t.Fatalf("an unjoined node has members %v %v", ms, err)
	}
	if st := s.Status(); st.InQuorum || st.LeaderID != "" {
		t.Fatalf("unjoined status %+v", st)
	}
	s.Close()
	// The ID survives a restart.
	_, tr = raft.NewInmemTransport("x")
	o.Transport = tr
	s, err = Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.ID() != id {
		t.Fatalf("ID %s after restart, was %s", s.ID(), id)
	}
}

func TestTCPTransportSingleNode(t *testing.T) {
	dir := t.TempDir()
	o := testOptions("tcp1", dir)
	o.RaftAddr, o.Bootstrap = "127.0.0.1:0", true
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	eventually.True(t, 5*time.Second, s.IsLeader, "leader")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	eventually.True(t, 5*time.Second, func() bool {
		n, ok := s.State().Node("tcp1")
		return ok && n.API == "api-tcp1" && n.Raft == s.RaftAddr()
	}, "self-registration")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.RaftAddr(), "127.0.0.1:") || strings.HasSuffix(s.RaftAddr(), ":0") {
		t.Fatalf("raft address %q", s.RaftAddr())
	}
	if _, _, err := s.Apply(context.Background(), verdict("tcp1", "a", true, t0)); err != nil {
		t.Fatal(err)
	}
}

func TestCloseLeaderHandsOver(t *testing.T) {
	c := newCluster(t, 3, nil)
	old := c.leader()
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	delete(c.nodes, old.ID())
	c.isolate(old.ID())
	c.apply(verdict("n1", "a", true, t0))
	if _, _, err := old.Apply(context.Background(), verdict("n1", "a", true, t0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("write on a closed store: %v", err)
	}
	c.converged()
}

// TestOpenRaftAddressInUse: a Raft address another process holds is a
// clear error from Open, not a crash while it cleans up.
func TestOpenRaftAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	o := testOptions("busy", t.TempDir())
	o.RaftAddr, o.Bootstrap = ln.Addr().String(), true
	s, err := Open(o)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded on an address in use")
	}
	if !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Fatalf("error %q does not name the address", err)
	}
}

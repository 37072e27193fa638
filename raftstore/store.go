package raftstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/ternlb/tern/config"
	"go.etcd.io/bbolt"
)

// Options configure a Store. ID, Dir and RaftAddr come from the node
// section of the configuration (node.name, node.data, node.raft).
type Options struct {
	// ID is this node's Raft server ID. Empty: the one in the data
	// directory's node-id file, or a new random one for a new directory.
	// A data directory written by another ID is refused.
	ID NodeID
	// Dir is the data directory (created if missing).
	Dir string
	// RaftAddr is the TCP address the Raft transport listens on.
	RaftAddr string
	// Advertise is the Raft address other nodes dial (default: RaftAddr;
	// required when RaftAddr is a wildcard).
	Advertise string
	// APIAddr is this node's admin API address, put in the node registry
	// so that other nodes can forward writes here when it leads.
	APIAddr string
	// Bootstrap starts a new single-node cluster when Dir is empty. With a
	// Dir that holds state it has no effect (the node resumes); with a Dir
	// that holds a node-id but no Raft state, Open fails rather than make
	// a second cluster.
	Bootstrap bool
	// TLS, when set, runs the Raft transport over mutual TLS (see
	// TLSFiles); nil keeps plain TCP.
	TLS *TLSFiles

	// Transport replaces the TCP transport (tests use raft.InmemTransport);
	// RaftAddr, Advertise and TLS are then unused.
	Transport raft.Transport
	// Logger receives Raft's log messages (nil: none).
	Logger *slog.Logger
	// NoSync skips fsync of the Raft log: for tests only, a crash loses
	// acknowledged writes.
	NoSync bool

	// Raft timing; zero values take hashicorp/raft's defaults (1s, 1s,
	// 500ms, 50ms).
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// Snapshot policy; zero values take raft's defaults (every 8192
	// entries, checked every 120s, 10240 trailing log entries) and 2
	// retained snapshots.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	SnapshotRetain    int
	// QuorumTimeout: a follower that has not heard from a leader for this
	// long reports itself out of quorum (default 2 x HeartbeatTimeout).
	QuorumTimeout time.Duration
	// ApplyTimeout bounds a write when the context has no deadline
	// (default 10s).
	ApplyTimeout time.Duration
}

// Store runs the FSM under hashicorp/raft with its log in bbolt. Reads go
// to the local FSM (State); writes go through Apply on the leader, and a
// follower answers them with a *NotLeaderError naming the leader's API.
type Store struct {
	id    NodeID
	opts  Options
	fsm   *FSM
	raft  *raft.Raft
	bolt  *raftboltdb.BoltStore
	trans raft.Transport
	tls   *tlsStream // nil without TLS
	log   *slog.Logger

	closeOnce sync.Once
	// closed is set when Close begins: raft's own state can read as
	// Follower for a moment after Shutdown, so writes check this first.
	closed   atomic.Bool
	closeErr error
}

// Open opens (or creates) the data directory, starts Raft and returns the
// Store. A new cluster is bootstrapped only when opts.Bootstrap is set and
// the directory was empty; a directory written by another node ID, a
// corrupt raft.db, or a raft.db without its node-id file is an error
// (ErrDataDir or ErrNodeIDMismatch), never a silent new cluster.
func Open(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("raftstore: no data directory (node.data)")
	}
	if opts.Transport == nil && opts.RaftAddr == "" {
		return nil, errors.New("raftstore: no Raft address (node.raft)")
	}
	if opts.ID != "" {
		if err := checkName("node ID", string(opts.ID)); err != nil {
			return nil, fmt.Errorf("raftstore: %w", err)
		}
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	ds, err := inspectDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	id := ds.id
	switch {
	case id != "" && opts.ID != "" && id != opts.ID:
		return nil, fmt.Errorf("%w: %s was written by node %q, this node is %q: point node.data at this node's own directory",
			ErrNodeIDMismatch, opts.Dir, id, opts.ID)
	case id == "" && opts.ID != "":
		id = opts.ID
	case id == "":
		if id, err = randomID(); err != nil {
			return nil, err
		}
	}
	if ds.empty {
		if err := writeNodeID(opts.Dir, id); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrDataDir, err)
		}
	}

	s := &Store{id: id, opts: opts, fsm: NewFSM(), log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.start(ds); err != nil {
		s.release()
		return nil, err
	}
	return s, nil
}

func (s *Store) start(ds dirState) (err error) {
	opts := s.opts
	dbPath := filepath.Join(opts.Dir, raftDBFile)
	hl := newHCLog(opts.Logger)
	// bbolt panics on some corrupt pages; a corrupt file must be an error.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %s is corrupt (%v): restore it from a backup, or remove the data directory and join the node as a new member", ErrDataDir, dbPath, p)
		}
	}()
	s.bolt, err = raftboltdb.New(raftboltdb.Options{
		Path:        dbPath,
		NoSync:      opts.NoSync,
		BoltOptions: &bbolt.Options{Timeout: time.Second},
	})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return fmt.Errorf("%w: %s is in use by another process", ErrDataDir, dbPath)
		}
		return fmt.Errorf("%w: open %s: %w (restore it from a backup, or remove the data directory and join the node as a new member)", ErrDataDir, dbPath, err)
	}
	if _, err := s.bolt.LastIndex(); err != nil {
		return fmt.Errorf("%w: read %s: %w", ErrDataDir, dbPath, err)
	}
	retain := opts.SnapshotRetain
	if retain <= 0 {
		retain = 2
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(opts.Dir, retain, hl.Named("snapshots"))
	if err != nil {
		return fmt.Errorf("%w: snapshots in %s: %w", ErrDataDir, opts.Dir, err)
	}
	existing, err := raft.HasExistingState(s.bolt, s.bolt, snaps)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrDataDir, opts.Dir, err)
	}
	if opts.Bootstrap && !ds.empty && !existing {
		return fmt.Errorf("%w: bootstrap asked, but %s already has node-id %q and no Raft state (an interrupted start, or a lost log): remove the directory to bootstrap afresh",
			ErrDataDir, opts.Dir, s.id)
	}

	s.trans = opts.Transport
	if s.trans == nil {
		var adv net.Addr
		if opts.Advertise != "" {
			if adv, err = net.ResolveTCPAddr("tcp", opts.Advertise); err != nil {
				return fmt.Errorf("raft advertise address %q: %w", opts.Advertise, err)
			}
		}
		if opts.TLS != nil {
			var tr *raft.NetworkTransport
			if tr, s.tls, err = newTLSTransport(opts.RaftAddr, adv, *opts.TLS, hl, s.log); err == nil {
				s.trans = tr
			}
		} else {
			// Assign only a transport that opened: a nil *NetworkTransport
			// in the interface would be "closed" by release and panic.
			var tr *raft.NetworkTransport
			if tr, err = raft.NewTCPTransportWithLogger(opts.RaftAddr, adv, 3, 10*time.Second, hl.Named("transport")); err == nil {
				s.trans = tr
			}
		}
		if err != nil {
			return fmt.Errorf("raft transport on %q: %w", opts.RaftAddr, err)
		}
	}

	conf := s.raftConfig(hl)
	if opts.Bootstrap && ds.empty {
		cfg := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(s.id), Address: s.trans.LocalAddr()}}}
		if err := raft.BootstrapCluster(conf, s.bolt, s.bolt, snaps, s.trans, cfg); err != nil {
			return fmt.Errorf("bootstrap cluster in %s: %w", opts.Dir, err)
		}
		s.log.Info("bootstrapped a new cluster", "node", s.id, "raft", s.trans.LocalAddr())
	}
	s.raft, err = raft.NewRaft(conf, s.fsm, s.bolt, s.bolt, snaps, s.trans)
	if err != nil {
		return fmt.Errorf("%w: start raft from %s: %w", ErrDataDir, opts.Dir, err)
	}
	return nil
}

func (s *Store) raftConfig(hl hclog.Logger) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = raft.ServerID(s.id)
	c.Logger = hl
	o := s.opts
	set := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	set(&c.HeartbeatTimeout, o.HeartbeatTimeout)
	set(&c.ElectionTimeout, o.ElectionTimeout)
	set(&c.LeaderLeaseTimeout, o.LeaderLeaseTimeout)
	set(&c.CommitTimeout, o.CommitTimeout)
	set(&c.SnapshotInterval, o.SnapshotInterval)
	if o.SnapshotThreshold > 0 {
		c.SnapshotThreshold = o.SnapshotThreshold
	}
	if o.TrailingLogs > 0 {
		c.TrailingLogs = o.TrailingLogs
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		c.LeaderLeaseTimeout = c.HeartbeatTimeout
	}
	return c
}

// release frees what start acquired when Open fails.
func (s *Store) release() {
	if s.raft != nil {
		s.raft.Shutdown().Error()
	} else if c, ok := s.trans.(raft.WithClose); ok && s.opts.Transport == nil {
		c.Close()
	}
	if s.bolt != nil {
		s.bolt.Close()
	}
}

// ID is this node's ID.
func (s *Store) ID() NodeID { return s.id }

// FSM returns the state machine (State, Watch, Applied).
func (s *Store) FSM() *FSM { return s.fsm }

// State is the local state: no network, no lock.
func (s *Store) State() *State { return s.fsm.State() }

// RaftAddr is the address other nodes reach this node's Raft on.
func (s *Store) RaftAddr() string { return string(s.trans.LocalAddr()) }

// IsLeader reports whether this node is the leader right now.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

func (s *Store) timeout(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	if s.opts.ApplyTimeout > 0 {
		return s.opts.ApplyTimeout
	}
	return 10 * time.Second
}

// mustLead returns nil on the leader, ErrClosed after Close, and a
// *NotLeaderError elsewhere.
func (s *Store) mustLead() error {
	if s.closed.Load() {
		return ErrClosed
	}
	switch s.raft.State() {
	case raft.Leader:
		return nil
	case raft.Shutdown:
		return ErrClosed
	}
	return s.notLeader()
}

func (s *Store) notLeader() error {
	addr, id := s.raft.LeaderWithID()
	e := &NotLeaderError{LeaderID: NodeID(id), LeaderRaft: string(addr)}
	if n, ok := s.State().Node(NodeID(id)); ok {
		e.LeaderAPI = n.API
	}
	return e
}

func (s *Store) raftErr(what string, err error) error {
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", what, ErrClosed)
	}
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%s: %w", what, s.notLeader())
	case errors.Is(err, raft.ErrRaftShutdown):
		return fmt.Errorf("%s: %w", what, ErrClosed)
	case errors.Is(err, raft.ErrLeadershipLost):
		return fmt.Errorf("%s: leadership lost before commit, the outcome is unknown: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Apply proposes b on the leader and waits until it is applied here. On a
// follower it returns a *NotLeaderError (errors.Is ErrNotLeader) and
// proposes nothing: forward the encoded command to the leader's API. A
// command the FSM refuses (ErrStale, ErrNoSuchVersion) comes back as the
// error, with the index of the entry that carried it.
func (s *Store) Apply(ctx context.Context, b Body) (uint64, Result, error) {
	data, err := EncodeCommand(b)
	if err != nil {
		return 0, Result{}, err
	}
	return s.ApplyEncoded(ctx, data)
}

// ApplyEncoded is Apply for a command already encoded (one forwarded by
// another node's API). It is decoded and validated before it is proposed.
func (s *Store) ApplyEncoded(ctx context.Context, data []byte) (uint64, Result, error) {
	b, err := DecodeCommand(data)
	if err != nil {
		return 0, Result{}, err
	}
	if err := s.mustLead(); err != nil {
		return 0, Result{}, fmt.Errorf("apply %s: %w", b.Type(), err)
	}
	f := s.raft.Apply(data, s.timeout(ctx))
	if err := f.Error(); err != nil {
		return 0, Result{}, s.raftErr("apply "+b.Type(), err)
	}
	switch r := f.Response().(type) {
	case Result:
		return f.Index(), r, nil
	case error:
		return f.Index(), Result{}, r
	default:
		return f.Index(), Result{}, fmt.Errorf("apply %s: unexpected FSM response %T", b.Type(), r)
	}
}

// Barrier waits, on the leader, until every entry committed before it is
// applied to the local FSM.
func (s *Store) Barrier(ctx context.Context) error {
	if err := s.raft.Barrier(s.timeout(ctx)).Error(); err != nil {
		return s.raftErr("barrier", err)
	}
	return nil
}

// WaitApplied waits until this node's FSM has applied index, or ctx ends.
// A follower uses it to serve a write's result only once it has it. index
// must be that of a command or a membership change (what Apply returns):
// raft's own no-op and barrier entries never reach the FSM, so waiting for
// one returns only with the next command.
func (s *Store) WaitApplied(ctx context.Context, index uint64) error {
	for {
		_, ch := s.fsm.Watch()
		if s.fsm.Applied() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for log index %d (applied %d): %w", index, s.fsm.Applied(), ctx.Err())
		}
	}
}

// Snapshot makes Raft take a snapshot now and compact its log (raft also
// does so by itself every SnapshotThreshold entries).
func (s *Store) Snapshot() error {
	if err := s.raft.Snapshot().Error(); err != nil {
		return s.raftErr("snapshot", err)
	}
	return nil
}

// SnapshotIndex is the log index of the latest snapshot this node has
// taken or installed (0: none yet).
func (s *Store) SnapshotIndex() uint64 {
	v, _ := strconv.ParseUint(s.raft.Stats()["last_snapshot_index"], 10, 64)
	return v
}

// Member is one server of the Raft configuration.
type Member struct {
	ID     NodeID `json:"id"`
	Raft   string `json:"raft"`
	API    string `json:"api,omitempty"` // from the node registry
	Voter  bool   `json:"voter"`
	Leader bool   `json:"leader"`
}

// Members returns the servers of the current Raft configuration, by ID.
func (s *Store) Members() ([]Member, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, s.raftErr("cluster members", err)
	}
	_, leader := s.raft.LeaderWithID()
	st := s.State()
	var out []Member
	for _, srv := range f.Configuration().Servers {
		m := Member{ID: NodeID(srv.ID), Raft: string(srv.Address), Voter: srv.Suffrage == raft.Voter, Leader: srv.ID == leader}
		if n, ok := st.Node(m.ID); ok {
			m.API = n.API
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Member) int { return compareID(a.ID, b.ID) })
	return out, nil
}

func compareID(a, b NodeID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Join adds a node to the cluster as a voter and records its addresses; it
// runs on the leader (elsewhere: *NotLeaderError). Joining again with the
// same ID and address changes nothing; the same ID with a new address
// moves it; a different ID at an address already in use replaces the old
// server there (that node was rebuilt under a new ID).
func (s *Store) Join(ctx context.Context, id NodeID, raftAddr, apiAddr string) error {
	reg := RegisterNode{ID: id, Raft: raftAddr, API: apiAddr}
	if err := reg.validate(); err != nil {
		return fmt.Errorf("join %q: %w", id, err)
	}
	if err := s.mustLead(); err != nil {
		return fmt.Errorf("join %q: %w", id, err)
	}
	if err := s.checkPeer(ctx, raftAddr); err != nil {
		s.log.Warn("join refused: the node failed mutual TLS", "node", id, "raft", raftAddr, "err", err)
		return fmt.Errorf("join %q: %w", id, err)
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return s.raftErr(fmt.Sprintf("join %q", id), err)
	}
	present := false
	for _, srv := range f.Configuration().Servers {
		switch {
		case srv.ID == raft.ServerID(id):
			present = srv.Address == raft.ServerAddress(raftAddr) && srv.Suffrage == raft.Voter
		case srv.Address == raft.ServerAddress(raftAddr):
			s.log.Warn("join: removing the server that held this address", "old", srv.ID, "new", id, "raft", raftAddr)
			if err := s.raft.RemoveServer(srv.ID, 0, s.timeout(ctx)).Error(); err != nil {
				return s.raftErr(fmt.Sprintf("join %q: remove %q at the same address", id, srv.ID), err)
			}
			if _, _, err := s.Apply(ctx, ForgetNode{ID: NodeID(srv.ID)}); err != nil {
				return fmt.Errorf("join %q: %w", id, err)
			}
		}
	}
	if !present {
		if err := s.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, s.timeout(ctx)).Error(); err != nil {
			return s.raftErr(fmt.Sprintf("join %q", id), err)
		}
		s.log.Info("node joined", "node", id, "raft", raftAddr, "api", apiAddr)
	}
	if n, ok := s.State().Node(id); ok && n == (NodeInfo{id, raftAddr, apiAddr}) {
		return nil
	}
	if _, _, err := s.Apply(ctx, reg); err != nil {
		return fmt.Errorf("join %q: %w", id, err)
	}
	return nil
}

// checkPeer makes sure, with TLS, that the node at raftAddr holds a
// certificate this cluster accepts (and accepts this node's) before it
// enters the configuration: a voter that can never be reached would count
// against the quorum, and could stop a small cluster from committing.
func (s *Store) checkPeer(ctx context.Context, raftAddr string) error {
	if s.tls == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, min(s.timeout(ctx), 10*time.Second))
	defer cancel()
	c, err := s.tls.dial(ctx, raftAddr)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPeerTLS, err)
	}
	c.Close()
	return nil
}

// Remove takes a node out of the cluster and forgets its registry entry,
// verdicts and load reports; it runs on the leader.
func (s *Store) Remove(ctx context.Context, id NodeID) error {
	if err := s.mustLead(); err != nil {
		return fmt.Errorf("remove %q: %w", id, err)
	}
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return s.raftErr(fmt.Sprintf("remove %q", id), err)
	}
	found := slices.ContainsFunc(f.Configuration().Servers, func(srv raft.Server) bool { return srv.ID == raft.ServerID(id) })
	if _, registered := s.State().Node(id); !found && !registered {
		return fmt.Errorf("remove %q: %w", id, ErrUnknownNode)
	}
	// Forget first: a leader that removes itself cannot commit afterwards.
	if _, _, err := s.Apply(ctx, ForgetNode{ID: id}); err != nil {
		return fmt.Errorf("remove %q: %w", id, err)
	}
	if found {
		if err := s.raft.RemoveServer(raft.ServerID(id), 0, s.timeout(ctx)).Error(); err != nil {
			return s.raftErr(fmt.Sprintf("remove %q", id), err)
		}
	}
	s.log.Info("node removed", "node", id)
	return nil
}

// Status is one node's view of the cluster, from local memory.
type Status struct {
	ID           NodeID    `json:"id"`
	State        string    `json:"state"` // Leader, Follower, Candidate, Shutdown
	Term         uint64    `json:"term"`
	LastIndex    uint64    `json:"last_index"`
	CommitIndex  uint64    `json:"commit_index"`
	AppliedIndex uint64    `json:"applied_index"`
	LeaderID     NodeID    `json:"leader_id,omitempty"`
	LeaderRaft   string    `json:"leader_raft,omitempty"`
	LeaderAPI    string    `json:"leader_api,omitempty"`
	LastContact  time.Time `json:"last_contact,omitzero"` // with the leader; zero on the leader
	// InQuorum: this node leads (raft steps a leader down when it loses
	// contact with a majority for LeaderLeaseTimeout) or follows a leader
	// it heard from within QuorumTimeout.
	InQuorum      bool   `json:"in_quorum"`
	ConfigVersion uint64 `json:"config_version"`
	ConfigHash    string `json:"config_hash,omitempty"`
}

// Status returns this node's Raft and state summary without any network
// round trip.
func (s *Store) Status() Status {
	addr, leader := s.raft.LeaderWithID()
	st := s.State()
	out := Status{
		ID:           s.id,
		State:        s.raft.State().String(),
		Term:         s.raft.CurrentTerm(),
		LastIndex:    s.raft.LastIndex(),
		CommitIndex:  s.raft.CommitIndex(),
		AppliedIndex: s.fsm.Applied(),
		LeaderID:     NodeID(leader),
		LeaderRaft:   string(addr),
	}
	if n, ok := st.Node(out.LeaderID); ok {
		out.LeaderAPI = n.API
	}
	if cv, ok := st.Config(); ok {
		out.ConfigVersion, out.ConfigHash = cv.Version, cv.Hash.String()
	}
	switch s.raft.State() {
	case raft.Leader:
		out.InQuorum = true
	case raft.Follower:
		out.LastContact = s.raft.LastContact()
		qt := s.opts.QuorumTimeout
		if qt <= 0 {
			qt = 2 * s.raftHeartbeat()
		}
		out.InQuorum = leader != "" && !out.LastContact.IsZero() && time.Since(out.LastContact) < qt
	}
	return out
}

func (s *Store) raftHeartbeat() time.Duration {
	if s.opts.HeartbeatTimeout > 0 {
		return s.opts.HeartbeatTimeout
	}
	return raft.DefaultConfig().HeartbeatTimeout
}

// Run keeps this node's registry entry right while it leads (a
// bootstrapped node registers itself this way; a node whose API address
// changed corrects it). It returns when ctx ends. The lead's node runs it
// beside the DNS server; Close stops Raft itself.
func (s *Store) Run(ctx context.Context) error {
	obs := make(chan raft.Observation, 8)
	o := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.RaftState)
		return ok
	})
	s.raft.RegisterObserver(o)
	defer s.raft.DeregisterObserver(o)
	retry := time.NewTicker(5 * time.Second)
	defer retry.Stop()
	for {
		if s.raft.State() == raft.Leader {
			if err := s.registerSelf(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("register this node", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-obs:
		case <-retry.C:
		}
	}
}

func (s *Store) registerSelf(ctx context.Context) error {
	want := NodeInfo{ID: s.id, Raft: s.RaftAddr(), API: s.opts.APIAddr}
	if n, ok := s.State().Node(s.id); ok && n == want {
		return nil
	}
	_, _, err := s.Apply(ctx, RegisterNode(want))
	return err
}

// Close stops the Store: a leader first hands leadership to another voter
// (so that writes resume without waiting for an election timeout), then
// Raft shuts down and the log is closed. It is safe to call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		if s.raft.State() == raft.Leader {
			if cfg := s.raft.GetConfiguration(); cfg.Error() == nil {
				voters := 0
				for _, srv := range cfg.Configuration().Servers {
					if srv.Suffrage == raft.Voter {
						voters++
					}
				}
				if voters > 1 {
					if err := s.raft.LeadershipTransfer().Error(); err != nil {
						s.log.Warn("leadership transfer before shutdown", "err", err)
					}
				}
			}
		}
		if err := s.raft.Shutdown().Error(); err != nil {
			s.closeErr = fmt.Errorf("raft shutdown: %w", err)
		}
		if err := s.bolt.Close(); err != nil && s.closeErr == nil {
			s.closeErr = fmt.Errorf("close %s: %w", raftDBFile, err)
		}
	})
	return s.closeErr
}

// OptionsFor returns the Options that c's node section asks for: node.name
// as the ID, node.data (relative to the configuration file) as the data
// directory, node.raft, node.api, node.bootstrap and node.tls (its files
// relative to the configuration file). Timing and logging are left for the
// caller.
func OptionsFor(c *config.Config) Options {
	dir := c.HostPath(c.Node.Data)
	if dir == "" {
		dir = c.Node.Data
	}
	o := Options{
		ID:        NodeID(c.Node.Name),
		Dir:       dir,
		RaftAddr:  c.Node.Raft,
		APIAddr:   c.Node.API,
		Bootstrap: c.Node.Bootstrap,
	}
	if t := c.Node.TLS; t.Enabled() {
		host := func(p string) string {
			if h := c.HostPath(p); h != "" {
				return h
			}
			return p
		}
		o.TLS = &TLSFiles{Cert: host(t.Cert), Key: host(t.Key), CA: host(t.CA), ServerName: t.ServerName}
	}
	return o
}

package raftstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// A backup (`tern snapshot save`) is one JSON header line, then the FSM's
// snapshot stream (see the snapshot format) of exactly Size bytes:
//
//	{"format":"tern-backup","v":1,"leader":"n1","members":[..],"index":..,"term":..,"size":..,"sha256":"..","saved":".."}
//	{"format":"tern-raftstore","v":3,"applied":..}
//	...
//
// The header's checksum covers the snapshot bytes, so a truncated or
// altered file is refused before anything is written.
const (
	backupFormat  = "tern-backup"
	backupVersion = 1
)

// BackupHeader describes a backup: where and when it was taken.
type BackupHeader struct {
	Format string `json:"format"`
	V      int    `json:"v"`
	// Leader is the node that wrote it; Members the Raft voters then.
	Leader  NodeID   `json:"leader"`
	Members []Member `json:"members"`
	// Index and Term are the Raft log position of the state it holds.
	Index uint64    `json:"index"`
	Term  uint64    `json:"term"`
	Size  int64     `json:"size"`
	SHA   string    `json:"sha256"`
	Saved time.Time `json:"saved"`
}

// Backup writes the leader's current state to w as a backup. It runs on
// the leader (elsewhere: *NotLeaderError) after a barrier, so the state
// holds every entry committed before the call. The snapshot is staged in
// a temporary file (its checksum goes in the header, before it).
func (s *Store) Backup(ctx context.Context, w io.Writer) (BackupHeader, error) {
	if err := s.mustLead(); err != nil {
		return BackupHeader{}, err
	}
	if err := s.Barrier(ctx); err != nil {
		return BackupHeader{}, err
	}
	st, applied := s.fsm.State(), s.fsm.Applied()
	term, _ := strconv.ParseUint(s.raft.Stats()["term"], 10, 64)
	members, err := s.Members()
	if err != nil {
		return BackupHeader{}, err
	}
	tmp, err := os.CreateTemp("", "tern-backup-*")
	if err != nil {
		return BackupHeader{}, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(tmp, h)}
	if err := writeSnapshot(cw, st, applied); err != nil {
		return BackupHeader{}, fmt.Errorf("backup: %w", err)
	}
	hdr := BackupHeader{Format: backupFormat, V: backupVersion, Leader: s.id, Members: members,
		Index: applied, Term: term, Size: cw.n, SHA: hex.EncodeToString(h.Sum(nil)), Saved: time.Now().UTC()}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return BackupHeader{}, fmt.Errorf("backup: %w", err)
	}
	if err := json.NewEncoder(w).Encode(hdr); err != nil {
		return BackupHeader{}, err
	}
	if _, err := io.Copy(w, tmp); err != nil {
		return BackupHeader{}, err
	}
	return hdr, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Backed is a backup read and checked whole: its header, state and index.
type Backed struct {
	Header  BackupHeader
	State   *State
	Applied uint64
}

// ReadBackup reads and checks a backup: the header's format, the size and
// checksum of the snapshot, and the snapshot itself. A backup from a newer
// Tern is ErrNewerFormat, a damaged one ErrCorruptSnapshot.
func ReadBackup(r io.Reader) (Backed, error) {
	br := bufio.NewReader(r)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return Backed{}, fmt.Errorf("%w: backup header: %w", ErrCorruptSnapshot, err)
	}
	var hdr BackupHeader
	if err := json.Unmarshal(line, &hdr); err != nil || hdr.Format != backupFormat {
		return Backed{}, fmt.Errorf("%w: not a Tern backup (no %q header line)", ErrCorruptSnapshot, backupFormat)
	}
	if hdr.V > backupVersion {
		return Backed{}, newerFormat("backup", hdr.V, backupVersion)
	}
	if hdr.V < 1 || hdr.Size < 0 {
		return Backed{}, fmt.Errorf("%w: backup header: version %d, size %d", ErrCorruptSnapshot, hdr.V, hdr.Size)
	}
	h := sha256.New()
	var body bytes.Buffer
	n, err := io.Copy(io.MultiWriter(&body, h), io.LimitReader(br, hdr.Size+1))
	switch {
	case err != nil:
		return Backed{}, fmt.Errorf("%w: backup: %w", ErrCorruptSnapshot, err)
	case n != hdr.Size:
		return Backed{}, fmt.Errorf("%w: backup holds %d bytes after its header, the header says %d (truncated or appended to)", ErrCorruptSnapshot, n, hdr.Size)
	case hex.EncodeToString(h.Sum(nil)) != hdr.SHA:
		return Backed{}, fmt.Errorf("%w: backup checksum %x, the header says %s", ErrCorruptSnapshot, h.Sum(nil), hdr.SHA)
	}
	st, applied, err := readSnapshot(&body)
	if err != nil {
		return Backed{}, fmt.Errorf("backup: %w", err)
	}
	return Backed{Header: hdr, State: st, Applied: applied}, nil
}

// RestoreBackup makes dir the data directory of a new one-node cluster
// holding b's state: this node (id at raftAddr) is its only voter; start
// it and join others to it. dir must not hold a node's data already (a
// restore never overwrites one: move it away first).
func RestoreBackup(dir string, id NodeID, raftAddr string, b Backed) error {
	if err := checkName("node ID", string(id)); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	if ds, err := inspectDir(dir); err != nil {
		return err
	} else if !ds.empty {
		return fmt.Errorf("%w: %s already holds a node's data: a restore makes a new cluster and never overwrites one; stop the node and move the directory away first", ErrDataDir, dir)
	}
	if err := writeNodeID(dir, id); err != nil {
		return fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	bolt, snaps, err := openStores(dir)
	if err != nil {
		return err
	}
	defer bolt.Close()
	term := max(b.Header.Term, 1)
	// The term is kept so that the new cluster's first election is past
	// the snapshot's term, as raft expects of its own state.
	if err := bolt.SetUint64([]byte("CurrentTerm"), term); err != nil {
		return fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(raftAddr)}}}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(raftAddr))
	sink, err := snaps.Create(raft.SnapshotVersionMax, b.Applied, term, conf, b.Applied, trans)
	if err != nil {
		return fmt.Errorf("%w: create snapshot: %w", ErrDataDir, err)
	}
	return (&fsmSnapshot{state: b.State, applied: b.Applied}).Persist(sink)
}

// Recover rewrites a stopped node's Raft configuration to peers (which
// must include the node itself), for a cluster that lost its quorum for
// good: the survivors' state, with every entry of their log applied,
// becomes a snapshot under the new configuration, and the registry
// forgets the nodes not in peers. Run it on every survivor, with the same
// peers, while all are stopped; then start them. It is raft.RecoverCluster
// (Consul's peers.json) for a Tern data directory.
func Recover(dir string, peers []Member) error {
	ds, err := inspectDir(dir)
	if err != nil {
		return err
	}
	if ds.empty || !ds.hasDB {
		return fmt.Errorf("%w: %s holds no Raft state to recover", ErrDataDir, dir)
	}
	if !slices.ContainsFunc(peers, func(p Member) bool { return p.ID == ds.id }) {
		return fmt.Errorf("recover: the peers do not include this node %q (its node-id in %s)", ds.id, dir)
	}
	bolt, snaps, err := openStores(dir)
	if err != nil {
		return err
	}
	defer bolt.Close()
	keep := make(map[NodeID]bool, len(peers))
	var servers []raft.Server
	for _, p := range peers {
		if err := checkName("peer ID", string(p.ID)); err != nil || p.Raft == "" {
			return fmt.Errorf("recover: peer %q at %q: write ID=HOST:PORT (the Raft address)", p.ID, p.Raft)
		}
		keep[p.ID] = true
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Raft)})
	}
	f := &recoverFSM{FSM: NewFSM(), keep: keep}
	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(ds.id)
	conf.Logger = newHCLog(nil)
	_, trans := raft.NewInmemTransport(servers[0].Address)
	if err := raft.RecoverCluster(conf, f, bolt, bolt, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
		return fmt.Errorf("recover %s: %w", dir, err)
	}
	if err := f.Halted(); err != nil {
		return fmt.Errorf("recover %s: %w", dir, err)
	}
	return nil
}

// recoverFSM forgets the nodes not kept before its snapshot is taken.
type recoverFSM struct {
	*FSM
	keep map[NodeID]bool
}

func (f *recoverFSM) Snapshot() (raft.FSMSnapshot, error) {
	st := f.State()
	for _, n := range st.Nodes() {
		if f.keep[n.ID] {
			continue
		}
		next, _, _, err := st.apply(f.Applied(), ForgetNode{ID: n.ID})
		if err != nil {
			return nil, fmt.Errorf("forget node %q: %w", n.ID, err)
		}
		st = next
	}
	f.publish(st, f.Applied(), nil)
	return f.FSM.Snapshot()
}

// openStores opens a data directory's log and snapshot stores, refusing
// one that a running node holds.
func openStores(dir string) (*raftboltdb.BoltStore, *raft.FileSnapshotStore, error) {
	path := filepath.Join(dir, raftDBFile)
	bolt, err := raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{Timeout: time.Second}})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, nil, fmt.Errorf("%w: %s is in use: stop the node first", ErrDataDir, path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: open %s: %w", ErrDataDir, path, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, newHCLog(nil).Named("snapshots"))
	if err != nil {
		bolt.Close()
		return nil, nil, fmt.Errorf("%w: snapshots in %s: %w", ErrDataDir, dir, err)
	}
	return bolt, snaps, nil
}

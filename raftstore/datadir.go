package raftstore

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Data directory layout:
//
//	<dir>/node-id      this node's Raft server ID, written once
//	<dir>/raft.db      Raft log and stable store (bbolt, raft-boltdb/v2)
//	<dir>/snapshots/   FSM snapshots (raft.FileSnapshotStore)
const (
	nodeIDFile   = "node-id"
	raftDBFile   = "raft.db"
	snapshotsDir = "snapshots"
)

// dirState is what Open found in a data directory.
type dirState struct {
	id    NodeID // from node-id, "" when absent
	hasDB bool
	empty bool // nothing of Tern's in it: a new node
}

func inspectDir(dir string) (dirState, error) {
	var ds dirState
	data, err := os.ReadFile(filepath.Join(dir, nodeIDFile))
	switch {
	case err == nil:
		ds.id = NodeID(strings.TrimSpace(string(data)))
		if err := checkName("node-id", string(ds.id)); err != nil {
			return ds, fmt.Errorf("%w: %s: %w", ErrDataDir, filepath.Join(dir, nodeIDFile), err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return ds, fmt.Errorf("%w: read %s: %w", ErrDataDir, filepath.Join(dir, nodeIDFile), err)
	}
	if _, err := os.Stat(filepath.Join(dir, raftDBFile)); err == nil {
		ds.hasDB = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return ds, fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	snaps, err := os.ReadDir(filepath.Join(dir, snapshotsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ds, fmt.Errorf("%w: %w", ErrDataDir, err)
	}
	ds.empty = ds.id == "" && !ds.hasDB && len(snaps) == 0
	switch {
	case ds.hasDB && ds.id == "":
		return ds, fmt.Errorf("%w: %s has %s but no %s: this node's identity is lost; restore the file, or remove the directory and join the node as a new member",
			ErrDataDir, dir, raftDBFile, nodeIDFile)
	case ds.id != "" && !ds.hasDB:
		return ds, fmt.Errorf("%w: %s has %s (%s) but no %s: the Raft log is lost; restore it, or remove the directory and join the node as a new member",
			ErrDataDir, dir, nodeIDFile, ds.id, raftDBFile)
	case ds.id == "" && len(snaps) > 0:
		return ds, fmt.Errorf("%w: %s has snapshots but no %s or %s", ErrDataDir, dir, nodeIDFile, raftDBFile)
	}
	return ds, nil
}

// writeNodeID writes the node-id file atomically (temporary file, fsync,
// rename, fsync of the directory).
func writeNodeID(dir string, id NodeID) error {
	tmp, err := os.CreateTemp(dir, nodeIDFile+".tmp*")
	if err != nil {
		return fmt.Errorf("write node-id: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(string(id) + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("write node-id: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write node-id: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write node-id: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, nodeIDFile)); err != nil {
		return fmt.Errorf("write node-id: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func randomID() (NodeID, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("node ID: %w", err)
	}
	return NodeID("node-" + hex.EncodeToString(b[:])), nil
}

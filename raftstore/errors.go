package raftstore

import (
	"errors"
	"fmt"
)

var (
	// ErrNotLeader is returned by writes on a node that is not the leader;
	// errors.As with *NotLeaderError tells where to forward the write.
	ErrNotLeader = errors.New("not the Raft leader")
	// ErrMalformed is a command or snapshot that does not decode or whose
	// fields do not validate.
	ErrMalformed = errors.New("malformed command")
	// ErrUnknownCommand is a command type this version does not know.
	ErrUnknownCommand = errors.New("unknown command type")
	// ErrUnsupportedVersion is a command envelope version this version does
	// not know.
	ErrUnsupportedVersion = errors.New("unsupported command version")
	// ErrNewerFormat is a log entry, a snapshot or a backup written by a
	// newer Tern in a format this one does not read. A node that meets one
	// in its log stops applying (its state would part from the cluster's)
	// and its Run returns the error: upgrade it.
	ErrNewerFormat = errors.New("written by a newer version of Tern")
	// ErrNoSuchVersion is a rollback to a configuration version that is not
	// (or no longer) kept.
	ErrNoSuchVersion = errors.New("no such configuration version")
	// ErrStale is a configuration change (apply or rollback) based on a
	// version that is no longer the current one, and not forced.
	ErrStale = errors.New("configuration version is no longer current")
	// ErrMissingBlob is a configuration naming a file, or a file naming a
	// chunk, that the state does not hold (never uploaded, or collected
	// after UploadLifetime entries unused): upload it, then propose again.
	ErrMissingBlob = errors.New("content not held")
	// ErrBlobMismatch is content that does not hash to the SHA-256 it is
	// named by, or a file whose chunks do not add up to its size.
	ErrBlobMismatch = errors.New("content does not match its hash")
	// ErrBlobSpace is an upload that would make the state hold more than
	// MaxStoredBytes of file content.
	ErrBlobSpace = errors.New("no room for more file content")
	// ErrCorruptSnapshot is a snapshot that does not decode or whose hash
	// does not match its content.
	ErrCorruptSnapshot = errors.New("corrupt snapshot")
	// ErrDataDir is a data directory Tern refuses to start from: a missing
	// or corrupt Raft log, a missing node-id file, a directory in use.
	ErrDataDir = errors.New("unusable data directory")
	// ErrNodeIDMismatch is a data directory that belongs to another node ID.
	ErrNodeIDMismatch = errors.New("data directory belongs to another node")
	// ErrUnknownNode is a node ID that is not a member of the cluster.
	ErrUnknownNode = errors.New("unknown node")
	// ErrPeerTLS is a node that Join refused because the mutual TLS
	// handshake with it failed: no certificate, one from another CA, an
	// expired one, or one without the address's name.
	ErrPeerTLS = errors.New("mutual TLS with the Raft peer failed")
	// ErrClosed is an operation on a closed Store.
	ErrClosed = errors.New("store closed")
)

// NotLeaderError is ErrNotLeader with what this node knows of the leader;
// the IDs and addresses are empty when there is no leader right now.
type NotLeaderError struct {
	LeaderID   NodeID
	LeaderRaft string
	LeaderAPI  string // from the node registry; empty when not registered
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" {
		return "not the Raft leader (no leader elected)"
	}
	if e.LeaderAPI == "" {
		return fmt.Sprintf("not the Raft leader (leader is %s at %s)", e.LeaderID, e.LeaderRaft)
	}
	return fmt.Sprintf("not the Raft leader (leader is %s, API %s)", e.LeaderID, e.LeaderAPI)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// newerFormat is the error for data of format got from a newer Tern, where
// this one reads up to have.
func newerFormat(what string, got, have int) error {
	return fmt.Errorf("%w: %s format %d, this node reads up to %d: upgrade tern on this node (to the release that wrote it, or later)", ErrNewerFormat, what, got, have)
}

package raftstore

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// FSM is the raft.FSM that holds Tern's replicated state. Raft calls Apply,
// Snapshot and Restore from one goroutine; any goroutine may call State,
// Applied and Watch.
type FSM struct {
	state   atomic.Pointer[State]
	applied atomic.Uint64
	// restored is the index of the last snapshot restored (0: none).
	restored atomic.Uint64
	// halted is set at the first entry written by a newer Tern: from it
	// on the FSM applies nothing (see Halted).
	halted atomic.Pointer[error]

	mu   sync.Mutex    // guards next and the history; readers of State never take it
	next chan struct{} // closed at the next apply or restore
	// changes are the last commands that changed members (see
	// ChangedSince), oldest first; they hold every change after index
	// changesFrom.
	changes     []memberChange
	changesFrom uint64
}

// memberChange is the members one command changed.
type memberChange struct {
	index uint64
	keys  []MemberKey
}

// keptChanges is how many changing commands ChangedSince reaches back at
// least (it keeps up to twice as many).
const keptChanges = 512

var _ raft.ConfigurationStore = (*FSM)(nil)

// NewFSM returns an FSM holding the empty state.
func NewFSM() *FSM {
	f := &FSM{next: make(chan struct{})}
	f.state.Store(emptyState())
	return f
}

// State returns the current immutable view.
func (f *FSM) State() *State { return f.state.Load() }

// Applied is the index of the last log entry applied, whether it changed
// the state or was rejected.
func (f *FSM) Applied() uint64 { return f.applied.Load() }

// Restored is the log index of the last snapshot this FSM was restored
// from (0: none): a node that caught up from a leader's snapshot, or
// started from its own, tells so.
func (f *FSM) Restored() uint64 { return f.restored.Load() }

// Halted is nil, or why the FSM stopped applying: a log entry in a format
// newer than this node reads (ErrNewerFormat). Skipping it would let this
// node's state part from the cluster's, so every later entry is left
// unapplied too; the node must stop and be upgraded. Watch's channel is
// closed when it halts.
func (f *FSM) Halted() error {
	if e := f.halted.Load(); e != nil {
		return *e
	}
	return nil
}

// halt records err as the reason the FSM stopped and wakes the watchers;
// the state and Applied stay where they were.
func (f *FSM) halt(err error) {
	if !f.halted.CompareAndSwap(nil, &err) {
		return
	}
	f.mu.Lock()
	close(f.next)
	f.next = make(chan struct{})
	f.mu.Unlock()
}

// Watch returns the current state and a channel that is closed when the
// next log entry is applied (or a snapshot restored). A consumer loops:
//
//	s, ch := fsm.Watch()
//	if s.Index() != last { recompile(s); last = s.Index() }
//	<-ch
//
// and so wakes for every entry but recompiles only when the state changed.
func (f *FSM) Watch() (*State, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Load(), f.next
}

// ChangedSince returns the members whose observations or admin state
// changed in the commands applied after log index since (a member may be
// listed more than once, and commands applied after the state the caller
// read may be included). ok is false when the FSM no longer knows: since
// is before a restored snapshot, or more changing commands ago than it
// keeps (keptChanges at least); the caller then treats every member as
// changed. A reader that recomputes from a state s passes s.Index() as
// since the next time, and so learns of every change it has not seen.
func (f *FSM) ChangedSince(since uint64) (keys []MemberKey, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if since < f.changesFrom {
		return nil, false
	}
	i, _ := slices.BinarySearchFunc(f.changes, since+1, func(c memberChange, idx uint64) int { return cmp.Compare(c.index, idx) })
	for _, c := range f.changes[i:] {
		keys = append(keys, c.keys...)
	}
	return keys, true
}

// publish makes s (nil: unchanged) the state as of index; keys are the
// members the command changed.
func (f *FSM) publish(s *State, index uint64, keys []MemberKey) {
	f.mu.Lock()
	if s != nil {
		f.state.Store(s)
	}
	if len(keys) > 0 {
		if len(f.changes) == 2*keptChanges {
			f.changesFrom = f.changes[keptChanges-1].index
			f.changes = slices.Delete(f.changes, 0, keptChanges)
		}
		f.changes = append(f.changes, memberChange{index, keys})
	}
	f.applied.Store(index)
	close(f.next)
	f.next = make(chan struct{})
	f.mu.Unlock()
}

// Apply decodes and applies one log entry. It returns a Result, or an
// error for a command that is rejected (malformed, unknown, or refused like
// a rollback to a version no longer kept); a rejected command changes
// nothing.
func (f *FSM) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		f.publish(nil, l.Index, nil)
		return nil
	}
	res, err := f.applyData(l.Index, l.Data)
	if err != nil {
		return err
	}
	return res
}

func (f *FSM) applyData(index uint64, data []byte) (Result, error) {
	if err := f.Halted(); err != nil {
		return Result{}, fmt.Errorf("log index %d not applied: %w", index, err)
	}
	cur := f.state.Load()
	// Content whose upload lease ran out falls out at this entry whatever
	// the command does, so that it does on every node.
	swept := cur.expire(index)
	keep := func() *State {
		if swept == cur {
			return nil
		}
		return swept
	}
	b, err := DecodeCommand(data)
	if errors.Is(err, ErrNewerFormat) {
		err = fmt.Errorf("log index %d: %w", index, err)
		f.halt(err)
		return Result{}, err
	}
	if err != nil {
		f.publish(keep(), index, nil)
		return Result{}, fmt.Errorf("log index %d: %w", index, err)
	}
	next, res, keys, err := swept.apply(index, b)
	if err != nil {
		f.publish(keep(), index, nil)
		return Result{}, fmt.Errorf("log index %d: %s: %w", index, b.Type(), err)
	}
	if next == cur {
		next = nil
	}
	f.publish(next, index, keys)
	return res, nil
}

// StoreConfiguration is called by raft for each membership change entry;
// the FSM keeps nothing of it (Store.Members asks raft) but counts it as
// applied, so that WaitApplied on a Join's index returns.
func (f *FSM) StoreConfiguration(index uint64, _ raft.Configuration) {
	f.publish(nil, index, nil)
}

// Snapshot captures the current state; the pointer is all it copies.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	return &fsmSnapshot{state: f.state.Load(), applied: f.applied.Load()}, nil
}

// Restore replaces the state with the one in r, whole: it decodes and
// checks the entire snapshot before it swaps anything.
func (f *FSM) Restore(r io.ReadCloser) error {
	defer r.Close()
	s, applied, err := readSnapshot(r)
	if errors.Is(err, ErrNewerFormat) {
		f.halt(err)
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.changes, f.changesFrom = nil, s.Index() // nothing is known of what came before
	f.mu.Unlock()
	f.publish(s, applied, nil)
	f.restored.Store(applied)
	return nil
}

type fsmSnapshot struct {
	state   *State
	applied uint64
}

// Persist streams the captured state to sink while Apply goes on.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(sink, s.state, s.applied); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}

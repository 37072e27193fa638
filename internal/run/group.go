// Package run is the one lifecycle of Tern's long-lived parts: a Group
// starts them in order, stops them in reverse, and the first that fails
// (or ends on its own, or panics) stops the others. It imports only the
// standard library.
package run

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
)

// ErrEnded is why a Group stops when a part's Run returned nil before the
// group asked it to stop: every part is long-lived, so ending on its own
// is a failure of the whole.
var ErrEnded = errors.New("ended before it was asked to stop")

// Part is one long-lived part of a Group. Every field but Name may be nil.
type Part struct {
	Name string
	// Start runs before the next part starts (open a file, bind a socket,
	// attach a program): the parts after it may rely on what it did. An
	// error stops the parts already started, in reverse, and Run returns
	// it. ctx is Group.Run's.
	Start func(ctx context.Context) error
	// Run runs until ctx ends, then returns nil; an error stops the group.
	// Nil means the part only holds what Start made until Stop.
	Run func(ctx context.Context) error
	// Stop runs after Run returned, when the parts started after this one
	// have stopped: it undoes Start.
	Stop func() error
}

// Group is a set of Parts run together. The zero value is empty and ready.
// A Group runs once.
type Group struct {
	parts []Part
}

// Add appends p: it starts after the parts added before it and stops
// before them.
func (g *Group) Add(p Part) { g.parts = append(g.parts, p) }

// Go appends a part that is only a Run function.
func (g *Group) Go(name string, run func(ctx context.Context) error) {
	g.Add(Part{Name: name, Run: run})
}

// running is a started part.
type running struct {
	p      Part
	cancel context.CancelFunc
	done   chan struct{}
	err    error // of Run, set before done closes
}

// Run starts every part in order and runs them until ctx ends or a part
// fails, ends or panics; then it stops the started parts in reverse order,
// each one's Run ending (its context cancelled, its return awaited) and its
// Stop run before the part before it is cancelled. It returns every
// error, each prefixed with its part's name, the first first; nil when
// ctx ended and every part stopped cleanly.
func (g *Group) Run(ctx context.Context) error {
	var (
		mu    sync.Mutex
		errs  []error
		first = make(chan struct{}) // closed when a part ends
		once  sync.Once
	)
	fail := func(name string, err error) {
		mu.Lock()
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
		mu.Unlock()
	}
	stopping := make(chan struct{}) // closed when the group stops its parts
	var started []*running
	for _, p := range g.parts {
		if ctx.Err() != nil || isClosed(first) {
			break
		}
		if p.Start != nil {
			if err := guard(func() error { return p.Start(ctx) }); err != nil {
				fail(p.Name, err)
				break
			}
		}
		// A part's context ends only when the group stops it, not with
		// ctx: the stop goes in reverse order.
		pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		r := &running{p: p, cancel: cancel, done: make(chan struct{})}
		started = append(started, r)
		go func() {
			defer close(r.done)
			run := p.Run
			if run == nil {
				run = func(ctx context.Context) error { <-ctx.Done(); return nil }
			}
			r.err = guard(func() error { return run(pctx) })
			select {
			case <-stopping:
			default:
				if r.err == nil {
					r.err = ErrEnded
				}
			}
			if r.err != nil {
				fail(p.Name, r.err)
			}
			once.Do(func() { close(first) })
		}()
	}
	mu.Lock()
	failed := len(errs) > 0
	mu.Unlock()
	if !failed {
		select {
		case <-ctx.Done():
		case <-first:
		}
	}
	close(stopping)
	for i := len(started) - 1; i >= 0; i-- {
		r := started[i]
		r.cancel()
		<-r.done
		if r.p.Stop != nil {
			if err := guard(r.p.Stop); err != nil {
				fail(r.p.Name, err)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return errors.Join(errs...)
}

// Started is a Group running in the background: for a part that replaces
// what it runs while it runs (a node swaps in each configuration's
// prober), where a part's own Run cannot be the Group's.
type Started struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's, set before done closes
}

// Start runs g in a goroutine of its own. Its context carries ctx's
// values but ends only with Stop, so a caller that stops in order stops
// it in its turn.
func (g *Group) Start(ctx context.Context) *Started {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Started{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = g.Run(ctx)
	}()
	return s
}

// Done is closed when the group has stopped: on its own (a part failed or
// ended) or after Stop. Err then says why.
func (s *Started) Done() <-chan struct{} { return s.done }

// Err is Run's error once Done is closed.
func (s *Started) Err() error { <-s.done; return s.err }

// Stop stops the group, waits for it, and returns Run's error; it may be
// called more than once, and after Done.
func (s *Started) Stop() error {
	s.cancel()
	return s.Err()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// guard calls f, turning a panic into an error that carries the stack.
func guard(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v\n%s", v, debug.Stack())
		}
	}()
	return f()
}

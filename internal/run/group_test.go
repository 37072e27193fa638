package run

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternlb/tern/internal/eventually"
)

// journal records what the parts did, in order.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, s)
}

func (j *journal) String() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return strings.Join(j.lines, " ")
}

var errBoom = errors.New("boom")

// behaviour of one test part.
type behaviour uint8

const (
	waits      behaviour = iota // runs until its context ends
	fails                       // Run returns errBoom at once
	ends                        // Run returns nil at once
	panics                      // Run panics
	startFails                  // Start returns errBoom
	startPanics
	stopFails // Stop returns errBoom
	noRun     // no Run: holds what Start made
)

// part builds a part named name that logs its start, run end and stop.
// A part that fails or ends first waits for every part before it to
// start (ready), so the order of the journal is fixed.
func part(j *journal, name string, b behaviour, ready <-chan struct{}) Part {
	p := Part{
		Name: name,
		Start: func(context.Context) error {
			switch b {
			case startFails:
				return errBoom
			case startPanics:
				panic("at start")
			}
			j.add("start:" + name)
			return nil
		},
		Run: func(ctx context.Context) error {
			switch b {
			case fails, ends, panics:
				<-ready
				j.add("end:" + name)
				switch b {
				case fails:
					return errBoom
				case panics:
					panic("in run")
				}
				return nil
			}
			<-ctx.Done()
			j.add("end:" + name)
			return nil
		},
		Stop: func() error {
			j.add("stop:" + name)
			if b == stopFails {
				return errBoom
			}
			return nil
		},
	}
	if b == noRun {
		p.Run = nil
	}
	return p
}

func TestGroup(t *testing.T) {
	tests := []struct {
		name   string
		parts  []behaviour
		cancel bool // cancel the context once all started
		want   string
		errs   []string // substrings of the error, in order; none: nil
	}{
		{
			name:   "cancelled: start in order, stop in reverse",
			parts:  []behaviour{waits, noRun, waits},
			cancel: true,
			want:   "start:a start:b start:c end:c stop:c stop:b end:a stop:a",
		},
		{
			name:  "the first error stops the rest, in reverse",
			parts: []behaviour{waits, fails, waits},
			want:  "start:a start:b start:c end:b end:c stop:c stop:b end:a stop:a",
			errs:  []string{"b: boom"},
		},
		{
			name:  "a part ending on its own is a failure",
			parts: []behaviour{waits, ends},
			want:  "start:a start:b end:b stop:b end:a stop:a",
			errs:  []string{"b: " + ErrEnded.Error()},
		},
		{
			name:  "a panic in Run is an error and stops the rest",
			parts: []behaviour{waits, panics, waits},
			want:  "start:a start:b start:c end:b end:c stop:c stop:b end:a stop:a",
			errs:  []string{"b: panic: in run"},
		},
		{
			name:  "a failed Start: later parts never start, earlier stop",
			parts: []behaviour{waits, waits, startFails, waits},
			want:  "start:a start:b end:b stop:b end:a stop:a",
			errs:  []string{"c: boom"},
		},
		{
			name:  "a panic in Start",
			parts: []behaviour{waits, startPanics, waits},
			want:  "start:a end:a stop:a",
			errs:  []string{"b: panic: at start"},
		},
		{
			name:   "a failed Stop is reported and the others still stop",
			parts:  []behaviour{waits, stopFails, waits},
			cancel: true,
			want:   "start:a start:b start:c end:c stop:c end:b stop:b end:a stop:a",
			errs:   []string{"b: boom"},
		},
		{
			name:  "errors after the first are kept, the first first",
			parts: []behaviour{stopFails, fails},
			want:  "start:a start:b end:b stop:b end:a stop:a",
			errs:  []string{"b: boom", "a: boom"},
		},
		{
			name:   "no parts",
			cancel: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				j     journal
				g     Group
				ready = make(chan struct{})
			)
			names := "abcdefgh"
			for i, b := range tc.parts {
				g.Add(part(&j, names[i:i+1], b, ready))
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- g.Run(ctx) }()
			// Every part that starts has started once the journal holds
			// its start; then let the failing ones go.
			wantStarts := strings.Count(tc.want, "start:")
			eventually.NoError(t, 5*time.Second, func() error {
				if strings.Count(j.String(), "start:") < wantStarts {
					return errors.New(j.String())
				}
				return nil
			}, "parts started")
			close(ready)
			if tc.cancel {
				cancel()
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("Run did not return: %s", j.String())
			}
			if got := j.String(); got != tc.want {
				t.Errorf("journal\n %s\nwant\n %s", got, tc.want)
			}
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("err %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("err nil, want %q", tc.errs)
			}
			msg, at := err.Error(), 0
			for _, want := range tc.errs {
				i := strings.Index(msg[at:], want)
				if i < 0 {
					t.Fatalf("err %q: want %q in order", msg, tc.errs)
				}
				at += i + len(want)
			}
			if tc.errs[0] == "b: "+ErrEnded.Error() && !errors.Is(err, ErrEnded) {
				t.Fatalf("err %v is not ErrEnded", err)
			}
			if strings.Contains(tc.errs[0], "boom") && !errors.Is(err, errBoom) {
				t.Fatalf("err %v does not wrap the part's error", err)
			}
		})
	}
}

// A part's Run sees its context end only when the group stops it, after
// the parts started later: cancelling Run's context does not reach every
// part at once.
func TestGroupPartContextOutlivesParent(t *testing.T) {
	var g Group
	firstStillRunning := make(chan bool, 1)
	aCtx := make(chan context.Context, 1)
	g.Go("a", func(ctx context.Context) error {
		aCtx <- ctx
		<-ctx.Done()
		return nil
	})
	bRunning := make(chan struct{})
	g.Go("b", func(ctx context.Context) error {
		a := <-aCtx
		close(bRunning)
		<-ctx.Done()
		firstStillRunning <- a.Err() == nil
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	<-bRunning
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !<-firstStillRunning {
		t.Fatal("a's context ended before b had stopped")
	}
}

// A started group outlives the context it was started from (it stops in
// its caller's turn), carries its values, stops cleanly with Stop, and
// reports a part that fails on its own through Done.
func TestStarted(t *testing.T) {
	type key struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	seen := make(chan any, 1)
	var g Group
	g.Go("waits", func(ctx context.Context) error { seen <- ctx.Value(key{}); <-ctx.Done(); return nil })
	s := g.Start(parent)
	if v := <-seen; v != "v" {
		t.Errorf("the part's context value %v, want v", v)
	}
	cancel()
	select {
	case <-s.Done():
		t.Fatalf("the group stopped with its parent's context: %v", s.Err())
	case <-time.After(50 * time.Millisecond):
	}
	if err := s.Stop(); err != nil {
		t.Errorf("Stop: %v, want nil", err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("a second Stop: %v, want nil", err)
	}

	var f Group
	f.Go("fails", func(context.Context) error { return errors.New("boom") })
	fs := f.Start(context.Background())
	select {
	case <-fs.Done():
		if err := fs.Err(); err == nil || err.Error() != "fails: boom" {
			t.Errorf("Err: %v, want fails: boom", err)
		}
		// Stop after the group ended on its own returns at once, with
		// the same error.
		if err := fs.Stop(); err == nil || err.Error() != "fails: boom" {
			t.Errorf("Stop after Done: %v, want fails: boom", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a failing part did not end its group")
	}
}

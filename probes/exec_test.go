//go:build unix

package probes

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ternlb/tern/internal/eventually"
)

// script writes an executable shell script into dir and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExec(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		body    string
		want    outcome
		wantErr string
	}{
		{"exit 0", "exit 0\n", outcomeUp, ""},
		{"exit 3 with message", "echo checking; echo 'backend says no' >&2; exit 3\n", outcomeDown, "exit status 3: backend says no"},
		{"environment", `[ "$TERN_ADDRESS" = 127.0.0.9 ] && [ "$TERN_PORT" = 8443 ] && [ "$TERN_POOL" = p ] && [ "$TERN_MEMBER" = 127.0.0.9 ] || { echo "env: $TERN_POOL $TERN_MEMBER $TERN_ADDRESS $TERN_PORT"; exit 1; }` + "\n", outcomeUp, ""},
		{"background child keeps output open", "sleep 5 &\necho $! > " + filepath.Join(dir, "bg") + "\nexit 0\n", outcomeUp, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := script(t, dir, strings.ReplaceAll(tc.name, " ", "_"), tc.body)
			ch := checkOf(t, "{type: exec, command: ["+p+"], interval: 5s, timeout: 3s}")
			r := runOnce(t, ch, "127.0.0.9:8443")
			if b, err := os.ReadFile(filepath.Join(dir, "bg")); err == nil {
				pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
				syscall.Kill(pid, syscall.SIGKILL) // the sleep this case started
			}
			if r.outcome != tc.want || !strings.Contains(errText(r), tc.wantErr) {
				t.Fatalf("outcome %v (%q), want %v (%q)", r.outcome, errText(r), tc.want, tc.wantErr)
			}
		})
	}
	t.Run("missing program", func(t *testing.T) {
		ch := checkOf(t, "{type: exec, command: ["+filepath.Join(dir, "nope")+"]}")
		if r := runOnce(t, ch, "127.0.0.1:1"); r.outcome != outcomeError {
			t.Fatalf("outcome %v (%v), want error", r.outcome, r.err)
		}
	})
}

// TestExecKilledAtTimeout proves the whole process group dies at the
// timeout: the script's background child too, not only the shell.
func TestExecKilledAtTimeout(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pids")
	p := script(t, dir, "hang", "sleep 60 &\necho $$ $! > "+pidFile+"\nwait\n")
	ch := checkOf(t, "{type: exec, command: ["+p+"], interval: 1s, timeout: 300ms}")
	tg := &target{key: Key{Pool: "p", Member: "127.0.0.1"}, check: ch, host: "127.0.0.1"}
	ctx, cancel := context.WithTimeout(context.Background(), ch.timeout)
	defer cancel()
	begin := time.Now()
	r := ch.run(ctx, tg)
	took := time.Since(begin)
	if r.outcome != outcomeError || !strings.Contains(errText(r), "killed at its 300ms timeout") {
		t.Fatalf("outcome %v (%q), want a kill at the timeout", r.outcome, errText(r))
	}
	if took > ch.timeout+execWaitDelay+time.Second {
		t.Errorf("took %v to return; timeout %v", took, ch.timeout)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.Fields(string(b)) {
		pid, _ := strconv.Atoi(f)
		eventually.True(t, 5*time.Second, func() bool { return gone(pid) }, "process "+f+" gone")
	}
}

// gone reports whether process pid no longer runs (absent or a zombie
// waiting for a parent that is not this test).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// An exec check runs only with Options.AllowExec. Without it nothing runs
// (the command, which would create a file, never does while the same check
// on an allowed prober has run three times), the members keep their
// initial state with the reason in Verdict.Unprobed, FirstRound does not
// wait for them, tern_probe_not_allowed counts them, and the reason is
// logged once, not at every interval.
func TestExecNeedsPermission(t *testing.T) {
	dir := t.TempDir()
	mark := script(t, dir, "mark", `echo "$TERN_MEMBER" >> "$1"`+"\n")
	prober := func(file string, allow bool, log *slog.Logger) *Prober {
		c := testConfig(t, "  run: {type: exec, command: ["+mark+", "+file+"], interval: 200ms, timeout: 200ms}\n",
			"  p: {check: run, members: [{address: 192.0.2.1}, {address: 192.0.2.2}]}\n  q: {check: run, initial: down, members: [{address: 192.0.2.3}]}\n")
		p, err := New(c, Options{AllowExec: allow, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	allowedFile, forbiddenFile := filepath.Join(dir, "allowed"), filepath.Join(dir, "forbidden")
	warnings := &countHandler{}
	forbidden := prober(forbiddenFile, false, slog.New(warnings))
	allowed := prober(allowedFile, true, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(forbidden.Collectors()...)
	start(t, forbidden)
	start(t, allowed)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := forbidden.FirstRound(ctx, time.Minute); err != nil {
		t.Fatalf("FirstRound waits for members it does not probe: %v", err)
	}
	eventually.True(t, 10*time.Second, func() bool {
		b, _ := os.ReadFile(allowedFile)
		return strings.Count(string(b), "192.0.2.3") >= 3
	}, "the allowed prober runs the command three rounds")
	if _, err := os.Stat(forbiddenFile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the command ran without AllowExec: %v", err)
	}
	for _, v := range forbidden.Verdicts() {
		wantUp := v.Key.Pool == "p"
		if v.Probed || v.Up != wantUp || v.Unprobed != ErrExecNotAllowed.Error() {
			t.Errorf("%v: %+v, want not probed, initial state up=%v, Unprobed %q", v.Key, v, wantUp, ErrExecNotAllowed)
		}
	}
	for _, v := range allowed.Verdicts() {
		if v.Unprobed != "" || !v.Probed {
			t.Errorf("allowed prober: %v: %+v", v.Key, v)
		}
	}
	got := gather(t, reg)
	if got["tern_probe_not_allowed,check=run,pool=p"] != 2 || got["tern_probe_not_allowed,check=run,pool=q"] != 1 {
		t.Errorf("tern_probe_not_allowed: %v", got)
	}
	if n := warnings.count(); n != 1 {
		t.Errorf("%d warnings logged after several intervals, want 1 (once per check and configuration)", n)
	}
}

// A prober that replaces one allowed to run exec checks, but is not
// itself, inherits no probe state for them, and the metrics registered
// from the first prober read the newest one.
func TestExecPermissionAcrossInherit(t *testing.T) {
	dir := t.TempDir()
	ok := script(t, dir, "ok", "exit 0\n")
	c := testConfig(t, "  run: {type: exec, command: ["+ok+"], interval: 10s, timeout: 2s}\n",
		"  p: {check: run, initial: down, members: [{address: 192.0.2.1}]}\n")
	old, err := New(c, Options{AllowExec: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(old.Collectors()...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- old.Run(ctx) }()
	if err := old.FirstRound(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if v := old.Verdicts()[0]; !v.Up || !v.Probed {
		t.Fatalf("allowed: %+v, want probed up", v)
	}
	if n := gather(t, reg)["tern_probe_not_allowed,check=run,pool=p"]; n != 0 {
		t.Fatalf("tern_probe_not_allowed %g on the allowed prober", n)
	}

	p, err := New(c, Options{AllowExec: false})
	if err != nil {
		t.Fatal(err)
	}
	p.Inherit(old)
	if v := p.Verdicts()[0]; v.Up || v.Probed || v.Unprobed == "" {
		t.Fatalf("after Inherit without AllowExec: %+v, want the initial state (down), not probed, with the reason", v)
	}
	got := gather(t, reg)
	if got["tern_probe_not_allowed,check=run,pool=p"] != 1 {
		t.Errorf("the first prober's collectors do not follow the newest prober: %v", got)
	}
}

// countHandler counts the warnings logged through it.
type countHandler struct {
	mu sync.Mutex
	n  int
}

func (h *countHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h *countHandler) Handle(context.Context, slog.Record) error {
	h.mu.Lock()
	h.n++
	h.mu.Unlock()
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }
func (h *countHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

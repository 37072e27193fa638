//go:build unix

package probes

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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
		eventually(t, 5*time.Second, "process "+f+" gone", func() bool { return gone(pid) })
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

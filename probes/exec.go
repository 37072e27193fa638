package probes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// execWaitDelay is how long a finished exec check's output pipes may stay
// open (held by a background child) before they are closed.
const execWaitDelay = 100 * time.Millisecond

// exec runs the check's command with the target in its environment; exit
// status 0 is up. At the timeout the command's whole process group is
// killed, so a shell script's children die with it.
func (ch *checker) exec(ctx context.Context, t *target) result {
	argv := ch.cfg.Command
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	port := ""
	if t.port != 0 {
		port = strconv.Itoa(t.port)
	}
	cmd.Env = append(os.Environ(),
		"TERN_POOL="+t.key.Pool,
		"TERN_MEMBER="+t.key.Member,
		"TERN_ADDRESS="+t.host,
		"TERN_PORT="+port,
		"TERN_TIMEOUT="+strconv.FormatFloat(ch.timeout.Seconds(), 'f', -1, 64),
	)
	out := &tailBuffer{max: 512}
	cmd.Stdout, cmd.Stderr = out, out
	setProcessGroup(cmd)
	cmd.WaitDelay = execWaitDelay
	err := cmd.Run()
	switch {
	case ctx.Err() != nil:
		return failed(fmt.Errorf("command %q killed at its %v timeout", argv[0], ch.timeout))
	case err == nil:
		return up()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if msg := out.lastLine(); msg != "" {
			return mismatch("%v: %s", err, msg)
		}
		return mismatch("%v", err)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return up() // exited 0; a background child kept the output open
	}
	return failed(fmt.Errorf("command %q: %w", argv[0], err))
}

// tailBuffer keeps the last max bytes written to it, for an exec check's
// message.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = append(w.b[:0], w.b[len(w.b)-w.max:]...)
	}
	return len(p), nil
}

// lastLine returns the last non-empty line of the output.
func (w *tailBuffer) lastLine() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.TrimSpace(string(w.b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}

package eventually

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder stands in for a test so that a failure can be looked at.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
}

func TestTrue(t *testing.T) {
	n := 0
	r := &recorder{TB: t}
	took := True(r, time.Second, func() bool { n++; return n == 3 }, "three polls")
	if r.failed != "" || n != 3 || took > time.Second {
		t.Fatalf("failed %q after %d polls in %v", r.failed, n, took)
	}
	r = &recorder{TB: t}
	took = True(r, 30*time.Millisecond, func() bool { return false }, "never")
	if r.failed != "never: not within 30ms" || took < 30*time.Millisecond {
		t.Fatalf("failed %q after %v", r.failed, took)
	}
}

func TestNoError(t *testing.T) {
	n := 0
	r := &recorder{TB: t}
	NoError(r, time.Second, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	}, "third try")
	if r.failed != "" || n != 3 {
		t.Fatalf("failed %q after %d tries", r.failed, n)
	}
	r = &recorder{TB: t}
	NoError(r, 30*time.Millisecond, func() error { return errors.New("refused") }, "dial")
	if !strings.HasPrefix(r.failed, "dial: not within 30ms: refused") {
		t.Fatalf("failed %q", r.failed)
	}
}

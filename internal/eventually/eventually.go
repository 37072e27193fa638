// Package eventually is the one poll helper of Tern's tests: wait for a
// condition with a deadline, never a fixed sleep.
package eventually

import (
	"testing"
	"time"
)

// maxInterval bounds the pause between two polls; the first is short so a
// condition that holds at once costs nothing.
const maxInterval = 20 * time.Millisecond

// True polls cond, with a pause growing from a millisecond to 20 ms, until
// it holds, and returns how long that took. If it does not hold within
// timeout, True fails t with "msg: not within timeout" and stops the test.
func True(t testing.TB, timeout time.Duration, cond func() bool, msg string) time.Duration {
	t.Helper()
	begin := time.Now()
	for pause := time.Millisecond; !cond(); pause = min(2*pause, maxInterval) {
		if time.Since(begin) > timeout {
			t.Fatalf("%s: not within %v", msg, timeout)
			return time.Since(begin)
		}
		time.Sleep(pause)
	}
	return time.Since(begin)
}

// NoError polls f like True until it returns nil; on timeout the failure
// names f's last error.
func NoError(t testing.TB, timeout time.Duration, f func() error, msg string) {
	t.Helper()
	var last error
	begin := time.Now()
	for pause := time.Millisecond; ; pause = min(2*pause, maxInterval) {
		if last = f(); last == nil {
			return
		}
		if time.Since(begin) > timeout {
			t.Fatalf("%s: not within %v: %v", msg, timeout, last)
			return
		}
		time.Sleep(pause)
	}
}

package dnsserver

import (
	"runtime"
	"sync"
)

// procsMu serializes the changes lendProcs makes to GOMAXPROCS, which is
// the process's: every Server of the process lends and takes back
// through it.
var procsMu sync.Mutex

// lendProcs raises GOMAXPROCS by n, so that n readers blocked with a P
// each leave the rest of the program the Ps it had; the func it returns
// takes them back.
func lendProcs(n int) (restore func()) {
	if n <= 0 {
		return func() {}
	}
	procsMu.Lock()
	runtime.GOMAXPROCS(runtime.GOMAXPROCS(0) + n)
	procsMu.Unlock()
	return func() {
		procsMu.Lock()
		defer procsMu.Unlock()
		runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)-n))
	}
}

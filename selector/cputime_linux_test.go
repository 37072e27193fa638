package selector

import (
	"syscall"
	"time"
)

// threadCPU returns the CPU time the calling OS thread has used: on a
// machine shared with other work, CPU time per decision is steadier than
// wall time.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
